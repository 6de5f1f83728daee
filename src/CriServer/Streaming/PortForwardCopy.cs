using System.Buffers;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Reactor;

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

    /// <summary>The pipe between the pod's socket and the client's: what one splice(2) moves at most, one data frame. Pipe
    /// pages count against the user's pipe-user-pages-soft (16384 pages by default), which every unprivileged process of
    /// the same uid shares: 32 per connection keeps the default stream.max_streams (256) at half of it.</summary>
    private const int PipeSize = 128 * 1024;

    /// <summary>A connection whose pipe the pod keeps filling is a bulk transfer: its pipe grows to this (the
    /// pipe-max-size default) so that each splice and each data frame carries 8 times as much, which is what the client
    /// pays for per frame (a Go client allocates, reads and hands over one buffer per frame).</summary>
    internal const int LargePipeSize = 1024 * 1024;

    /// <summary>Large pipes at once in this process (1024 pages at most on top of the 32 per connection), so that the
    /// worst case stays within the soft limit above.</summary>
    internal static readonly PipeGrowthSlots LargePipes = new(4);

    /// <summary>Pod to client until the pod closes its side, without the bytes entering this process: splice(2) moves
    /// what the pod sent into a pipe of <see cref="PipeSize"/> (the bound on what is in flight; <see
    /// cref="LargePipeSize"/> once a splice filled it and one of <see cref="LargePipes"/> is free), and
    /// <paramref name="send"/> takes it from there. Returns why it failed, or null.</summary>
    public static async Task<string?> ToClientThroughPipeAsync(Socket socket, Func<SafeHandle, int, CancellationToken, ValueTask> send,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentNullException.ThrowIfNull(send);
        var (read, write) = DescriptorCalls.CreatePipe(nonBlockingRead: true, nonBlockingWrite: true);
        var large = false;
        using (read)
        using (write)
        {
            try
            {
                var size = DescriptorCalls.SetPipeSize(write, PipeSize);
                size = size > 0 ? size : DescriptorCalls.GetPipeSize(write);
                var pod = socket.SafeHandle;
                while (true)
                {
                    int moved;
                    try
                    {
                        moved = SpliceCalls.Splice(pod, write, size, more: false);
                    }
                    catch (IOException e)
                    {
                        return e.Message;
                    }

                    if (moved < 0)
                    {
                        await FdReactor.WaitReadableAsync(pod, cancellationToken).ConfigureAwait(false);
                        continue;
                    }

                    if (moved == 0)
                    {
                        return null;
                    }

                    await send(read, moved, cancellationToken).ConfigureAwait(false);
                    if (moved == size && !large && LargePipes.TryTake())
                    {
                        // The pipe is empty again: growing it cannot fail for its contents. Refused (EPERM for a
                        // limit), the connection goes on with the pipe it has.
                        var grown = DescriptorCalls.SetPipeSize(write, LargePipeSize);
                        large = grown > size;
                        size = large ? grown : size;
                        if (!large)
                        {
                            LargePipes.Release();
                        }
                    }
                }
            }
            finally
            {
                if (large)
                {
                    LargePipes.Release();
                }
            }
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

/// <summary>A bounded number of grants, taken and given back without waiting.</summary>
internal sealed class PipeGrowthSlots(int count)
{
    private int _taken;

    /// <summary>Grants held now.</summary>
    public int Taken => Volatile.Read(ref _taken);

    public bool TryTake()
    {
        if (Interlocked.Increment(ref _taken) <= count)
        {
            return true;
        }

        Interlocked.Decrement(ref _taken);
        return false;
    }

    public void Release() => Interlocked.Decrement(ref _taken);
}

/// <summary>A forwarded connection refused before it was made; the message goes to the client's error channel.</summary>
internal sealed class PortForwardException(string message) : Exception(message);
