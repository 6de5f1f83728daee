using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Nacelle.ContainerCore.Interop;

/// <summary>
/// Terminals of tty containers: the pty master arrives from the spawn helper as SCM_RIGHTS on its control socket
/// (recvmsg), and its window size can be changed (TIOCSWINSZ). The pty itself is allocated by the helper from the
/// container's own devpts, so inside the container it is a /dev/pts/N the container can see.
/// </summary>
public static partial class Pty
{
    private const int SOL_SOCKET = 1;
    private const int SCM_RIGHTS = 1;
    private const int MSG_DONTWAIT = 0x40;
    private const int MSG_CTRUNC = 0x8;
    private const int MSG_CMSG_CLOEXEC = 0x40000000;
    private const ulong TIOCSWINSZ = 0x5414;
    private const int EINTR = 4;
    private const int EAGAIN = 11;
    private const int ECONNRESET = 104;

    // 64-bit Linux layouts: struct msghdr is 56 bytes (name 0, namelen 8, iov 16, iovlen 24, control 32,
    // controllen 40, flags 48); struct cmsghdr is len (8 bytes), level, type, then data at 16.
    private const int MsgHdrSize = 56;
    private const int CmsgDataOffset = 16;
    private const int ControlSize = 64;

    /// <summary>
    /// One datagram without blocking: its length (0 at end of stream, -1 when none is waiting) and the descriptors
    /// it carried (close-on-exec, owned by the caller; empty when none).
    /// </summary>
    public static unsafe int TryReceiveWithDescriptors(SafeFileHandle socket, Span<byte> buffer, List<SafeFileHandle> descriptors)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentNullException.ThrowIfNull(descriptors);
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
                var n = recvmsg((int)socket.DangerousGetHandle(), header, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
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
                            throw new IOException($"recvmsg: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
                    }
                }

                CollectDescriptors(control, (int)Math.Min(*(nint*)(header + 40), ControlSize), descriptors);
                if ((*(int*)(header + 48) & MSG_CTRUNC) != 0)
                {
                    // More descriptors than room: the kernel closed the rest; what arrived is still returned.
                }

                return (int)n;
            }
        }
    }

    private static unsafe void CollectDescriptors(byte* control, int length, List<SafeFileHandle> descriptors)
    {
        var offset = 0;
        while (offset + CmsgDataOffset <= length)
        {
            var cmsgLength = (int)*(nint*)(control + offset);
            if (cmsgLength < CmsgDataOffset || offset + cmsgLength > length)
            {
                break;
            }

            var level = *(int*)(control + offset + 8);
            var type = *(int*)(control + offset + 12);
            if (level == SOL_SOCKET && type == SCM_RIGHTS)
            {
                for (var at = CmsgDataOffset; at + sizeof(int) <= cmsgLength; at += sizeof(int))
                {
                    descriptors.Add(new SafeFileHandle(*(int*)(control + offset + at), ownsHandle: true));
                }
            }

            offset += (cmsgLength + 7) & ~7;
        }
    }

    /// <summary>Sets a terminal's window size (rows x columns); the foreground process group gets SIGWINCH.</summary>
    public static unsafe void SetWindowSize(SafeFileHandle terminal, ushort rows, ushort columns)
    {
        ArgumentNullException.ThrowIfNull(terminal);
        var size = stackalloc ushort[4];
        size[0] = rows;
        size[1] = columns;
        size[2] = 0;
        size[3] = 0;
        if (ioctl((int)terminal.DangerousGetHandle(), TIOCSWINSZ, size) < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"ioctl(TIOCSWINSZ): {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint recvmsg(int socket, byte* message, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int ioctl(int fd, ulong request, void* argument);
}
