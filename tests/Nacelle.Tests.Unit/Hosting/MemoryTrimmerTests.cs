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
}
