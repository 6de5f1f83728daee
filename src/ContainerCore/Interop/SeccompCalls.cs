using System.Runtime.InteropServices;

namespace Nacelle.ContainerCore.Interop;

/// <summary>
/// prctl(PR_SET_NO_NEW_PRIVS) and seccomp(SECCOMP_SET_MODE_FILTER) for tests and diagnostics. Both act on the CALLING
/// THREAD only (no TSYNC): call them on a dedicated thread that is never reused, never on a thread-pool or main thread.
/// Containers get their filter from the spawn helper, not from here.
/// </summary>
public static unsafe partial class SeccompCalls
{
    private const int PR_SET_NO_NEW_PRIVS = 38;
    private const int PR_GET_NO_NEW_PRIVS = 39;
    private const uint SECCOMP_SET_MODE_FILTER = 1;

    /// <summary>Sets no_new_privs on the calling thread.</summary>
    public static void SetNoNewPrivileges()
    {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        {
            throw Error("prctl(PR_SET_NO_NEW_PRIVS)");
        }
    }

    /// <summary>Whether no_new_privs is set on the calling thread.</summary>
    public static bool GetNoNewPrivileges()
    {
        var r = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
        return r < 0 ? throw Error("prctl(PR_GET_NO_NEW_PRIVS)") : r == 1;
    }

    /// <summary>Installs a classic BPF filter (struct sock_filter bytes) on the calling thread.</summary>
    public static void InstallFilter(ReadOnlySpan<byte> program, uint flags = 0)
    {
        if (program.Length == 0 || program.Length % 8 != 0 || program.Length / 8 > ushort.MaxValue)
        {
            throw new ArgumentException($"a seccomp program is a non-empty multiple of 8 bytes, not {program.Length}", nameof(program));
        }

        long nr = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 317,
            Architecture.Arm64 => 277,
            var other => throw new PlatformNotSupportedException($"seccomp on {other}"),
        };

        fixed (byte* filter = program)
        {
            var prog = new SockFprog { Len = (ushort)(program.Length / 8), Filter = filter };
            if (syscall(nr, SECCOMP_SET_MODE_FILTER, flags, &prog) != 0)
            {
                throw Error("seccomp(SECCOMP_SET_MODE_FILTER)");
            }
        }
    }

    private static IOException Error(string what)
    {
        var errno = Marshal.GetLastPInvokeError();
        return new IOException($"{what}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct SockFprog
    {
        public ushort Len;
        public byte* Filter;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int prctl(int option, ulong arg2, ulong arg3, ulong arg4, ulong arg5);

    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, uint operation, uint flags, SockFprog* args);
}
