using System.Runtime.InteropServices;

namespace Nacelle.ContainerCore.Interop;

/// <summary>
/// splice(2) between a socket and a pipe, and send(2) with MSG_MORE, for copying a connection's bytes without bringing
/// them into this process. Both never block (whatever the descriptors' own mode): -1 means "not now" (EAGAIN), and the
/// caller waits for readiness. Every call holds a reference on its handles, so a descriptor closed meanwhile is not
/// reused under it.
/// </summary>
public static unsafe partial class SpliceCalls
{
    private const uint SPLICE_F_MOVE = 1;
    private const uint SPLICE_F_NONBLOCK = 2;
    private const uint SPLICE_F_MORE = 4;
    private const int MSG_DONTWAIT = 0x40;
    private const int MSG_NOSIGNAL = 0x4000;
    private const int MSG_MORE = 0x8000;

    /// <summary>Moves up to <paramref name="length"/> bytes from <paramref name="from"/> to <paramref name="to"/> (one of
    /// them a pipe): the bytes moved, 0 at the end of <paramref name="from"/>'s input, -1 when nothing can move now.
    /// <paramref name="more"/>: more data follows soon (SPLICE_F_MORE, for a socket). Other failures throw with their
    /// errno (ECONNRESET, EPIPE).</summary>
    public static int Splice(SafeHandle from, SafeHandle to, int length, bool more)
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(to);
        var fromAdded = false;
        var toAdded = false;
        try
        {
            from.DangerousAddRef(ref fromAdded);
            to.DangerousAddRef(ref toAdded);
            var flags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK | (more ? SPLICE_F_MORE : 0);
            while (true)
            {
                var moved = splice((int)from.DangerousGetHandle(), null, (int)to.DangerousGetHandle(), null, (nuint)length, flags);
                if (DescriptorCalls.Outcome(moved, "splice") is { } n)
                {
                    return n;
                }
            }
        }
        finally
        {
            if (toAdded)
            {
                to.DangerousRelease();
            }

            if (fromAdded)
            {
                from.DangerousRelease();
            }
        }
    }

    /// <summary>send(2) on a connected socket without blocking: the bytes sent (possibly fewer), or -1 when its buffer
    /// is full. <paramref name="more"/>: more data follows at once (MSG_MORE: the kernel holds these bytes back to send
    /// them with it). Other failures throw with their errno.</summary>
    public static int Send(SafeHandle socket, ReadOnlySpan<byte> data, bool more)
    {
        ArgumentNullException.ThrowIfNull(socket);
        var added = false;
        try
        {
            socket.DangerousAddRef(ref added);
            var flags = MSG_DONTWAIT | MSG_NOSIGNAL | (more ? MSG_MORE : 0);
            fixed (byte* p = data)
            {
                while (true)
                {
                    if (DescriptorCalls.Outcome(send((int)socket.DangerousGetHandle(), p, (nuint)data.Length, flags), "send") is { } n)
                    {
                        return n;
                    }
                }
            }
        }
        finally
        {
            if (added)
            {
                socket.DangerousRelease();
            }
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint splice(int fdIn, long* offIn, int fdOut, long* offOut, nuint length, uint flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint send(int fd, byte* buffer, nuint length, int flags);
}
