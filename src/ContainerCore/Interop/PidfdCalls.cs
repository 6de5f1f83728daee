using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Nacelle.ContainerCore.Interop;

/// <summary>pidfd_open(2), pidfd_send_signal(2), waitid(P_PIDFD) and poll(2) on one fd (glibc 2.36 wrappers).</summary>
public static partial class PidfdCalls
{
    private const int P_PIDFD = 3;
    private const int WEXITED = 4;
    private const int WNOHANG = 1;
    private const int WNOWAIT = 0x01000000;
    private const short POLLIN = 0x1;
    private const int ESRCH = 3;
    private const int EINTR = 4;
    private const int ECHILD = 10;

    // siginfo_t is 128 bytes; for SIGCHLD: si_code at 8, si_pid at 16, si_status at 24 (64-bit Linux).
    private const int SiginfoSize = 128;

    public const int CLD_EXITED = 1;
    public const int CLD_KILLED = 2;
    public const int CLD_DUMPED = 3;

    /// <summary>A pidfd for <paramref name="pid"/>; throws when the process does not exist (ESRCH).</summary>
    public static SafeFileHandle Open(int pid)
    {
        var fd = pidfd_open(pid, 0);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"pidfd_open({pid}): {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }

        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>Signals exactly the process the pidfd refers to; false when it has exited (ESRCH).</summary>
    public static bool SendSignal(SafeFileHandle pidfd, int signal)
    {
        if (pidfd_send_signal((int)pidfd.DangerousGetHandle(), signal, IntPtr.Zero, 0) == 0)
        {
            return true;
        }

        var errno = Marshal.GetLastPInvokeError();
        if (errno == ESRCH)
        {
            return false;
        }

        throw new IOException($"pidfd_send_signal: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
    }

    /// <summary>Waits up to <paramref name="timeoutMs"/> for the process to exit (the pidfd turns readable).</summary>
    public static unsafe bool PollExited(SafeFileHandle pidfd, int timeoutMs)
    {
        var entry = new PollFd { Fd = (int)pidfd.DangerousGetHandle(), Events = POLLIN };
        while (true)
        {
            var ready = poll(&entry, 1, timeoutMs);
            if (ready >= 0)
            {
                return ready > 0;
            }

            var errno = Marshal.GetLastPInvokeError();
            if (errno != EINTR)
            {
                throw new IOException($"poll pidfd: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
            }
        }
    }

    /// <summary>
    /// The exit status of the exited child the pidfd refers to: (code, signal) from its siginfo, or null when it is not
    /// our child or has not exited yet. With <paramref name="reap"/> the zombie is collected; without it the status is
    /// only read (WNOWAIT), leaving the reaping to whoever owns the child. Never touches any other child (no waitpid(-1)).
    /// </summary>
    public static unsafe (int Code, int Signal, bool CoreDumped)? TryGetExit(SafeFileHandle pidfd, bool reap)
    {
        var info = stackalloc byte[SiginfoSize];
        new Span<byte>(info, SiginfoSize).Clear();
        var options = WEXITED | WNOHANG | (reap ? 0 : WNOWAIT);
        if (waitid(P_PIDFD, (uint)(int)pidfd.DangerousGetHandle(), info, options) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == ECHILD)
            {
                return null;
            }

            throw new IOException($"waitid(P_PIDFD): {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }

        var pid = *(int*)(info + 16);
        if (pid == 0)
        {
            return null; // WNOHANG and still running
        }

        var code = *(int*)(info + 8);
        var status = *(int*)(info + 24);
        return code == CLD_EXITED ? (status, 0, false) : (128 + status, status, code == CLD_DUMPED);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int pidfd_open(int pid, uint flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int pidfd_send_signal(int pidfd, int sig, IntPtr info, uint flags);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int waitid(int idtype, uint id, byte* infop, int options);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int poll(PollFd* fds, ulong nfds, int timeout);
}
