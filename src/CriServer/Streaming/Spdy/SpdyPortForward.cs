using System.Globalization;
using System.Text;

namespace Nacelle.CriServer.Streaming.Spdy;

/// <summary>
/// Port forwarding over SPDY (portforward.k8s.io): each forwarded connection is a pair of client streams, an error
/// stream and a data stream with the same <c>requestID</c> header and the pod's <c>port</c>; both must open within
/// the creation timeout. Data flows between the data stream and a TCP connection the backend opens in the pod; a
/// failure is told on the error stream. Many connections (and ports) share one session.
/// </summary>
internal static class SpdyPortForward
{
    public const string PortHeader = "port";
    public const string RequestIdHeader = "requestid";

    private sealed class Pair
    {
        public SpdyStream? Data;
        public SpdyStream? Error;
    }

    public static async Task ServeAsync(StreamContext context, Stream transport, System.Net.Sockets.Socket? socket = null)
    {
        var request = (PortForwardStream)context.Request;
        await using var session = new SpdySession(transport, new SpdySessionOptions(), context.Logger, socket);
        var run = session.RunAsync();
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(context.Cancellation, session.Closed);
        var idle = IdleWatch.RunAsync(() => session.LastActivity, context.Options.IdleTimeout, session.Abort, cancel.Token);
        var pending = new Dictionary<string, Pair>(StringComparer.Ordinal);
        var forwards = new List<Task>();
        StreamLog.StreamConnected(context.Logger, "portforward", request.PodId, "spdy", StreamProtocols.PortForward);
        try
        {
            await foreach (var stream in session.IncomingStreams.ReadAllAsync(cancel.Token).ConfigureAwait(false))
            {
                var type = stream.Header(SpdyRemoteCommand.StreamTypeHeader);
                if (type is not ("data" or "error"))
                {
                    StreamLog.SpdyStreamRefused(context.Logger, stream.Id, $"stream type '{type}' is not data or error");
                    await stream.ResetAsync(SpdyRstStatus.RefusedStream).ConfigureAwait(false);
                    continue;
                }

                var id = RequestId(stream, type);
                string? refusal = null;
                Pair? complete = null;
                lock (pending)
                {
                    if (!pending.TryGetValue(id, out var pair))
                    {
                        pair = new Pair();
                        pending[id] = pair;
                        _ = ExpireAsync(pending, id, pair, context, cancel.Token);
                    }

                    if ((type == "data" ? pair.Data : pair.Error) is not null)
                    {
                        refusal = $"a second '{type}' stream for request {id}";
                    }
                    else if (type == "data")
                    {
                        pair.Data = stream;
                    }
                    else
                    {
                        pair.Error = stream;
                    }

                    if (refusal is null && pair is { Data: not null, Error: not null })
                    {
                        pending.Remove(id);
                        complete = pair;
                    }
                }

                if (refusal is not null)
                {
                    StreamLog.SpdyStreamRefused(context.Logger, stream.Id, refusal);
                    await stream.ResetAsync(SpdyRstStatus.ProtocolError).ConfigureAwait(false);
                    continue;
                }

                await stream.ReplyAsync().ConfigureAwait(false);
                if (complete is not null)
                {
                    forwards.RemoveAll(t => t.IsCompleted);
                    forwards.Add(ForwardAsync(context, request, complete.Data!, complete.Error!, cancel.Token));
                }
            }

            // The client sent GOAWAY (or the session ended): the connections under way finish first.
            await Task.WhenAll(forwards).ConfigureAwait(false);
            await session.CloseAsync(StreamContext.Linger).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
            // the client went away, the connection idled out, or the server stops
        }
        finally
        {
            session.Abort();
            await Task.WhenAll(forwards).ConfigureAwait(false);
            await run.ConfigureAwait(false);
            await idle.ConfigureAwait(false);
            StreamLog.StreamEnded(context.Logger, "portforward", request.PodId, session.EndReason ?? "the client closed the session");
        }
    }

