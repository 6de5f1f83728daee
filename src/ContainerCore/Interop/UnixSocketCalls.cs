using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Nacelle.ContainerCore.Interop;

/// <summary>
/// AF_UNIX stream sockets for an event loop, and descriptors passed over them: socket/bind/listen, accept4, and
/// sendmsg/recvmsg with SCM_RIGHTS. Everything here is non-blocking (-1: not now, EAGAIN); the caller waits for
/// readiness. The receive half takes any socket handle (a .NET Socket's SafeHandle too), so the daemon can take the
/// descriptors a monitor sends along an answer line.
/// </summary>
public static unsafe partial class UnixSocketCalls
{
    private const int AF_UNIX = 1;
    private const int SOCK_STREAM = 1;
    private const int SOCK_NONBLOCK = 0x800;
    private const int SOCK_CLOEXEC = 0x80000;
    private const int SOL_SOCKET = 1;
    private const int SCM_RIGHTS = 1;
    private const int MSG_DONTWAIT = 0x40;
    private const int MSG_CTRUNC = 0x8;
    private const int MSG_NOSIGNAL = 0x4000;
    private const int MSG_CMSG_CLOEXEC = 0x40000000;
    private const int EINTR = 4;
    private const int EAGAIN = 11;
    private const int ECONNRESET = 104;

    /// <summary>The most descriptors one message carries (the kernel allows 253).</summary>
    public const int MaxDescriptors = 16;

    // 64-bit Linux layouts: struct msghdr is 56 bytes (name 0, namelen 8, iov 16, iovlen 24, control 32, controllen 40,
    // flags 48); struct cmsghdr is len (8 bytes), level, type, then the data at 16; CMSG_SPACE rounds up to 8.
    private const int MsgHdrSize = 56;
    private const int CmsgDataOffset = 16;
    private const int ControlSize = CmsgDataOffset + (MaxDescriptors * sizeof(int));
    private const int SockaddrUnSize = 110;

