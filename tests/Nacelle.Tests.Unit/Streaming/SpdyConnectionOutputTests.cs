using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Nacelle.ContainerCore.Interop;
using Nacelle.CriServer.Streaming;
using Nacelle.CriServer.Streaming.Spdy;

namespace Nacelle.Tests.Unit.Streaming;

/// <summary>A SPDY session's output: a frame written as head and payload carries the same bytes as the whole frame
/// the codec builds, and frames reach the socket directly only once the peer has spoken and while none went to the
/// stream (so nothing the server still had on its way through the stream can be overtaken).</summary>
public sealed class SpdyConnectionOutputTests
{
    /// <summary>Two connected TCP sockets on 127.0.0.1: the server's end and the peer's.</summary>
    private static async Task<(Socket Server, Socket Peer)> ConnectedPairAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var accept = listener.AcceptAsync();
        await peer.ConnectAsync(listener.LocalEndPoint!);
        return (await accept, peer);
    }

    private static async Task<byte[]> ReceiveExactlyAsync(Socket socket, int count)
    {
        var buffer = new byte[count];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        for (var read = 0; read < count;)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, timeout.Token);
            Assert.True(n > 0, $"the connection ended after {read} of {count} bytes");
            read += n;
        }

        return buffer;
    }

    private static byte[] DataHeader(int streamId, byte flags, int length)
    {
        var header = new byte[Spdy.HeaderSize];
        SpdyFrameCodec.WriteDataHeader(header, streamId, flags, length);
        return header;
    }

    /// <summary>A session on <paramref name="server"/> (as the streaming server runs it: the connection's stream and,
    /// when <paramref name="direct"/>, the socket beneath it), a raw peer on the other end, and the peer's stream 1,
    /// accepted and replied to.</summary>
    private static async Task<(SpdySession Session, Task Run, RawSpdyPeer Client, SpdyStream Stream)> OpenStreamAsync(
        Socket server, Socket peer, int maxFrame, bool direct)
    {
        var session = new SpdySession(new NetworkStream(server, ownsSocket: false), new SpdySessionOptions { MaxDataFramePayload = maxFrame },
            NullLogger.Instance, direct ? server : null);
        var run = session.RunAsync();
        var client = new RawSpdyPeer(new NetworkStream(peer, ownsSocket: true));
        await client.SynStreamAsync(1, "data");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var stream = await session.IncomingStreams.ReadAsync(timeout.Token);
        await stream.ReplyAsync();
        Assert.Equal(1, Assert.IsType<SynReplyFrame>((await client.ReadAsync())?.Control).StreamId);
        return (session, run, client, stream);
    }

    [Fact]
    public async Task AHeadAndPayloadOnTheStreamAreTheCodecsWholeFrame()
    {
        var payload = Enumerable.Range(0, 70_000).Select(i => (byte)(i * 7)).ToArray();
        using var stream = new MemoryStream();
        var output = new SpdyConnectionOutput(stream, socket: null);
        output.PeerSpoke();

        await output.WriteAsync(DataHeader(5, Spdy.FlagFin, payload.Length), payload, default);
        await output.WriteAsync(SpdyFrameCodec.Ping(3), ReadOnlyMemory<byte>.Empty, default);

        Assert.False(output.Direct);
        Assert.Equal([.. SpdyFrameCodec.Data(5, Spdy.FlagFin, payload), .. SpdyFrameCodec.Ping(3)], stream.ToArray());
    }

    [Fact]
    public async Task FramesGoToTheSocketOnlyAfterThePeerSpokeAndOnlyIfNoneWentToTheStream()
    {
        var (server, peer) = await ConnectedPairAsync();
        using (server)
        using (peer)
        {
            // The peer has not spoken: the stream, as the 101 answer did.
            using var stream = new MemoryStream();
            var output = new SpdyConnectionOutput(stream, server);
            Assert.False(output.Direct);
            await output.WriteAsync(SpdyFrameCodec.Ping(1), ReadOnlyMemory<byte>.Empty, default);
            Assert.Equal(SpdyFrameCodec.Ping(1), stream.ToArray());

            // A frame went to the stream: every later one follows it there, even once the peer spoke.
            output.PeerSpoke();
            Assert.False(output.Direct);
            await output.WriteAsync(SpdyFrameCodec.Ping(3), ReadOnlyMemory<byte>.Empty, default);
            Assert.Equal([.. SpdyFrameCodec.Ping(1), .. SpdyFrameCodec.Ping(3)], stream.ToArray());

            // Nothing went to the stream and the peer spoke: the socket, header and payload back to back.
            using var unused = new MemoryStream();
            var direct = new SpdyConnectionOutput(unused, server);
            direct.PeerSpoke();
            Assert.True(direct.Direct);
            var payload = Enumerable.Range(0, 200_000).Select(i => (byte)(i % 251)).ToArray();
            var send = direct.WriteAsync(DataHeader(7, 0, payload.Length), payload, default).AsTask();
            var expected = SpdyFrameCodec.Data(7, 0, payload);
            Assert.Equal(expected, await ReceiveExactlyAsync(peer, expected.Length));
            await send;
            Assert.Equal(0, unused.Length);
        }
    }

    [Fact]
    public async Task ASessionOnAPlainSocketAnswersThroughItAndItsDataFramesAreWhole()
    {
        var (server, peer) = await ConnectedPairAsync();
        using (server)
        {
            var (session, run, client, stream) = await OpenStreamAsync(server, peer, 64 * 1024, direct: true);
            await using var _ = client;
            Assert.True(session.WritesDirectly);

            // 150000 bytes in frames of at most 64 KiB, then FIN; the PING's answer comes between whole frames.
            var payload = Enumerable.Range(0, 150_000).Select(i => (byte)(i % 253)).ToArray();
            await client.SendAsync(SpdyFrameCodec.Ping(9));
            var write = stream.WriteAsync(payload, default).AsTask();
            var received = new List<byte>();
            var pong = false;
            while (received.Count < payload.Length || !pong)
            {
                var frame = await client.ReadAsync();
                Assert.NotNull(frame);
                if (frame.Control is PingFrame ping)
                {
                    Assert.Equal(9u, ping.Id);
                    pong = true;
                    continue;
                }

                Assert.True(frame is { IsData: true, Header.StreamId: 1 });
                Assert.InRange(frame.Payload.Length, 1, 64 * 1024);
                received.AddRange(frame.Payload);
            }

            await write;
            Assert.Equal(payload, received);
            await stream.CloseWriteAsync();
            var fin = await client.ReadAsync();
            Assert.True(fin is { IsData: true, Payload.Length: 0, Header.Flags: Spdy.FlagFin });

            await session.DisposeAsync();
            await run;
        }
    }

    /// <summary>Reads data frames of stream 1 until FIN; every frame at most <paramref name="maxFrame"/> bytes. Returns
    /// the bytes and the largest frame's length.</summary>
    private static async Task<(byte[] Bytes, int LargestFrame)> ReadStreamAsync(RawSpdyPeer client, int maxFrame)
    {
        var received = new List<byte>();
        var largest = 0;
        while (true)
        {
            var frame = await client.ReadAsync();
            Assert.NotNull(frame);
            Assert.True(frame is { IsData: true, Header.StreamId: 1 }, $"unexpected frame {frame.Header}");
            Assert.InRange(frame.Payload.Length, 0, maxFrame);
            received.AddRange(frame.Payload);
            largest = Math.Max(largest, frame.Payload.Length);
            if ((frame.Header.Flags & Spdy.FlagFin) != 0)
            {
                return ([.. received], largest);
            }
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task APodsBytesMovedThroughAPipeReachTheClientInWholeFramesInOrder(bool plainSocket)
    {
        var (server, peer) = await ConnectedPairAsync();
        var (podEnd, pod) = await ConnectedPairAsync();
        using (server)
        using (podEnd)
        using (pod)
        {
            // With the socket: spliced from the pipe to it; without (as under TLS): read out of the pipe and written.
            var (session, run, client, stream) = await OpenStreamAsync(server, peer, 48 * 1024, direct: plainSocket);
            await using var _ = client;
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            Assert.Equal(plainSocket, stream.PrefersPipe);

            // The pod writes 3 MB and closes; the copy starts once twice the first pipe's worth waits (so the first splice
            // fills the pipe, which then grows, and the next one moves more than it held), ends at the pod's end of input,
            // then the stream is finished.
            podEnd.ReceiveBufferSize = 1 << 20;
            var payload = Enumerable.Range(0, 3_000_000).Select(i => (byte)((i * 31) ^ (i >> 8))).ToArray();
            var podWrites = Task.Run(async () =>
            {
                await pod.SendAsync(payload, SocketFlags.None);
                pod.Shutdown(SocketShutdown.Send);
            });
            while (podEnd.Available < 2 * 128 * 1024 + 4096 && !podWrites.IsCompleted)
            {
                await Task.Delay(10, timeout.Token);
            }

            var copy = Task.Run(async () =>
            {
                var failure = await PortForwardCopy.ToClientThroughPipeAsync(podEnd, stream.WriteFromPipeAsync, timeout.Token);
                await stream.CloseWriteAsync();
                return failure;
            });

            // Frames are bounded by the pipe, not by the session's limit for frames it builds (48 KiB here): the bytes
            // of one splice are one frame.
            var (received, largest) = await ReadStreamAsync(client, PortForwardCopy.LargePipeSize);
            Assert.Null(await copy);
            await podWrites;
            Assert.Equal(payload.Length, received.Length);
            Assert.True(payload.AsSpan().SequenceEqual(received), "the bytes differ");
            Assert.Equal(plainSocket, session.WritesDirectly);
            Assert.True(largest > 128 * 1024, $"the pipe did not grow: the largest frame was {largest} bytes");
            Assert.Equal(0, PortForwardCopy.LargePipes.Taken);

            await session.DisposeAsync();
            await run;
        }
    }

    [Fact]
    public void PipeGrowthIsGrantedToABoundedNumberAtOnce()
    {
        var slots = new PipeGrowthSlots(2);
        Assert.True(slots.TryTake());
        Assert.True(slots.TryTake());
        Assert.False(slots.TryTake());
        Assert.Equal(2, slots.Taken);
        slots.Release();
        Assert.True(slots.TryTake());
        Assert.False(slots.TryTake());
        slots.Release();
        slots.Release();
        Assert.Equal(0, slots.Taken);
    }

    [Fact]
    public async Task AFrameFromAPipeGoesToTheStreamInPiecesAndWhole()
    {
        // Larger than the piece read out at once: the frame still arrives as one frame with every byte in order.
        using var stream = new MemoryStream();
        var output = new SpdyConnectionOutput(stream, socket: null);
        var (read, write) = DescriptorCalls.CreatePipe(nonBlockingRead: true, nonBlockingWrite: true);
        using (read)
        using (write)
        {
            Assert.True(DescriptorCalls.SetPipeSize(write, 512 * 1024) >= 512 * 1024);
            var payload = Enumerable.Range(0, 400_000).Select(i => (byte)(i ^ (i >> 9))).ToArray();
            Assert.Equal(payload.Length, DescriptorCalls.Write(write, payload));
            await output.WriteFromPipeAsync(DataHeader(3, 0, payload.Length), read, payload.Length, default);
            Assert.Equal(SpdyFrameCodec.Data(3, 0, payload), stream.ToArray());
        }
    }

    /// <summary>A stream over another whose writes fail, once asked to, as Kestrel's upgraded stream does after its
    /// connection was aborted (InvalidOperationException).</summary>
    private sealed class WritesFailOnDemand(Stream inner) : Stream
    {
        public bool Fail { get; set; }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            Fail ? throw new InvalidOperationException("the connection was aborted") : inner.WriteAsync(buffer, cancellationToken);
    }

    [Fact]
    public async Task AFrameFromAPipeThatTheConnectionFailsUnderClosesTheStreamAndTheSession()
    {
        // As every other frame's: the failure ends the session and is the stream's "closed", whatever the stream threw.
        var (server, peer) = await ConnectedPairAsync();
        using (server)
        {
            var transport = new WritesFailOnDemand(new NetworkStream(server, ownsSocket: false));
            var session = new SpdySession(transport, new SpdySessionOptions(), NullLogger.Instance);
            var run = session.RunAsync();
            await using var client = new RawSpdyPeer(new NetworkStream(peer, ownsSocket: true));
            await client.SynStreamAsync(1, "data");
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            var stream = await session.IncomingStreams.ReadAsync(timeout.Token);
            await stream.ReplyAsync();
            var (read, write) = DescriptorCalls.CreatePipe(nonBlockingRead: true, nonBlockingWrite: true);
            using (read)
            using (write)
            {
                Assert.Equal(100, DescriptorCalls.Write(write, new byte[100]));
                transport.Fail = true;
                await Assert.ThrowsAsync<StreamClosedException>(() => stream.WriteFromPipeAsync(read, 100, timeout.Token).AsTask());
            }

            Assert.True(session.Closed.IsCancellationRequested, "the session goes on after a failed write");
            await session.DisposeAsync();
            await run;
        }
    }

    [Fact]
    public async Task BytesWaitingInAPipeAreSentOnTheStreamWhenTheSocketCannotBeUsed()
    {
        using var stream = new MemoryStream();
        var output = new SpdyConnectionOutput(stream, socket: null);
        var (read, write) = DescriptorCalls.CreatePipe(nonBlockingRead: true, nonBlockingWrite: true);
        using (read)
        using (write)
        {
            var payload = Enumerable.Range(0, 5000).Select(i => (byte)i).ToArray();
            Assert.Equal(payload.Length, DescriptorCalls.Write(write, payload));
            await output.WriteFromPipeAsync(DataHeader(3, 0, payload.Length), read, payload.Length, default);
            Assert.Equal(SpdyFrameCodec.Data(3, 0, payload), stream.ToArray());
        }
    }
}
