using Nacelle.Sandbox.Streams;

namespace Nacelle.CriServer.Streaming.Spdy;

/// <summary>
/// Exec and attach over SPDY (channel.k8s.io, v2, v3, v4): the client opens one stream per channel, named by its
/// <c>streamType</c> header (error, stdin, stdout, stderr, and resize for a terminal from v3 on), within the creation
/// timeout; then the command runs with those streams as its stdio. When it ends, the error stream carries the
/// outcome, every stream is finished (FIN), GOAWAY follows and the connection closes once the client has.
/// A client that goes away mid-stream cancels the command.
/// </summary>
internal static class SpdyRemoteCommand
{
    public const string StreamTypeHeader = "streamtype";

    private sealed class Streams
    {
        public SpdyStream? Error;
        public SpdyStream? Stdin;
        public SpdyStream? Stdout;
        public SpdyStream? Stderr;
        public SpdyStream? Resize;

        public IEnumerable<SpdyStream> All => new[] { Error, Stdin, Stdout, Stderr, Resize }.OfType<SpdyStream>();
    }

    public static async Task ServeAsync(StreamContext context, string protocol, Stream transport, System.Net.Sockets.Socket? socket = null)
    {
        var (stdin, stdout, stderr, tty) = CommandStreams.Of(context.Request);

        await using var session = new SpdySession(transport, new SpdySessionOptions(), context.Logger, socket);
        var run = session.RunAsync();
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(context.Cancellation, session.Closed);
        var idle = IdleWatch.RunAsync(() => session.LastActivity, context.Options.IdleTimeout, session.Abort, cancel.Token);
        Task? resizePump = null;
        try
        {
            var wanted = new Streams();
            var resize = tty && StreamProtocols.SpdyHasResize(protocol);
            var expected = 1 + (stdin ? 1 : 0) + (stdout ? 1 : 0) + (stderr ? 1 : 0) + (resize ? 1 : 0);
            if (!await WaitForStreamsAsync(session, wanted, expected, (stdin, stdout, stderr, resize), context, cancel.Token).ConfigureAwait(false))
            {
                session.Abort();
                return;
            }

            // Streams this side only writes: what the client sends on them is dropped.
            foreach (var writeOnly in new[] { wanted.Error, wanted.Stdout, wanted.Stderr }.OfType<SpdyStream>())
            {
                writeOnly.DiscardInput();
            }

            var sizes = wanted.Resize is { } r ? ResizeDecoder.Start(r.ReadAsync, cancel.Token, out resizePump) : null;
            var io = new StreamIo
            {
                Stdin = wanted.Stdin is { } i ? ChannelStream.Reading(i.ReadAsync) : null,
                Stdout = wanted.Stdout is { } o ? ChannelStream.Writing(o.WriteAsync) : null,
                Stderr = wanted.Stderr is { } e ? ChannelStream.Writing(e.WriteAsync) : null,
                Tty = tty,
                Resize = sizes,
            };

            var outcome = await RemoteCommandRunner.RunAsync(context, io, "spdy", protocol, () => session.EndReason, cancel.Token).ConfigureAwait(false);
            if (outcome is null)
            {
                session.Abort();
                return;
            }

            await FinishAsync(session, wanted, outcome, protocol).ConfigureAwait(false);
            StreamLog.StreamEnded(context.Logger, context.Request.PathSegment, context.Request.PodId,
                outcome.Message ?? "exit code 0");
        }
        finally
        {
            session.Abort();
            await run.ConfigureAwait(false);
            await idle.ConfigureAwait(false);
            if (resizePump is not null)
            {
                await resizePump.ConfigureAwait(false);
            }
        }
    }

    /// <summary>Takes the client's streams until <paramref name="expected"/> are open; false when the creation timeout
    /// passes or the session ends first.</summary>
    private static async Task<bool> WaitForStreamsAsync(SpdySession session, Streams wanted, int expected,
        (bool Stdin, bool Stdout, bool Stderr, bool Resize) asked, StreamContext context, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(context.Options.CreationTimeout);
        var received = 0;
        try
        {
            while (received < expected)
            {
                var stream = await session.IncomingStreams.ReadAsync(deadline.Token).ConfigureAwait(false);
                var type = stream.Header(StreamTypeHeader);
                var taken = Take(wanted, type, asked, stream);
                if (taken is not null)
                {
                    StreamLog.SpdyStreamRefused(context.Logger, stream.Id, taken.Value.Reason);
                    await stream.ResetAsync(taken.Value.Status).ConfigureAwait(false);
                    continue;
                }

                await stream.ReplyAsync().ConfigureAwait(false);
                received++;
            }

            return true;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            StreamLog.StreamEnded(context.Logger, context.Request.PathSegment, context.Request.PodId,
                $"the client opened {received} of {expected} streams within {context.Options.CreationTimeout.TotalSeconds:0.###}s");
            return false;
        }
        catch (Exception e) when (e is OperationCanceledException or System.Threading.Channels.ChannelClosedException or IOException)
        {
            StreamLog.StreamEnded(context.Logger, context.Request.PathSegment, context.Request.PodId,
                session.EndReason ?? "the client went away while opening streams");
            return false;
        }
    }

    /// <summary>Puts <paramref name="stream"/> in its slot; or why it is refused.</summary>
    private static (SpdyRstStatus Status, string Reason)? Take(Streams wanted, string? type,
        (bool Stdin, bool Stdout, bool Stderr, bool Resize) asked, SpdyStream stream)
    {
        var isAsked = type switch
        {
            "error" => true,
            "stdin" => asked.Stdin,
            "stdout" => asked.Stdout,
            "stderr" => asked.Stderr,
            "resize" => asked.Resize,
            _ => false,
        };
        if (!isAsked)
        {
            return (SpdyRstStatus.RefusedStream, $"stream type '{type}' is not part of this session");
        }

        var current = type switch
        {
            "error" => wanted.Error,
            "stdin" => wanted.Stdin,
            "stdout" => wanted.Stdout,
            "stderr" => wanted.Stderr,
            _ => wanted.Resize,
        };
        if (current is not null)
        {
            return (SpdyRstStatus.ProtocolError, $"a second '{type}' stream");
        }

        switch (type)
        {
            case "error":
                wanted.Error = stream;
                break;
            case "stdin":
                wanted.Stdin = stream;
                break;
            case "stdout":
                wanted.Stdout = stream;
                break;
            case "stderr":
                wanted.Stderr = stream;
                break;
            default:
                wanted.Resize = stream;
                break;
        }

        return null;
    }

    private static async Task FinishAsync(SpdySession session, Streams streams, CommandOutcome outcome, string protocol)
    {
        try
        {
            if (streams.Error is { } error)
            {
                var status = RemoteCommandRunner.ErrorStreamContent(outcome, protocol);
                if (status.Length > 0)
                {
                    await error.WriteAsync(status, session.Closed).ConfigureAwait(false);
                }
            }

            foreach (var stream in streams.All)
            {
                await stream.CloseWriteAsync().ConfigureAwait(false);
            }

            await session.CloseAsync(StreamContext.Linger).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            // the client left before the end was told
        }
    }
}
