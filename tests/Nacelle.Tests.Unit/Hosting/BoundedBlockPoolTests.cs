using System.Buffers;
using System.IO.Pipelines;
using Nacelle.CriServer.Hosting;

namespace Nacelle.Tests.Unit.Hosting;

public sealed class BoundedBlockPoolTests
{
    [Fact]
    public void ABurstLeavesNoMoreIdleBlocksThanTheBound()
    {
        using var pool = new BoundedBlockPool(maxIdleBlocks: 8);
        // A 1 MB request read into blocks: 256 at once, all given back.
        var rented = Enumerable.Range(0, 256).Select(_ => pool.Rent()).ToList();
        Assert.All(rented, block => Assert.Equal(BoundedBlockPool.BlockSize, block.Memory.Length));
        rented.ForEach(block => block.Dispose());
        Assert.Equal(8, pool.IdleBlocks);
    }

    [Fact]
    public void BlocksAreReusedUpToTheBound()
    {
        using var pool = new BoundedBlockPool(maxIdleBlocks: 2);
        var first = pool.Rent();
        var array = first.Memory;
        first.Dispose();
        Assert.Equal(1, pool.IdleBlocks);
        var again = pool.Rent();
        Assert.True(again.Memory.Span == array.Span, "the idle block was not reused");
        Assert.Equal(0, pool.IdleBlocks);
        again.Dispose();
    }

    [Fact]
    public void ABlockDisposedTwiceIsKeptOnce()
    {
        using var pool = new BoundedBlockPool(maxIdleBlocks: 8);
        var block = pool.Rent();
        block.Dispose();
        block.Dispose();
        Assert.Equal(1, pool.IdleBlocks);

        // Leased to two owners at once would corrupt both: the second rent gets a new block.
        var a = pool.Rent();
        var b = pool.Rent();
        Assert.False(a.Memory.Span == b.Memory.Span);
        a.Dispose();
        b.Dispose();
    }

    [Fact]
    public void ARequestLargerThanABlockGetsAnArrayThatIsNotKept()
    {
        using var pool = new BoundedBlockPool(maxIdleBlocks: 8);
        var large = pool.Rent(BoundedBlockPool.BlockSize * 3);
        Assert.True(large.Memory.Length >= BoundedBlockPool.BlockSize * 3);
        large.Dispose();
        Assert.Equal(0, pool.IdleBlocks);
    }

    [Fact]
    public async Task APipeOnThePoolCarriesAMegabyteAndKeepsOnlyTheBound()
    {
        using var pool = new BoundedBlockPool(maxIdleBlocks: 4);
        var pipe = new Pipe(new PipeOptions(pool, pauseWriterThreshold: 0, useSynchronizationContext: false));
        var data = new byte[1 << 20];
        Random.Shared.NextBytes(data);
        await pipe.Writer.WriteAsync(data);
        await pipe.Writer.CompleteAsync();

        var read = await pipe.Reader.ReadAtLeastAsync(data.Length);
        Assert.Equal(data.Length, read.Buffer.Length);
        Assert.True(read.Buffer.ToArray().AsSpan().SequenceEqual(data));
        pipe.Reader.AdvanceTo(read.Buffer.End);
        await pipe.Reader.CompleteAsync();
        Assert.Equal(4, pool.IdleBlocks);
    }

    [Fact]
    public void TheFactoryMakesABoundedPool()
    {
        using var pool = new BoundedBlockPoolFactory().Create(new Microsoft.AspNetCore.Connections.MemoryPoolOptions());
        Assert.IsType<BoundedBlockPool>(pool);
        Assert.Equal(BoundedBlockPool.BlockSize, pool.MaxBufferSize);
    }
}

/// <summary>The daemon's host resolves the bounded pool's factory, over the one UseKestrelCore registers, and its socket
/// transport takes it (without <see cref="BoundedBlockPoolFactory.Register"/> Kestrel's own pinned pool, the control).</summary>
public sealed class BoundedBlockPoolRegistrationTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void KestrelsSocketTransportTakesTheBoundedPool(bool register)
    {
        var builder = Microsoft.AspNetCore.Builder.WebApplication.CreateEmptyBuilder(new Microsoft.AspNetCore.Builder.WebApplicationOptions());
        Microsoft.AspNetCore.Hosting.WebHostBuilderKestrelExtensions.UseKestrelCore(builder.WebHost);
        if (register)
        {
            BoundedBlockPoolFactory.Register(builder.Services);
        }

        using var app = builder.Build();
        var factory = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions
            .GetRequiredService<Microsoft.AspNetCore.Connections.IMemoryPoolFactory<byte>>(app.Services);
        Assert.Equal(register, factory is BoundedBlockPoolFactory);

        // What the transport will use: its options' (internal) factory, set from the container.
        var options = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions
            .GetRequiredService<Microsoft.Extensions.Options.IOptions<Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets.SocketTransportOptions>>(app.Services).Value;
        var property = typeof(Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets.SocketTransportOptions)
            .GetProperty("MemoryPoolFactory", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Public);
        Assert.SkipWhen(property is null, "this ASP.NET Core's SocketTransportOptions has no MemoryPoolFactory property to look at");
        Assert.Equal(register, property.GetValue(options) is BoundedBlockPoolFactory);
    }
}
