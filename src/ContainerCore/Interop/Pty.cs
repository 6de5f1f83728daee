using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Nacelle.ContainerCore.Interop;

/// <summary>
/// Terminals of tty containers: the pty master arrives from the spawn helper as SCM_RIGHTS on its control socket
/// (<see cref="UnixSocketCalls.Receive"/>), its window size can be changed (TIOCSWINSZ) and its input mode read (TCGETS). The pty itself is
/// allocated by the helper from the container's own devpts, so inside the container it is a /dev/pts/N the container
/// can see.
/// </summary>
public static partial class Pty
{
    private const ulong TIOCSWINSZ = 0x5414;
    private const ulong TCGETS = 0x5401;

    /// <summary>The kernel's struct termios (TCGETS): four flag words, the line discipline, then NCCS (19) characters.</summary>
    private const int TermiosSize = 4 * 4 + 1 + 19;
    private const int LocalFlagsOffset = 12;
    private const int ControlCharactersOffset = 17;
    private const uint ICANON = 0x2;
    private const int VEOF = 4;

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

    /// <summary>The terminal's input mode: whether it reads lines (ICANON) and its end-of-file character (VEOF; 0 when
    /// disabled). On a pty master this reads the settings of the terminal the program uses (the slave's).</summary>
    public static unsafe (bool Canonical, byte EndOfFile) GetInputMode(SafeFileHandle terminal)
    {
        ArgumentNullException.ThrowIfNull(terminal);
        var termios = stackalloc byte[TermiosSize];
        if (ioctl((int)terminal.DangerousGetHandle(), TCGETS, termios) < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"ioctl(TCGETS): {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }

        var localFlags = *(uint*)(termios + LocalFlagsOffset);
        return ((localFlags & ICANON) != 0, termios[ControlCharactersOffset + VEOF]);
    }

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int ioctl(int fd, ulong request, void* argument);
}
