using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Nacelle.ContainerCore.Interop;

/// <summary>unshare(2) and setns(2) of the calling thread's network namespace.</summary>
public static partial class NamespaceCalls
{
    private const int CLONE_NEWNET = 0x40000000;

    /// <summary>Moves the calling thread into a new network namespace.</summary>
    public static void UnshareNetwork()
    {
        if (unshare(CLONE_NEWNET) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"unshare(CLONE_NEWNET): {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }
    }

    /// <summary>Moves the calling thread into the network namespace <paramref name="ns"/> refers to.</summary>
    public static void JoinNetwork(SafeFileHandle ns)
    {
        ArgumentNullException.ThrowIfNull(ns);
        if (setns((int)ns.DangerousGetHandle(), CLONE_NEWNET) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"setns(CLONE_NEWNET): {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int unshare(int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setns(int fd, int nstype);
}
