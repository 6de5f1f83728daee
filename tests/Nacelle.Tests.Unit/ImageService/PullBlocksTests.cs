using System.Buffers;
using System.IO.Pipelines;
using Nacelle.ImageService;
using Nacelle.Tests.Support;

namespace Nacelle.Tests.Unit.ImageService;

/// <summary>A pull's download pipes take their memory from the pull's own blocks, which the shared pool never sees.</summary>
public sealed class PullBlocksTests
{
    private const int Block = 128 << 10;

    /// <summary>Two megabytes through a pipe and out again, on the calling thread.</summary>
    private static void Through(Pipe pipe)
    {
        var chunk = new byte[64 << 10];
        for (var round = 0; round < 2; round++)
        {
            for (var written = 0; written < 2 << 20; written += chunk.Length)
            {
                pipe.Writer.Write(chunk);
            }

            pipe.Writer.FlushAsync().AsTask().GetAwaiter().GetResult();
            Assert.True(pipe.Reader.TryRead(out var read));
            Assert.Equal(2 << 20, read.Buffer.Length);
            pipe.Reader.AdvanceTo(read.Buffer.End);
        }
    }

    private static PipeOptions Options(PullBlocks? blocks) =>
        new(pool: blocks, pauseWriterThreshold: 8 << 20, resumeWriterThreshold: 4 << 20, minimumSegmentSize: Block, useSynchronizationContext: false);

    [Fact]
    public void APipeOnPullBlocksLeavesNothingInTheSharedPoolAndReusesItsBlocks()
    {
        // The detector works: a pipe on the default pool leaves its segments in the shared pool.
        Assert.True(PooledBuffers.KeptAfter(() => Through(new Pipe(Options(null)))) >= Block, "control: the default pipe left nothing");

        using var blocks = new PullBlocks(Block);
        Assert.Equal(0, PooledBuffers.KeptAfter(() => Through(new Pipe(Options(blocks)))));
        // 2 MB in 128 KiB blocks, twice: the second round ran on the blocks the first gave back.
        Assert.InRange(blocks.Made, 16, 17);
    }

    [Fact]
    public void ABlockIsGivenBackOnceAndNoBiggerBlockIsMade()
    {
        using var blocks = new PullBlocks(Block);
        var first = blocks.Rent(Block);
        Assert.Equal(Block, first.Memory.Length);
        first.Dispose();
        first.Dispose(); // a second give-back must not put the block in the free list twice
        using var second = blocks.Rent();
        using var third = blocks.Rent();
        Assert.Equal(2, blocks.Made);
        Assert.Throws<ArgumentOutOfRangeException>(() => blocks.Rent(Block + 1));
    }
}