    /// <summary>A listening socket bound to <paramref name="path"/> (which must not exist), non-blocking, close-on-exec.</summary>
    public static SafeFileHandle Listen(string path, int backlog)
    {
        var fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
        {
            throw Error("socket(AF_UNIX)");
        }

        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            var address = stackalloc byte[SockaddrUnSize];
            new Span<byte>(address, SockaddrUnSize).Clear();
            *(ushort*)address = AF_UNIX;
            var name = Encoding.UTF8.GetBytes(path);
            if (name.Length > SockaddrUnSize - 3)
            {
                throw new IOException($"bind {path}: the path is longer than a unix socket address holds");
            }

            name.CopyTo(new Span<byte>(address + 2, name.Length));
            if (bind(fd, address, (uint)(2 + name.Length + 1)) < 0)
            {
                throw Error($"bind {path}");
            }

            if (listen(fd, backlog) < 0)
            {
                throw Error($"listen {path}");
            }

            return handle;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>accept4: the next connection (non-blocking, close-on-exec), or null when none is waiting.</summary>
    public static SafeFileHandle? Accept(SafeHandle listener)
    {
        while (true)
        {
            var fd = accept4(Fd(listener), null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd >= 0)
            {
                return new SafeFileHandle(fd, ownsHandle: true);
            }

            var errno = Marshal.GetLastPInvokeError();
            switch (errno)
            {
                case EINTR:
                    continue;
                case EAGAIN:
                    return null;
                case ECONNRESET or 103: // the client gave up before we accepted (ECONNABORTED)
                    continue;
                default:
                    throw Error("accept4", errno);
            }
        }
    }

    /// <summary>
    /// sendmsg: <paramref name="data"/>, with <paramref name="descriptors"/> as SCM_RIGHTS on its first byte when given.
    /// Returns the bytes sent (the descriptors went with them), or -1 when the socket is full (EAGAIN: nothing was sent,
    /// descriptors included); other failures throw with their errno (EPIPE: the peer is gone).
    /// </summary>
    public static int Send(SafeHandle socket, ReadOnlySpan<byte> data, ReadOnlySpan<SafeHandle> descriptors = default)
    {
        if (descriptors.Length > MaxDescriptors)
        {
            throw new ArgumentException($"at most {MaxDescriptors} descriptors per message", nameof(descriptors));
        }

        if (data.IsEmpty)
        {
            throw new ArgumentException("a message carries at least one byte", nameof(data));
        }

        var control = stackalloc byte[ControlSize];
        var header = stackalloc byte[MsgHdrSize];
        var iov = stackalloc nint[2];
        var referenced = 0;
        try
        {
            new Span<byte>(header, MsgHdrSize).Clear();
            if (!descriptors.IsEmpty)
            {
                var length = CmsgDataOffset + (descriptors.Length * sizeof(int));
                new Span<byte>(control, ControlSize).Clear();
                *(nint*)control = length;
                *(int*)(control + 8) = SOL_SOCKET;
                *(int*)(control + 12) = SCM_RIGHTS;
                for (var i = 0; i < descriptors.Length; i++)
                {
                    var added = false;
                    descriptors[i].DangerousAddRef(ref added);
                    referenced++;
                    *(int*)(control + CmsgDataOffset + (i * sizeof(int))) = (int)descriptors[i].DangerousGetHandle();
                }

                *(nint*)(header + 32) = (nint)control;
                *(nint*)(header + 40) = (length + 7) & ~7;
            }

            fixed (byte* p = data)
            {
                iov[0] = (nint)p;
                iov[1] = data.Length;
                *(nint*)(header + 16) = (nint)iov;
                *(nint*)(header + 24) = 1;
                while (true)
                {
                    var n = sendmsg(Fd(socket), header, MSG_NOSIGNAL | MSG_DONTWAIT);
                    if (n >= 0)
                    {
                        return (int)n;
                    }

                    var errno = Marshal.GetLastPInvokeError();
                    if (errno == EAGAIN)
                    {
                        return -1;
                    }

                    if (errno != EINTR)
                    {
                        throw Error("sendmsg", errno);
                    }
                }
            }
        }
        finally
        {
            for (var i = 0; i < referenced; i++)
            {
                descriptors[i].DangerousRelease();
            }
        }
    }

    /// <summary>
    /// recvmsg without waiting: the bytes received (0 at end of stream, also after a reset), or -1 when nothing is
    /// there yet; descriptors that came along (SCM_RIGHTS, close-on-exec) are added to <paramref name="descriptors"/>,
    /// owned by the caller. Without a list, descriptors that arrive are closed. On a stream socket a message with
    /// descriptors is never merged with data sent before it, so the descriptors arrive with the first byte of the line
    /// they were sent with.
    /// </summary>
    public static int Receive(SafeHandle socket, Span<byte> buffer, List<SafeFileHandle>? descriptors = null)
    {
        ArgumentNullException.ThrowIfNull(socket);
        var control = stackalloc byte[ControlSize];
        var header = stackalloc byte[MsgHdrSize];
        var iov = stackalloc nint[2];
        fixed (byte* data = buffer)
        {
            while (true)
            {
                new Span<byte>(control, ControlSize).Clear();
                new Span<byte>(header, MsgHdrSize).Clear();
                iov[0] = (nint)data;
                iov[1] = buffer.Length;
                *(nint*)(header + 16) = (nint)iov;
                *(nint*)(header + 24) = 1;
                *(nint*)(header + 32) = (nint)control;
                *(nint*)(header + 40) = ControlSize;
                var n = recvmsg(Fd(socket), header, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
                if (n < 0)
                {
                    var errno = Marshal.GetLastPInvokeError();
                    switch (errno)
                    {
                        case EINTR:
                            continue;
                        case EAGAIN:
                            return -1;
                        case ECONNRESET:
                            return 0;
                        default:
                            throw Error("recvmsg", errno);
                    }
                }

                // With MSG_CTRUNC the kernel closed what did not fit; what arrived is still returned.
                _ = *(int*)(header + 48) & MSG_CTRUNC;
                CollectDescriptors(control, (int)Math.Min(*(nint*)(header + 40), ControlSize), descriptors);
                return (int)n;
            }
        }
    }

    private static void CollectDescriptors(byte* control, int length, List<SafeFileHandle>? descriptors)
    {
        var offset = 0;
        while (offset + CmsgDataOffset <= length)
        {
            var cmsgLength = (int)*(nint*)(control + offset);
            if (cmsgLength < CmsgDataOffset || offset + cmsgLength > length)
            {
                break;
            }

            if (*(int*)(control + offset + 8) == SOL_SOCKET && *(int*)(control + offset + 12) == SCM_RIGHTS)
            {
                for (var at = CmsgDataOffset; at + sizeof(int) <= cmsgLength; at += sizeof(int))
                {
                    var received = new SafeFileHandle(*(int*)(control + offset + at), ownsHandle: true);
                    if (descriptors is null)
                    {
                        received.Dispose();
                    }
                    else
                    {
                        descriptors.Add(received);
                    }
                }
            }

            offset += (cmsgLength + 7) & ~7;
        }
    }

    private static int Fd(SafeHandle handle) => (int)handle.DangerousGetHandle();

    private static IOException Error(string what, int? errno = null)
    {
        var e = errno ?? Marshal.GetLastPInvokeError();
        return new IOException($"{what}: {Marshal.GetPInvokeErrorMessage(e)}", e);
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int socket(int domain, int type, int protocol);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int bind(int fd, byte* address, uint length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int listen(int fd, int backlog);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int accept4(int fd, byte* address, uint* length, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint sendmsg(int fd, byte* message, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint recvmsg(int fd, byte* message, int flags);
}
