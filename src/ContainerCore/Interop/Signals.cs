using System.Runtime.InteropServices;

namespace Nacelle.ContainerCore.Interop;

/// <summary>Signal numbers (x86_64/arm64 Linux share these) and kill(2).</summary>
public static partial class Signals
{
    public const int SIGHUP = 1;
    public const int SIGINT = 2;
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;

    private const int ESRCH = 3;

    /// <summary>Sends <paramref name="signal"/> to <paramref name="pid"/>; false when no such process exists.</summary>
    public static bool Send(int pid, int signal)
    {
        if (kill(pid, signal) == 0)
        {
            return true;
        }

        var errno = Marshal.GetLastPInvokeError();
        if (errno == ESRCH)
        {
            return false;
        }

        throw new IOException($"kill({pid}, {signal}): {Marshal.GetPInvokeErrorMessage(errno)}", errno);
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int sig);
}
