using Microsoft.Extensions.Logging.Abstractions;
using Nacelle.CriServer.Streaming;
using Nacelle.CriServer.Streaming.Spdy;

namespace Nacelle.Tests.Unit.Streaming;

/// <summary>The server side of a SPDY session over an in-memory connection, driven by a raw peer: streams, PING,
/// flow control, and every kind of malformed input answered by RST_STREAM or GOAWAY, never a crash.</summary>
public sealed class SpdySessionTests : IAsyncLifetime
{
    private SpdySession _session = null!;
    private RawSpdyPeer _peer = null!;
    private Task _run = null!;

    public ValueTask InitializeAsync()
    {
        var (server, client) = DuplexStream.Pair();
        _session = new SpdySession(server, new SpdySessionOptions { MaxControlFrameSize = 4096 }, NullLogger.Instance);
        _run = _session.RunAsync();
        _peer = new RawSpdyPeer(client);
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        await _session.DisposeAsync();
        await _peer.DisposeAsync();
    }

    private async Task<SpdyStream> AcceptAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        return await _session.IncomingStreams.ReadAsync(timeout.Token);
    }

    private async Task AssertGoAwayAndClosedAsync(SpdyGoAwayStatus status)
    {
        var goAway = await _peer.ReadUntilAsync(f => f.Control is GoAwayFrame);
        Assert.Equal(status, Assert.IsType<GoAwayFrame>(goAway?.Control).Status);
        Assert.Null(await _peer.ReadAsync());
        await _run;
        Assert.True(_session.Closed.IsCancellationRequested);
    }

    private async Task AssertStillServingAsync()
    {
        await _peer.SendAsync(SpdyFrameCodec.Ping(77));
        var pong = await _peer.ReadUntilAsync(f => f.Control is PingFrame);
        Assert.Equal(new PingFrame(77), pong?.Control);
    }

    [Fact]
    public async Task AClientStreamIsAcceptedRepliedReadAndWritten()
    {
        await _peer.SynStreamAsync(1, "stdin", extra: ("port", "80"));
        var stream = await AcceptAsync();
        Assert.Equal(1, stream.Id);
        Assert.Equal("stdin", stream.Header("streamType"));
        Assert.Equal("80", stream.Header("port"));

        await stream.ReplyAsync();
        var reply = await _peer.ReadAsync();
        Assert.Equal(1, Assert.IsType<SynReplyFrame>(reply?.Control).StreamId);

        await _peer.DataAsync(1, "hello"u8.ToArray(), fin: true);
        var buffer = new byte[16];
        Assert.Equal(5, await stream.ReadAsync(buffer, default));
        Assert.Equal("hello"u8.ToArray(), buffer[..5]);
        Assert.Equal(0, await stream.ReadAsync(buffer, default));

        await stream.WriteAsync("back"u8.ToArray(), default);
        await stream.CloseWriteAsync();
        var data = await _peer.ReadAsync();
        Assert.Equal("back"u8.ToArray(), data?.Payload);
        var fin = await _peer.ReadAsync();
        Assert.True(fin is { IsData: true, Payload.Length: 0, Header.Flags: Spdy.FlagFin });
    }

    [Fact]
    public async Task InterleavedStreamsKeepTheirDataApartBothWays()
    {
        await _peer.SynStreamAsync(1, "stdin");
        await _peer.SynStreamAsync(3, "resize");
        var first = await AcceptAsync();
        var second = await AcceptAsync();
        for (var i = 0; i < 20; i++)
        {
            await _peer.DataAsync(i % 2 == 0 ? 1 : 3, [(byte)i], fin: i >= 18);
        }

        async Task<byte[]> ReadAllAsync(SpdyStream stream)
        {
            var all = new List<byte>();
            var buffer = new byte[8];
            int read;
            while ((read = await stream.ReadAsync(buffer, default)) > 0)
            {
                all.AddRange(buffer[..read]);
            }

            return [.. all];
        }

        Assert.Equal([0, 2, 4, 6, 8, 10, 12, 14, 16, 18], await ReadAllAsync(first).WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal([1, 3, 5, 7, 9, 11, 13, 15, 17, 19], await ReadAllAsync(second).WaitAsync(TimeSpan.FromSeconds(20)));

        // Writes of both streams at once leave as whole frames, each tagged with its stream.
        var writes = Task.WhenAll(
            Task.Run(async () => { for (var i = 0; i < 50; i++) await first.WriteAsync(new byte[1000], default); }),
            Task.Run(async () => { for (var i = 0; i < 50; i++) await second.WriteAsync(Enumerable.Repeat((byte)3, 1000).ToArray(), default); }));
        var received = new Dictionary<int, int> { [1] = 0, [3] = 0 };
        while (received[1] + received[3] < 100_000)
        {
            var frame = (await _peer.ReadUntilAsync(f => f.IsData))!;
            Assert.All(frame.Payload, b => Assert.Equal(frame.Header.StreamId == 1 ? 0 : 3, b));
            received[frame.Header.StreamId] += frame.Payload.Length;
        }

        Assert.Equal(50_000, received[1]);
        Assert.Equal(50_000, received[3]);
        await writes.WaitAsync(TimeSpan.FromSeconds(20));
    }

    [Fact]
    public async Task ClientPingsAreEchoedAndUnknownControlFramesIgnored()
    {
        await _peer.SendAsync(Convert.FromHexString("80037777000000020102"));
        await _peer.SendAsync(SpdyFrameCodec.Settings(0, [new SpdySetting(0, 4, 100)]));
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task DataForAStreamNeverOpenedIsAnsweredWithInvalidStream()
    {
        await _peer.DataAsync(99, [1, 2, 3]);
        var reset = await _peer.ReadAsync();
        Assert.Equal(new RstStreamFrame(99, SpdyRstStatus.InvalidStream), reset?.Control);
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task DataAfterTheClientsFinIsAnsweredWithStreamAlreadyClosed()
    {
        await _peer.SynStreamAsync(1, "stdin", Spdy.FlagFin);
        var stream = await AcceptAsync();
        await _peer.DataAsync(1, [1]);
        var reset = await _peer.ReadUntilAsync(f => f.Control is RstStreamFrame);
        Assert.Equal(new RstStreamFrame(1, SpdyRstStatus.StreamAlreadyClosed), reset?.Control);
        Assert.True(stream.Aborted.IsCancellationRequested);
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task StreamIdsThatGoBackwardsAreASessionError()
    {
        await _peer.SynStreamAsync(5, "stdout");
        await AcceptAsync();
        await _peer.SynStreamAsync(3, "stderr");
        await AssertGoAwayAndClosedAsync(SpdyGoAwayStatus.ProtocolError);
    }

    [Fact]
    public async Task AServerSideStreamIdFromTheClientIsRefused()
    {
        await _peer.SynStreamAsync(2, "stdout");
        Assert.Equal(new RstStreamFrame(2, SpdyRstStatus.ProtocolError), (await _peer.ReadAsync())?.Control);
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task InvalidHeaderBlocksResetTheirStreamOnly()
    {
        await _peer.SendAsync(SpdyFrameCodec.SynStream(1, 0, 0, 0, _peer.Compress([new("streamtype", "a"), new("StreamType", "b")])));
        Assert.Equal(new RstStreamFrame(1, SpdyRstStatus.ProtocolError), (await _peer.ReadAsync())?.Control);
        // The compression state survived: the next stream's headers decode.
        await _peer.SynStreamAsync(3, "stdout");
        Assert.Equal("stdout", (await AcceptAsync()).Header("streamtype"));
    }

    [Theory]
    [InlineData("8002 0001 00 00000c 00000001 00000000 0000 78bb")] // SYN_STREAM of SPDY/2
    [InlineData("8003 0006 00 000003 000001")] // PING of 3 bytes
    [InlineData("80030001 0000000c 00000001 00000000 0000 ffff")] // a header block that is not zlib
    [InlineData("00000000 00000001 00")] // data for stream 0
    public async Task MalformedFramesEndTheSessionWithGoAway(string hex)
    {
        await _peer.SendAsync(Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal)));
        await AssertGoAwayAndClosedAsync(SpdyGoAwayStatus.ProtocolError);
    }

    [Fact]
    public async Task AnOversizedControlFrameEndsTheSession()
    {
        await _peer.SendAsync(SpdyFrameCodec.SynStream(1, 0, 0, 0, new byte[5000]));
        await AssertGoAwayAndClosedAsync(SpdyGoAwayStatus.ProtocolError);
    }

    [Fact]
    public async Task AConnectionCutInsideAFrameEndsTheSessionQuietly()
    {
        await _peer.SendAsync(Convert.FromHexString("8003000600000004000000"));
        await _peer.DisposeAsync();
        await _run;
        Assert.True(_session.Closed.IsCancellationRequested);
        Assert.Contains("inside a frame", _session.EndReason);
    }

    [Fact]
    public async Task AWindowUpdateOverflowingTheWindowResetsTheStream()
    {
        await _peer.SynStreamAsync(1, "stdout");
        var stream = await AcceptAsync();
        await _peer.SendAsync(SpdyFrameCodec.WindowUpdate(1, int.MaxValue));
        Assert.Equal(new RstStreamFrame(1, SpdyRstStatus.FlowControlError), (await _peer.ReadUntilAsync(f => f.Control is RstStreamFrame))?.Control);
        await Assert.ThrowsAsync<StreamClosedException>(async () => await stream.WriteAsync(new byte[1], default));
    }

    [Fact]
    public async Task OnceThePeerDoesFlowControlWritesStayInsideItsWindow()
    {
        await _peer.SendAsync(SpdyFrameCodec.Settings(0, [new SpdySetting(0, Spdy.SettingsInitialWindowSize, 1000)]));
        await _peer.SynStreamAsync(1, "stdout");
        var stream = await AcceptAsync();
        var write = stream.WriteAsync(new byte[5000], default).AsTask();

        var granted = 1000;
        var received = 0;
        while (received < 5000)
        {
            var frame = await _peer.ReadUntilAsync(f => f.IsData);
            received += frame!.Payload.Length;
            Assert.True(received <= granted, $"{received} bytes sent into a window of {granted}");
            if (received == granted)
            {
                Assert.False(write.IsCompleted, "the write finished without the window for it");
                granted += 1500;
                await _peer.SendAsync(SpdyFrameCodec.WindowUpdate(1, 1500));
            }
        }

        await write;
    }

    [Fact]
    public async Task ReceivedDataWaitsInABoundedBufferAndIsAcknowledgedAsItIsRead()
    {
        await _peer.SynStreamAsync(1, "stdin");
        var stream = await AcceptAsync();
        var chunk = new byte[16 * 1024];
        for (var i = 0; i < 6; i++)
        {
            await _peer.DataAsync(1, chunk);
        }

        // 96 KiB sent into a 64 KiB buffer that nobody reads: the session stops reading, so the ping waits.
        await _peer.SendAsync(SpdyFrameCodec.Ping(9));
        var early = _peer.ReadUntilAsync(f => f.Control is PingFrame);
        Assert.NotSame(early, await Task.WhenAny(early, Task.Delay(300)));

        var total = 0;
        var buffer = new byte[64 * 1024];
        while (total < 6 * chunk.Length)
        {
            total += await stream.ReadAsync(buffer, default);
        }

        Assert.Equal(new PingFrame(9), (await early)?.Control);
    }

    [Fact]
    public async Task AStreamTheClientResetsEndsForItsReaderAndWriter()
    {
        await _peer.SynStreamAsync(1, "stdout");
        var stream = await AcceptAsync();
        await _peer.SendAsync(SpdyFrameCodec.RstStream(1, SpdyRstStatus.Cancel));
        await _peer.SendAsync(SpdyFrameCodec.Ping(1));
        await _peer.ReadUntilAsync(f => f.Control is PingFrame);
        Assert.True(stream.Aborted.IsCancellationRequested);
        Assert.True(stream.ResetByPeer);
        Assert.Equal(0, await stream.ReadAsync(new byte[1], default));
        await Assert.ThrowsAsync<StreamClosedException>(async () => await stream.WriteAsync(new byte[1], default));
    }

    [Fact]
    public async Task ClosingSendsGoAwayNamingTheLastStream()
    {
        await _peer.SynStreamAsync(7, "error");
        await AcceptAsync();
        var close = _session.CloseAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(new GoAwayFrame(7, SpdyGoAwayStatus.Ok), (await _peer.ReadUntilAsync(f => f.Control is GoAwayFrame))?.Control);
        // The session waits for the client to close its side, then is done.
        await _peer.DisposeAsync();
        await close;
        await _run;
    }

    [Fact]
    public async Task StreamsBeyondTheConcurrencyBoundAreRefused()
    {
        var (server, client) = DuplexStream.Pair();
        await using var session = new SpdySession(server, new SpdySessionOptions { MaxConcurrentStreams = 2 }, NullLogger.Instance);
        _ = session.RunAsync();
        await using var peer = new RawSpdyPeer(client);
        await peer.SynStreamAsync(1, "a");
        await peer.SynStreamAsync(3, "b");
        await peer.SynStreamAsync(5, "c");
        Assert.Equal(new RstStreamFrame(5, SpdyRstStatus.RefusedStream), (await peer.ReadUntilAsync(f => f.Control is RstStreamFrame))?.Control);
    }
}
