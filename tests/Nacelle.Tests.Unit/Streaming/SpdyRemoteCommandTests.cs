using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Nacelle.CriServer.Streaming;
using Nacelle.CriServer.Streaming.Spdy;
using Nacelle.Sandbox.Streams;

namespace Nacelle.Tests.Unit.Streaming;

/// <summary>The exec/attach stream rules over SPDY, with a raw peer sending what kubectl never would.</summary>
public sealed class SpdyRemoteCommandTests
{
    private sealed class ScriptedBackend : IStreamBackend
    {
        public int Calls;
        public bool Endless;
        public Exception? Ended;

        public async Task<int> ExecAsync(ExecStream request, StreamIo io, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Calls);
            try
            {
                do
                {
                    await io.Stdout!.WriteAsync("ran"u8.ToArray(), cancellationToken);
                    await Task.Delay(Endless ? 10 : 0, cancellationToken);
                }
                while (Endless);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException)
            {
                Ended = e;
                throw;
            }

            return 4;
        }

        public Task<int> AttachAsync(AttachStream request, StreamIo io, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<Socket> OpenPortAsync(string podId, int port, CancellationToken cancellationToken) => throw new NotSupportedException();
    }

    private static (Task Serve, RawSpdyPeer Peer, ScriptedBackend Backend) Start(TimeSpan creationTimeout)
    {
        var (server, client) = DuplexStream.Pair();
        var backend = new ScriptedBackend();
        var context = new StreamContext
        {
            Request = new ExecStream("c1", "p1", ["true"], Stdin: false, Stdout: true, Stderr: false, Tty: false),
            Backend = backend,
            Options = new StreamingOptions { CreationTimeout = creationTimeout },
            Limits = new StreamLimits(10, 10),
            Logger = NullLogger.Instance,
            Cancellation = CancellationToken.None,
        };
        return (SpdyRemoteCommand.ServeAsync(context, StreamProtocols.V4, server), new RawSpdyPeer(client), backend);
    }

    [Fact]
    public async Task StreamsNotAskedForAreRefusedAndTheSessionRunsWithTheRest()
    {
        var (serve, peer, backend) = Start(TimeSpan.FromSeconds(30));
        await using (peer)
        {
            await peer.SynStreamAsync(1, "error");
            await peer.SynStreamAsync(3, "stdin"); // the request has no stdin
            await peer.SynStreamAsync(5, "bogus");
            await peer.SynStreamAsync(7, "stdout");
            var frames = new List<ReceivedFrame>();
            while (await peer.ReadAsync() is { } frame)
            {
                frames.Add(frame);
                if (frame.Control is GoAwayFrame)
                {
                    break;
                }
            }

            Assert.Contains(frames, f => f.Control is RstStreamFrame { StreamId: 3, Status: SpdyRstStatus.RefusedStream });
            Assert.Contains(frames, f => f.Control is RstStreamFrame { StreamId: 5, Status: SpdyRstStatus.RefusedStream });
            Assert.Equal([1, 7], frames.Select(f => f.Control).OfType<SynReplyFrame>().Select(r => r.StreamId));
            Assert.Equal("ran"u8.ToArray(), frames.Where(f => f.IsData && f.Header.StreamId == 7).SelectMany(f => f.Payload).ToArray());
            Assert.Contains("\"message\":\"4\"", System.Text.Encoding.UTF8.GetString(
                frames.Where(f => f.IsData && f.Header.StreamId == 1).SelectMany(f => f.Payload).ToArray()));
            // Every stream this side wrote on is finished before GOAWAY.
            Assert.True(frames.Count(f => f.IsData && f.Payload.Length == 0 && f.Header.Flags == Spdy.FlagFin) >= 2);
            Assert.Equal(new GoAwayFrame(7, SpdyGoAwayStatus.Ok), frames[^1].Control);
        }

        await serve;
        Assert.Equal(1, backend.Calls);
    }

    [Fact]
    public async Task AClientThatResetsItsOutputStreamEndsTheCommand()
    {
        var (serve, peer, backend) = Start(TimeSpan.FromSeconds(30));
        backend.Endless = true;
        await using (peer)
        {
            await peer.SynStreamAsync(1, "error");
            await peer.SynStreamAsync(3, "stdout");
            await peer.ReadUntilAsync(f => f.IsData && f.Header.StreamId == 3);
            await peer.SendAsync(SpdyFrameCodec.RstStream(3, SpdyRstStatus.Cancel));
            // The session ends without a status: nobody reads the output any more.
            Assert.Null(await peer.ReadUntilAsync(f => f.Control is GoAwayFrame));
        }

        await serve;
        Assert.IsType<StreamClosedException>(backend.Ended);
    }

    [Fact]
    public async Task ASecondStreamOfOneTypeIsAProtocolError()
    {
        var (serve, peer, _) = Start(TimeSpan.FromSeconds(30));
        await using (peer)
        {
            await peer.SynStreamAsync(1, "error");
            await peer.SynStreamAsync(3, "error");
            Assert.Equal(new RstStreamFrame(3, SpdyRstStatus.ProtocolError), (await peer.ReadUntilAsync(f => f.Control is RstStreamFrame))?.Control);
        }

        await serve;
    }

    [Fact]
    public async Task AClientThatOpensTooFewStreamsIsCutOffAfterTheCreationTimeoutAndNothingRuns()
    {
        var (serve, peer, backend) = Start(TimeSpan.FromMilliseconds(300));
        await using (peer)
        {
            await peer.SynStreamAsync(1, "error");
            Assert.Null(await peer.ReadUntilAsync(f => f.Control is not SynReplyFrame));
        }

        await serve;
        Assert.Equal(0, backend.Calls);
    }
}
