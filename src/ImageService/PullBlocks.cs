using System.Buffers;
using System.Collections.Concurrent;

namespace Nacelle.ImageService;

/// <summary>
/// The memory of one pull's download pipes: a block a pipe gives back goes to the next one that asks, and when the pull
/// ends every block goes with it. By default a pipe takes its segments from the process's shared array pool, which keeps
/// what it is given back (up to 32 arrays of a size per core, and one per thread) until full collections find them unused
/// for a minute: after a pull the daemon went on holding megabytes of 128 KiB segments it had no use for.
/// </summary>
internal sealed class PullBlocks(int blockSize) : MemoryPool<byte>
{
    private readonly ConcurrentStack<byte[]> _free = new();
    private int _made;

    /// <summary>Every block is this size; a pipe asks for no more (its minimum segment size is the block size).</summary>
    public override int MaxBufferSize => blockSize;

    /// <summary>Blocks made so far (for tests: reuse shows as fewer blocks than rents).</summary>
    public int Made => Volatile.Read(ref _made);

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minBufferSize, blockSize);
        if (!_free.TryPop(out var block))
        {
            block = GC.AllocateUninitializedArray<byte>(blockSize);
            Interlocked.Increment(ref _made);
        }

        return new Lease(this, block);
    }

    protected override void Dispose(bool disposing) => _free.Clear();

    private sealed class Lease(PullBlocks owner, byte[] block) : IMemoryOwner<byte>
    {
        private byte[]? _block = block;

        public Memory<byte> Memory => _block ?? throw new ObjectDisposedException(nameof(PullBlocks));

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _block, null) is { } block)
            {
                owner._free.Push(block);
            }
        }
    }
}
