using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Nacelle.ContainerCore.Interop;

/// <summary>
/// The system calls around starting the spawn helper: memfd_create and file seals (the helper runs from a sealed
/// in-memory copy), socketpair (its control socket), posix_spawn with fd remapping (also for plain host processes
/// whose exit the caller reaps itself through a pidfd), and getrlimit.
/// </summary>
public static partial class SpawnCalls
{
    private const uint MFD_CLOEXEC = 0x1;
    private const uint MFD_ALLOW_SEALING = 0x2;
    private const int F_ADD_SEALS = 1033;
    private const int F_GET_SEALS = 1034;
    private const int F_DUPFD_CLOEXEC = 1030;

    public const int F_SEAL_SEAL = 0x1;
    public const int F_SEAL_SHRINK = 0x2;
    public const int F_SEAL_GROW = 0x4;
    public const int F_SEAL_WRITE = 0x8;

    private const int AF_UNIX = 1;
    private const int SOCK_SEQPACKET = 5;
    private const int SOCK_CLOEXEC = 0x80000;

    /// <summary>An anonymous memory file that can be sealed, close-on-exec.</summary>
    public static SafeFileHandle CreateMemoryFile(string name, bool allowSealing)
    {
        var fd = memfd_create(name, MFD_CLOEXEC | (allowSealing ? MFD_ALLOW_SEALING : 0));
        return fd >= 0 ? new SafeFileHandle(fd, ownsHandle: true) : throw Error($"memfd_create({name})");
    }

    /// <summary>Adds seals to a memfd: with F_SEAL_WRITE|GROW|SHRINK|SEAL its content can never change again.</summary>
    public static void AddSeals(SafeFileHandle memfd, int seals)
    {
        if (fcntl(Fd(memfd), F_ADD_SEALS, seals) < 0)
        {
            throw Error("fcntl(F_ADD_SEALS)");
        }
    }

    /// <summary>The seals of a memfd.</summary>
    public static int GetSeals(SafeFileHandle memfd)
    {
        var seals = fcntl(Fd(memfd), F_GET_SEALS, 0);
        return seals >= 0 ? seals : throw Error("fcntl(F_GET_SEALS)");
    }

    /// <summary>A close-on-exec duplicate of <paramref name="handle"/> numbered at least <paramref name="minimum"/>.</summary>
    public static SafeFileHandle DuplicateAtLeast(SafeFileHandle handle, int minimum)
    {
        var fd = fcntl(Fd(handle), F_DUPFD_CLOEXEC, minimum);
        return fd >= 0 ? new SafeFileHandle(fd, ownsHandle: true) : throw Error("fcntl(F_DUPFD_CLOEXEC)");
    }

    /// <summary>A connected AF_UNIX SOCK_SEQPACKET pair, both ends close-on-exec.</summary>
    public static unsafe (SafeFileHandle First, SafeFileHandle Second) CreateSeqPacketPair()
    {
        var fds = stackalloc int[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
        {
            throw Error("socketpair");
        }

        return (new SafeFileHandle(fds[0], ownsHandle: true), new SafeFileHandle(fds[1], ownsHandle: true));
    }

    /// <summary>
    /// posix_spawn of <paramref name="path"/> whose fd i is <paramref name="childFds"/>[i] (null: /dev/null for 0-2).
    /// Every other fd of this process is close-on-exec in .NET, so the child gets exactly these. Returns the pid.
    /// </summary>
    public static unsafe int Spawn(string path, IReadOnlyList<string> argv, IReadOnlyList<SafeFileHandle?> childFds,
        bool newSession = false, IReadOnlyList<string>? environment = null)
    {
        var actions = stackalloc byte[FileActionsSize];
        var attributes = stackalloc byte[AttributesSize];
        Check(posix_spawnattr_init(attributes), "posix_spawnattr_init");
        if (newSession)
        {
            // Its own session and process group: a terminal hang-up or a signal to our group does not reach it.
            Check(posix_spawnattr_setflags(attributes, PosixSpawnSetsid), "posix_spawnattr_setflags");
        }

        Check(posix_spawn_file_actions_init(actions), "posix_spawn_file_actions_init");
        var strings = new List<IntPtr>();
        var duplicates = new List<int>();
        try
        {
            // Duplicate every source above the target range (0..n-1) first, so no dup2 overwrites a source still needed.
            var sources = new int[childFds.Count];
            for (var i = 0; i < childFds.Count; i++)
            {
                sources[i] = -1;
                if (childFds[i] is { } handle)
                {
                    var copy = fcntl(Fd(handle), F_DUPFD_CLOEXEC, childFds.Count);
                    if (copy < 0)
                    {
                        throw Error("fcntl(F_DUPFD_CLOEXEC)");
                    }

                    duplicates.Add(copy);
                    sources[i] = copy;
                }
            }

            for (var i = 0; i < childFds.Count; i++)
            {
                if (sources[i] < 0)
                {
                    Check(posix_spawn_file_actions_addopen(actions, i, "/dev/null", i == 0 ? 0 : 1, 0), "addopen");
                }
                else
                {
                    // dup2 onto the target clears close-on-exec there.
                    Check(posix_spawn_file_actions_adddup2(actions, sources[i], i), "adddup2");
                }
            }

            var args = new IntPtr[argv.Count + 1];
            for (var i = 0; i < argv.Count; i++)
            {
                args[i] = Marshal.StringToCoTaskMemUTF8(argv[i]);
                strings.Add(args[i]);
            }

            var env = new IntPtr[(environment?.Count ?? 0) + 1];
            for (var i = 0; i < env.Length - 1; i++)
            {
                env[i] = Marshal.StringToCoTaskMemUTF8(environment![i]);
                strings.Add(env[i]);
            }

            int pid;
            fixed (IntPtr* argvPtr = args, envPtr = env)
            {
                Check(posix_spawn(&pid, path, actions, (IntPtr)attributes, argvPtr, envPtr), $"posix_spawn {path}");
            }

            return pid;
        }
        finally
        {
            posix_spawn_file_actions_destroy(actions);
            posix_spawnattr_destroy(attributes);
            foreach (var s in strings)
            {
                Marshal.FreeCoTaskMem(s);
            }

            foreach (var fd in duplicates)
            {
                close(fd);
            }
        }
    }

    /// <summary>getrlimit(2) for resource number <paramref name="resource"/>.</summary>
    public static unsafe (ulong Soft, ulong Hard) GetResourceLimit(int resource)
    {
        var limits = stackalloc ulong[2];
        if (getrlimit(resource, limits) < 0)
        {
            throw Error($"getrlimit({resource})");
        }

        return (limits[0], limits[1]);
    }

    /// <summary>Sends bytes on a socket (MSG_NOSIGNAL); false when the peer has gone (EPIPE/ECONNRESET).</summary>
    public static unsafe bool Send(SafeFileHandle socket, ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            while (true)
            {
                var n = send(Fd(socket), p, (nuint)data.Length, MsgNoSignal);
                if (n >= 0)
                {
                    return true;
                }

                var errno = Marshal.GetLastPInvokeError();
                if (errno == 4)
                {
                    continue; // EINTR
                }

                if (errno is 32 or 104)
                {
                    return false; // EPIPE, ECONNRESET
                }

                throw Error("send", errno);
            }
        }
    }

