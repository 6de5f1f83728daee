using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;

namespace Nacelle.CriServer.Hosting;

/// <summary>
/// The blocks Kestrel's connections read requests into and write answers from (4 KiB each), kept for reuse up to
/// <see cref="DefaultMaxIdleBlocks"/>; a block given back beyond that is left to the GC.
/// <para>
/// Kestrel's own pool keeps every block it ever made, in the pinned object heap, and lets go of a few percent every 10 s
/// once traffic falls. A burst of 1 MB requests (refused, as hostile requests are) made ~800 blocks: 100 s later the pinned
/// heap still held 3.3 MB of them, against 0.2 MB before the burst, and a heap that is never compacted keeps the pages
/// of any region with one block still in use. Both of the daemon's Kestrel hosts use it: the CRI socket, whose requests
/// are small and whose connections are few (kubelet holds one or two), and the streaming server, whose connections'
/// in-flight data is bounded by Kestrel's buffer limits. A few dozen idle blocks serve their steady state and a burst
/// leaves nothing behind. The blocks are ordinary
/// arrays: the GC moves them like any other object. Kestrel's sockets on Linux need no long-lived pinning: a buffer is
/// fixed only for the send or receive call that uses it.
/// </para>
/// </summary>
internal sealed class BoundedBlockPool(int maxIdleBlocks = BoundedBlockPool.DefaultMaxIdleBlocks) : MemoryPool<byte>
{
    /// <summary>The block size, Kestrel's own: a pipe asks for at most this much and allocates larger buffers itself.</summary>
    public const int BlockSize = 4096;

    /// <summary>128 KiB of idle blocks: a gRPC connection in use holds a handful; many answers at once a few dozen.</summary>
    public const int DefaultMaxIdleBlocks = 32;

    private readonly ConcurrentQueue<Block> _idle = new();
    private int _idleCount;

    public override int MaxBufferSize => BlockSize;

    /// <summary>Blocks kept for reuse now.</summary>
    public int IdleBlocks => Volatile.Read(ref _idleCount);

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        if (minBufferSize > BlockSize)
        {
            // A pipe never asks for more than MaxBufferSize; anyone else gets an array of their own, not kept.
            return new Block(null, minBufferSize).Lease();
        }

        if (_idle.TryDequeue(out var block))
        {
            Interlocked.Decrement(ref _idleCount);
            return block.Lease();
        }

        return new Block(this, BlockSize).Lease();
    }

    private void Return(Block block)
    {
        if (Interlocked.Increment(ref _idleCount) <= maxIdleBlocks)
        {
            _idle.Enqueue(block);
        }
        else
        {
            Interlocked.Decrement(ref _idleCount); // beyond the bound: the GC takes it
        }
    }

    protected override void Dispose(bool disposing)
    {
        while (_idle.TryDequeue(out _))
        {
            Interlocked.Decrement(ref _idleCount);
        }
    }

    /// <summary>One block and its lease: given back once, however many times it is disposed.</summary>
    private sealed class Block(BoundedBlockPool? pool, int size) : IMemoryOwner<byte>
    {
        private readonly byte[] _array = GC.AllocateUninitializedArray<byte>(size);
        private int _leased;

        public Memory<byte> Memory => _array;

        public Block Lease()
        {
            Volatile.Write(ref _leased, 1);
            return this;
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _leased, 0) == 1)
            {
                pool?.Return(this);
            }
        }
    }
}

/// <summary>Makes a <see cref="BoundedBlockPool"/> for each of Kestrel's transports and connections that asks.</summary>
internal sealed class BoundedBlockPoolFactory : IMemoryPoolFactory<byte>
{
    public MemoryPool<byte> Create(MemoryPoolOptions? options = null) => new BoundedBlockPool();

    /// <summary>Makes Kestrel take its blocks from bounded pools. Call after UseKestrelCore: it registers a factory of
    /// its own, and the one registered last is the one resolved.</summary>
    public static void Register(IServiceCollection services) => services.AddSingleton<IMemoryPoolFactory<byte>, BoundedBlockPoolFactory>();
}
