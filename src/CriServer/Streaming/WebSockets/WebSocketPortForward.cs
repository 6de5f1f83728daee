using System.Buffers.Binary;
using System.Globalization;
using System.Net.WebSockets;
using System.Text;

namespace Nacelle.CriServer.Streaming.WebSockets;

/// <summary>
/// Port forwarding over a WebSocket: port i of the session (in the order the client named them) has channel 2i for
/// data and 2i+1 for errors; the first message on each carries the port as a little-endian uint16, as kubelet sends
/// it. One connection per port, opened when the session starts; the session closes when every connection has.
/// </summary>
internal static class WebSocketPortForward
{
    /// <summary>
    /// The ports of a WebSocket session: the <c>ports</c> (or kubelet's <c>port</c>) query parameters when the
    /// client gives them, which must then be among the ports the request granted (if it named any); else the
    /// request's ports. Throws <see cref="PortForwardException"/> when there are none or one is invalid.
    /// </summary>
    public static IReadOnlyList<int> Ports(IEnumerable<string?> queryValues, PortForwardStream request)
    {
        ArgumentNullException.ThrowIfNull(queryValues);
        ArgumentNullException.ThrowIfNull(request);
        var ports = new List<int>();
        foreach (var value in queryValues.SelectMany(v => (v ?? string.Empty).Split(',')))
        {
            if (!int.TryParse(value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
            {
                throw new PortForwardException($"'{value}' in the ports query parameter is not a port from 1 to 65535");
            }

            if (request.Ports.Count > 0 && !request.Ports.Contains(port))
            {
                throw new PortForwardException($"port {port} is not one this port-forward was granted ({string.Join(", ", request.Ports)})");
            }

            if (ports.Contains(port))
            {
                throw new PortForwardException($"port {port} is named twice");
            }

            ports.Add(port);
        }

        if (ports.Count == 0)
        {
            ports.AddRange(request.Ports);
        }

        return ports.Count > 0
            ? ports
            : throw new PortForwardException("no port to forward: name them in the ports query parameter (ports=80,8080) or in the PortForward request");
    }

    public static async Task ServeAsync(StreamContext context, string protocol, WebSocket socket, IReadOnlyList<int> ports)
    {
        var request = (PortForwardStream)context.Request;
        var codec = new WebSocketChannelCodec(base64: protocol == StreamProtocols.V4Base64, closeSignal: false);
        var channels = new WebSocketChannels(socket, codec, Enumerable.Range(0, ports.Count).Select(i => 2 * i), context.Logger);
        var run = channels.RunAsync();
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(context.Cancellation, channels.Closed);
        var idle = IdleWatch.RunAsync(() => channels.LastActivity, context.Options.IdleTimeout, channels.Abort, cancel.Token);
        StreamLog.StreamConnected(context.Logger, "portforward", request.PodId, "websocket", protocol);
        try
        {
            var prefix = new byte[2];
            for (var i = 0; i < ports.Count; i++)
            {
                BinaryPrimitives.WriteUInt16LittleEndian(prefix, (ushort)ports[i]);
                await channels.WriteAsync(2 * i, prefix, cancel.Token).ConfigureAwait(false);
                await channels.WriteAsync((2 * i) + 1, prefix, cancel.Token).ConfigureAwait(false);
            }

            await Task.WhenAll(ports.Select((port, i) => ForwardAsync(context, channels, i, port, cancel.Token))).ConfigureAwait(false);
            await channels.CloseAsync(StreamContext.Linger).ConfigureAwait(false);
            StreamLog.StreamEnded(context.Logger, "portforward", request.PodId, "every forwarded connection closed");
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            StreamLog.StreamEnded(context.Logger, "portforward", request.PodId, channels.EndReason ?? e.Message);
        }
        finally
        {
            channels.Abort();
            await run.ConfigureAwait(false);
            await idle.ConfigureAwait(false);
        }
    }

    private static async Task ForwardAsync(StreamContext context, WebSocketChannels channels, int index, int port, CancellationToken cancellationToken)
    {
        var podId = context.Request.PodId;
        using var fromClientDone = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        string? failure;
        Task? fromClient = null;
        IDisposable? lease = null;
        System.Net.Sockets.Socket? connection = null;
        try
        {
            lease = context.Limits.TryAcquire(podId, out var refused) ?? throw new PortForwardException(refused);
            connection = await context.Backend.OpenPortAsync(podId, port, cancellationToken).ConfigureAwait(false);
            fromClient = PortForwardCopy.FromClientAsync((b, t) => channels.ReadAsync(2 * index, b, t), connection, fromClientDone.Token);
            failure = await PortForwardCopy.ToClientAsync(connection, (b, t) => channels.WriteAsync(2 * index, b, t), cancellationToken)
                .ConfigureAwait(false);
        }
        catch (Exception e) when (e is PortForwardException or Nacelle.Common.NacelleException)
        {
            failure = e.Message;
        }
        finally
        {
            // The pod closed its side: with no way to tell the client so on a v4 channel, the connection is done.
            await fromClientDone.CancelAsync().ConfigureAwait(false);
            if (fromClient is not null)
            {
                await fromClient.ConfigureAwait(false);
            }

            connection?.Dispose();
            lease?.Dispose();
        }

        channels.StopReading(2 * index);
        if (failure is not null)
        {
            failure = $"error forwarding port {port} to pod {podId}: {failure}";
            StreamLog.PortForwardFailed(context.Logger, podId, failure);
            await channels.WriteAsync((2 * index) + 1, Encoding.UTF8.GetBytes(failure), cancellationToken).ConfigureAwait(false);
        }
    }
}