    /// <summary>
    /// Receives one datagram without waiting (MSG_DONTWAIT): its length, 0 at end of stream (every peer closed its
    /// end), or -1 when nothing is there yet (wait with <see cref="Reactor.FdReactor"/>).
    /// </summary>
    public static unsafe int TryReceive(SafeFileHandle socket, Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                var n = recv(Fd(socket), p, (nuint)buffer.Length, MsgDontWait);
                if (n >= 0)
                {
                    return (int)n;
                }

                var errno = Marshal.GetLastPInvokeError();
                switch (errno)
                {
                    case 4: // EINTR
                        continue;
                    case 11: // EAGAIN
                        return -1;
                    case 104: // ECONNRESET: the peer is gone
                        return 0;
                    default:
                        throw Error("recv", errno);
                }
            }
        }
    }

    private const int MsgNoSignal = 0x4000;
    private const int MsgDontWait = 0x40;

    // glibc's posix_spawn_file_actions_t is 80 bytes and posix_spawnattr_t 336 on 64-bit Linux; keep a margin.
    private const int FileActionsSize = 128;
    private const int AttributesSize = 512;
    private const short PosixSpawnSetsid = 0x80;

    private static int Fd(SafeFileHandle handle) => (int)handle.DangerousGetHandle();

    private static void Check(int result, string what)
    {
        if (result != 0)
        {
            throw Error(what, result);
        }
    }

    private static IOException Error(string what, int? errno = null)
    {
        var e = errno ?? Marshal.GetLastPInvokeError();
        return new IOException($"{what}: {Marshal.GetPInvokeErrorMessage(e)}", e);
    }

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int memfd_create(string name, uint flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int cmd, int arg);

    [LibraryImport("libc")]
    private static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int socketpair(int domain, int type, int protocol, int* fds);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int getrlimit(int resource, ulong* limits);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint send(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint recv(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc")]
    private static unsafe partial int posix_spawnattr_init(byte* attributes);

    [LibraryImport("libc")]
    private static unsafe partial int posix_spawnattr_destroy(byte* attributes);

    [LibraryImport("libc")]
    private static unsafe partial int posix_spawnattr_setflags(byte* attributes, short flags);

    [LibraryImport("libc")]
    private static unsafe partial int posix_spawn_file_actions_init(byte* actions);

    [LibraryImport("libc")]
    private static unsafe partial int posix_spawn_file_actions_destroy(byte* actions);

    [LibraryImport("libc")]
    private static unsafe partial int posix_spawn_file_actions_adddup2(byte* actions, int fd, int newFd);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int posix_spawn_file_actions_addopen(byte* actions, int fd, string path, int flags, uint mode);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int posix_spawn(int* pid, string path, byte* actions, IntPtr attributes, IntPtr* argv, IntPtr* envp);
}