    /// <summary>The pair's id: the requestID header; older clients send none, and kubelet pairs their streams by id
    /// (an error stream N and the data stream N+2 that follows it), which is kept here.</summary>
    private static string RequestId(SpdyStream stream, string type) =>
        stream.Header(RequestIdHeader) is { Length: > 0 } id
            ? id
            : (type == "error" ? stream.Id : stream.Id - 2).ToString(CultureInfo.InvariantCulture);

    /// <summary>A pair still incomplete after the creation timeout is told so and reset.</summary>
    private static async Task ExpireAsync(Dictionary<string, Pair> pending, string id, Pair pair, StreamContext context, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(context.Options.CreationTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        lock (pending)
        {
            if (!pending.TryGetValue(id, out var current) || current != pair)
            {
                return;
            }

            pending.Remove(id);
        }

        try
        {
            if (pair.Error is { } error)
            {
                await error.WriteAsync(Encoding.UTF8.GetBytes("timed out waiting for the data stream"), cancellationToken).ConfigureAwait(false);
                await error.CloseWriteAsync().ConfigureAwait(false);
            }

            if (pair.Data is { } data)
            {
                await data.ResetAsync(SpdyRstStatus.Cancel).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            // the session is over
        }
    }

    private static async Task ForwardAsync(StreamContext context, PortForwardStream request, SpdyStream data, SpdyStream error, CancellationToken cancellationToken)
    {
        error.DiscardInput();
        var port = data.Header(PortHeader);
        IDisposable? lease = null;
        System.Net.Sockets.Socket? socket = null;
        try
        {
            string? failure;
            Task? fromClient = null;
            try
            {
                var number = ParsePort(port, request);
                lease = context.Limits.TryAcquire(request.PodId, out var refused) ?? throw new PortForwardException(refused);
                socket = await context.Backend.OpenPortAsync(request.PodId, number, cancellationToken).ConfigureAwait(false);
                fromClient = PortForwardCopy.FromClientAsync(data.ReadAsync, socket, cancellationToken);
                failure = data.PrefersPipe
                    ? await PortForwardCopy.ToClientThroughPipeAsync(socket, data.WriteFromPipeAsync, cancellationToken).ConfigureAwait(false)
                    : await PortForwardCopy.ToClientAsync(socket, data.WriteAsync, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is PortForwardException or Nacelle.Common.NacelleException)
            {
                failure = e.Message;
            }

            if (failure is not null)
            {
                failure = $"error forwarding port {port} to pod {request.PodId}: {failure}";
                StreamLog.PortForwardFailed(context.Logger, request.PodId, failure);
                await error.WriteAsync(Encoding.UTF8.GetBytes(failure), cancellationToken).ConfigureAwait(false);
            }

            // The pod's side is done: the client is told (it waits for both streams to finish), then its side is
            // awaited, which ends when it finishes or resets the data stream.
            await data.CloseWriteAsync().ConfigureAwait(false);
            await error.CloseWriteAsync().ConfigureAwait(false);
            if (fromClient is not null)
            {
                await fromClient.ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
            // the session is over
        }
#pragma warning disable CA1031 // one connection's failure must not end the session or the daemon
        catch (Exception e)
#pragma warning restore CA1031
        {
            StreamLog.StreamFailed(context.Logger, e, "portforward", e.Message);
            await data.ResetAsync(SpdyRstStatus.InternalError).ConfigureAwait(false);
            await error.ResetAsync(SpdyRstStatus.InternalError).ConfigureAwait(false);
        }
        finally
        {
            socket?.Dispose();
            lease?.Dispose();
        }
    }

    /// <summary>The port named by a data stream; refused when it is no port, or not one the request granted.</summary>
    internal static int ParsePort(string? header, PortForwardStream request)
    {
        if (!int.TryParse(header, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            throw new PortForwardException($"invalid port header '{header}': a port from 1 to 65535 is needed");
        }

        if (request.Ports.Count > 0 && !request.Ports.Contains(port))
        {
            throw new PortForwardException(
                $"port {port} is not one this port-forward was granted ({string.Join(", ", request.Ports)})");
        }

        return port;
    }
}
