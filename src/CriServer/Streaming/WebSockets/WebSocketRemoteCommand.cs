using System.Net.WebSockets;
using Nacelle.Sandbox.Streams;

namespace Nacelle.CriServer.Streaming.WebSockets;

/// <summary>
/// Exec and attach over a WebSocket: channel 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize. As kubelet does, an
/// empty message on the lowest channel the server writes tells the client the session is up; at the end the error
/// channel carries the outcome (JSON Status for v4/v5, a failure's text before) and the socket closes normally.
/// v5's close signal on channel 0 ends stdin; with v4 stdin ends only with the connection.
/// </summary>
internal static class WebSocketRemoteCommand
{
    public const int Stdin = 0;
    public const int Stdout = 1;
    public const int Stderr = 2;
    public const int Error = 3;
    public const int Resize = 4;

    public static async Task ServeAsync(StreamContext context, string protocol, WebSocket socket)
    {
        var (stdin, stdout, stderr, tty) = CommandStreams.Of(context.Request);

        var readable = new List<int>();
        if (stdin)
        {
            readable.Add(Stdin);
        }

        if (tty)
        {
            readable.Add(Resize);
        }

        var codec = new WebSocketChannelCodec(base64: protocol is StreamProtocols.Base64 or StreamProtocols.V4Base64,
            closeSignal: protocol == StreamProtocols.V5);
        var channels = new WebSocketChannels(socket, codec, readable, context.Logger);
        var run = channels.RunAsync();
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(context.Cancellation, channels.Closed);
        var idle = IdleWatch.RunAsync(() => channels.LastActivity, context.Options.IdleTimeout, channels.Abort, cancel.Token);
        Task? resizePump = null;
        try
        {
            await channels.WriteAsync(stdout ? Stdout : stderr ? Stderr : Error, ReadOnlyMemory<byte>.Empty, cancel.Token).ConfigureAwait(false);
            var sizes = tty ? ResizeDecoder.Start((b, t) => channels.ReadAsync(Resize, b, t), cancel.Token, out resizePump) : null;

            var io = new StreamIo
            {
                Stdin = stdin ? ChannelStream.Reading((b, t) => channels.ReadAsync(Stdin, b, t)) : null,
                Stdout = stdout ? ChannelStream.Writing((b, t) => channels.WriteAsync(Stdout, b, t)) : null,
                Stderr = stderr ? ChannelStream.Writing((b, t) => channels.WriteAsync(Stderr, b, t)) : null,
                Tty = tty,
                Resize = sizes,
            };

            var outcome = await RemoteCommandRunner.RunAsync(context, io, "websocket", protocol, () => channels.EndReason, cancel.Token)
                .ConfigureAwait(false);
            if (outcome is null)
            {
                return;
            }

            var status = RemoteCommandRunner.ErrorStreamContent(outcome, protocol);
            if (status.Length > 0)
            {
                await channels.WriteAsync(Error, status, cancel.Token).ConfigureAwait(false);
            }

            await channels.CloseAsync(StreamContext.Linger).ConfigureAwait(false);
            StreamLog.StreamEnded(context.Logger, context.Request.PathSegment, context.Request.PodId, outcome.Message ?? "exit code 0");
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            StreamLog.StreamEnded(context.Logger, context.Request.PathSegment, context.Request.PodId, channels.EndReason ?? e.Message);
        }
        finally
        {
            channels.Abort();
            await run.ConfigureAwait(false);
            await idle.ConfigureAwait(false);
            if (resizePump is not null)
            {
                await resizePump.ConfigureAwait(false);
            }
        }
    }
}
