using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Nacelle.ContainerCore.Interop;

/// <summary>
/// Terminals of tty containers: the pty master arrives from the spawn helper as SCM_RIGHTS on its control socket
/// (<see cref="UnixSocketCalls.Receive"/>), and its window size can be changed (TIOCSWINSZ). The pty itself is
/// allocated by the helper from the container's own devpts, so inside the container it is a /dev/pts/N the container
/// can see.
/// </summary>
public static partial class Pty
{
    private const ulong TIOCSWINSZ = 0x5414;

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
    private static unsafe partial int ioctl(int fd, ulong request, void* argument);
}
