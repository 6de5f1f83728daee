using System.Buffers;
using System.Net.Sockets;

namespace Nacelle.CriServer.Streaming;

/// <summary>The two directions of a forwarded connection, each through one bounded buffer.</summary>
internal static class PortForwardCopy
{
    private const int BufferSize = 128 * 1024;

    /// <summary>Pod to client until the pod closes its side; returns why it failed, or null.</summary>
    public static async Task<string?> ToClientAsync(Socket socket, Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> write,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentNullException.ThrowIfNull(write);
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            while (true)
            {
                var read = await socket.ReceiveAsync(buffer.AsMemory(0, BufferSize), SocketFlags.None, cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    return null;
                }

                await write(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
            }
        }
        catch (SocketException e)
        {
            return e.Message;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Client to pod until the client ends its side, which then ends the socket's sending side (the pod reads
    /// EOF). Never throws: the other direction reports the connection's failures.</summary>
    public static async Task FromClientAsync(Func<Memory<byte>, CancellationToken, ValueTask<int>> read, Socket socket, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(read);
        ArgumentNullException.ThrowIfNull(socket);
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            while (true)
            {
                var length = await read(buffer.AsMemory(0, BufferSize), cancellationToken).ConfigureAwait(false);
                if (length == 0)
                {
                    socket.Shutdown(SocketShutdown.Send);
                    return;
                }

                var sent = 0;
                while (sent < length)
                {
                    sent += await socket.SendAsync(buffer.AsMemory(sent, length - sent), SocketFlags.None, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            // the connection is over on one side or the other
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}

/// <summary>A forwarded connection refused before it was made; the message goes to the client's error channel.</summary>
internal sealed class PortForwardException(string message) : Exception(message);
