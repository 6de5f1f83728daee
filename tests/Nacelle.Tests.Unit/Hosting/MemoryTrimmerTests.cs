using Nacelle.CriServer.Hosting;

namespace Nacelle.Tests.Unit.Hosting;

public sealed class MemoryTrimmerTests
{
    /// <summary>After a trim for growth the follow-ups go on while each leaves less than the one before: the array pool
    /// lets go of a burst's buffers one per size and core per full collection, and the collection after frees them. A
    /// daemon under load, whose live set stays the same, stops after the three; none goes past the bound.</summary>
    [Theory]
    [InlineData(3, 1L << 20, true)] // the third left a megabyte less: one more
    [InlineData(3, (256L << 10) - 1, false)] // less progress than asked for: done
    [InlineData(5, 0, false)]
    [InlineData(9, 4L << 20, true)]
    [InlineData(10, 4L << 20, false)] // the bound
    [InlineData(3, -(1L << 20), false)] // left more (the growth check of the next tick sees to that)
    public void FollowUpsGoOnWhileEachLeavesLessThanTheLastUpToTheBound(int done, long lowered, bool more)
    {
        Assert.Equal(more, MemoryTrimmer.KeepFollowingUp(done, lowered));
    }

    private const long MiB = 1L << 20;

    /// <summary>The series goes on as planned while follow-ups remain, whatever each leaves.</summary>
    [Fact]
    public void FollowUpsStillPlannedAreKept()
    {
        Assert.Equal((2, 1), MemoryTrimmer.AfterFollowUp(2, 1, previous: 8 * MiB, floor: 8 * MiB));
        Assert.Equal((1, 2), MemoryTrimmer.AfterFollowUp(1, 2, previous: 8 * MiB, floor: 3 * MiB));
    }

    /// <summary>The last planned one decides whether one more comes, by what it left against the one before.</summary>
    [Fact]
    public void TheLastPlannedFollowUpAddsOneWhileTheFloorStillFalls()
    {
        Assert.Equal((1, 3), MemoryTrimmer.AfterFollowUp(0, 3, previous: 13 * MiB, floor: 5 * MiB));
        Assert.Equal((0, 3), MemoryTrimmer.AfterFollowUp(0, 3, previous: 5 * MiB, floor: 5 * MiB - 16 * 1024));
        Assert.Equal((0, MemoryTrimmer.MaxFollowUps), MemoryTrimmer.AfterFollowUp(0, MemoryTrimmer.MaxFollowUps, previous: 40 * MiB, floor: 5 * MiB));
    }

    /// <summary>bench/memory.sh once sent its hostile burst while a series ran: the third follow-up found the array pool
    /// holding 15 MB of the burst's buffers (a floor 14.5 MB higher), the series ended there, and with no growth after it
    /// no collection ever came to free them (settled at 2.5x the round). A floor risen by more than the slack is a burst of
    /// its own, with a series of its own.</summary>
    [Fact]
    public void AFollowUpThatFindsABurstStartsASeriesOfItsOwn()
    {
        Assert.Equal((MemoryTrimmer.FollowUps, 0), MemoryTrimmer.AfterFollowUp(0, 3, previous: 5508L * 1024, floor: 20052L * 1024));
        Assert.Equal((MemoryTrimmer.FollowUps, 0), MemoryTrimmer.AfterFollowUp(1, 2, previous: 5 * MiB, floor: 5 * MiB + MemoryTrimmer.Slack + 1));
        // Within the slack: the series as it was.
        Assert.Equal((0, 3), MemoryTrimmer.AfterFollowUp(0, 3, previous: 5 * MiB, floor: 5 * MiB + MemoryTrimmer.Slack));
    }
}
