using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Nacelle.ContainerCore.Interop;

/// <summary>
/// The syscalls the cgroup managers need with their errno: writing a control file in one write(2) (the kernel
/// acts on each write and reports EINVAL/EBUSY/ESRCH per write), rmdir(2) (cgroup directories hold pseudo-files, so
/// only rmdir removes them) and open(O_PATH|O_DIRECTORY) for a cgroup directory fd (clone3 CLONE_INTO_CGROUP).
/// </summary>
public static partial class CgroupCalls
{
    public const int ENOENT = 2;
    public const int ESRCH = 3;
    public const int EINTR = 4;
    public const int EBUSY = 16;
    public const int EINVAL = 22;

    private const int O_WRONLY = 0x1;
    private const int O_TRUNC = 0x200;
    private const int O_CLOEXEC = 0x80000;
    private const int O_PATH = 0x200000;

    private static int ODirectory => OpenFlags.Directory;

    /// <summary>Writes <paramref name="value"/> to <paramref name="path"/> with a single write(2); returns 0 or the errno.</summary>
    public static unsafe int WriteFile(string path, string value)
    {
        var fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC, 0);
        if (fd < 0)
        {
            return Marshal.GetLastPInvokeError();
        }

        try
        {
            var bytes = Encoding.UTF8.GetBytes(value);
            fixed (byte* data = bytes)
            {
                while (true)
                {
                    var written = write(fd, data, (nuint)bytes.Length);
                    if (written >= 0)
                    {
                        return 0;
                    }

                    var errno = Marshal.GetLastPInvokeError();
                    if (errno != EINTR)
                    {
                        return errno;
                    }
                }
            }
        }
        finally
        {
            _ = close(fd);
        }
    }

    /// <summary>rmdir(2); returns 0 or the errno.</summary>
    public static int RemoveDirectory(string path) =>
        rmdir(path) == 0 ? 0 : Marshal.GetLastPInvokeError();

    /// <summary>Opens a directory with O_PATH|O_DIRECTORY|O_CLOEXEC; throws IOException naming the path and errno.</summary>
    public static SafeFileHandle OpenDirectoryPath(string path)
    {
        var fd = open(path, O_PATH | ODirectory | O_CLOEXEC, 0);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"open {path} (O_PATH|O_DIRECTORY): {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }

        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>The text of an errno (strerror).</summary>
    public static string ErrorText(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    private const int BPF_PROG_LOAD = 5;
    private const int BPF_PROG_ATTACH = 8;
    private const uint BPF_PROG_TYPE_CGROUP_DEVICE = 15;
    private const uint BPF_CGROUP_DEVICE = 6;

    private static long BpfSyscall => RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 321,
        Architecture.Arm64 => 280,
        var other => throw new PlatformNotSupportedException($"bpf(2) syscall number unknown for {other}"),
    };

    /// <summary>
    /// Loads a BPF_PROG_TYPE_CGROUP_DEVICE program and attaches it to the cgroup2 directory <paramref name="cgroup"/>
    /// without flags, so it replaces the program nacelle attached there before. Throws IOException with the errno and,
    /// when loading fails, the verifier's log.
    /// </summary>
    public static unsafe void AttachDeviceProgram(SafeFileHandle cgroup, ReadOnlySpan<byte> instructions)
    {
        var license = "Apache-2.0\0"u8;
        var log = new byte[65536];
        var attr = stackalloc byte[128];
        new Span<byte>(attr, 128).Clear();
        int programFd;
        fixed (byte* insns = instructions)
        fixed (byte* licensePtr = license)
        fixed (byte* logPtr = log)
        {
            *(uint*)(attr + 0) = BPF_PROG_TYPE_CGROUP_DEVICE;
            *(uint*)(attr + 4) = (uint)(instructions.Length / 8);
            *(ulong*)(attr + 8) = (ulong)insns;
            *(ulong*)(attr + 16) = (ulong)licensePtr;
            *(uint*)(attr + 24) = 1; // log_level
            *(uint*)(attr + 28) = (uint)log.Length;
            *(ulong*)(attr + 32) = (ulong)logPtr;
            programFd = (int)syscall(BpfSyscall, BPF_PROG_LOAD, attr, 128);
        }

        if (programFd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            var verifier = Encoding.UTF8.GetString(log, 0, Math.Max(0, Array.IndexOf(log, (byte)0))).Trim();
            throw new IOException($"bpf(BPF_PROG_LOAD) device filter: {Marshal.GetPInvokeErrorMessage(errno)}; verifier: {verifier}", errno);
        }

        try
        {
            new Span<byte>(attr, 128).Clear();
            *(uint*)(attr + 0) = (uint)cgroup.DangerousGetHandle();
            *(uint*)(attr + 4) = (uint)programFd;
            *(uint*)(attr + 8) = BPF_CGROUP_DEVICE;
            *(uint*)(attr + 12) = 0; // no BPF_F_ALLOW_OVERRIDE / BPF_F_ALLOW_MULTI: replace ours
            if (syscall(BpfSyscall, BPF_PROG_ATTACH, attr, 128) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                throw new IOException($"bpf(BPF_PROG_ATTACH) device filter: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
            }
        }
        finally
        {
            _ = close(programFd); // the cgroup keeps the attached program alive
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial long syscall(long number, int command, byte* attr, uint size);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string pathname, int flags, uint mode);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint write(int fd, byte* buf, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int rmdir(string pathname);
}
