using Nacelle.CriServer.Hosting;

namespace Nacelle.Tests.Unit.Hosting;

public sealed class MemoryTrimmerTests
{
    /// <summary>After a trim for growth the follow-ups go on while they still give memory back: the array pool lets go of
    /// a burst's buffers one per size and core per full collection, and the collection after frees them. They stop at the
    /// bound even if memory keeps coming back (a daemon under load frees something at every collection).</summary>
    [Theory]
    [InlineData(3, 1L << 20, true)] // the third freed a megabyte: one more
    [InlineData(3, (256L << 10) - 1, false)] // less than the progress asked for: done
    [InlineData(5, 0, false)]
    [InlineData(9, 4L << 20, true)]
    [InlineData(10, 4L << 20, false)] // the bound
    [InlineData(3, -(1L << 20), false)] // grew meanwhile (the next tick's growth check handles that)
    public void FollowUpsGoOnWhileTheyGiveMemoryBackUpToTheBound(int done, long freed, bool more)
    {
        Assert.Equal(more, MemoryTrimmer.KeepFollowingUp(done, freed));
    }
}
