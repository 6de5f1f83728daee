using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Nacelle.ContainerCore.Interop;

/// <summary>
/// Plain descriptor I/O for an event loop: pipe2(2), non-blocking read(2)/write(2), O_NONBLOCK, and a pipe's buffer
/// size (F_SETPIPE_SZ). Reads and writes never block on a non-blocking descriptor: -1 means "not now" (EAGAIN), and the
/// caller waits for readiness (<see cref="Reactor.FdReactor"/>).
/// </summary>
public static unsafe partial class DescriptorCalls
{
    private const int O_NONBLOCK = 0x800;
    private const int O_CLOEXEC = 0x80000;
    private const int F_GETFL = 3;
    private const int F_SETFL = 4;
    private const int F_SETPIPE_SZ = 1031;
    private const int F_GETPIPE_SZ = 1032;
    private const int EINTR = 4;
    private const int EAGAIN = 11;

    /// <summary>A pipe, both ends close-on-exec; each end non-blocking when asked (O_NONBLOCK belongs to the end, so a
    /// child may get a blocking end while this process keeps a non-blocking one).</summary>
    public static (SafeFileHandle Read, SafeFileHandle Write) CreatePipe(bool nonBlockingRead, bool nonBlockingWrite)
    {
        var fds = stackalloc int[2];
        if (pipe2(fds, O_CLOEXEC) < 0)
        {
            throw Error("pipe2");
        }

        var read = new SafeFileHandle(fds[0], ownsHandle: true);
        var write = new SafeFileHandle(fds[1], ownsHandle: true);
        try
        {
            if (nonBlockingRead)
            {
                SetNonBlocking(read, true);
            }

            if (nonBlockingWrite)
            {
                SetNonBlocking(write, true);
            }

            return (read, write);
        }
        catch
        {
            read.Dispose();
            write.Dispose();
            throw;
        }
    }

    /// <summary>Sets or clears O_NONBLOCK on the open file description behind <paramref name="handle"/>.</summary>
    public static void SetNonBlocking(SafeHandle handle, bool nonBlocking)
    {
        var fd = Fd(handle);
        var flags = fcntl(fd, F_GETFL, 0);
        if (flags < 0 || fcntl(fd, F_SETFL, nonBlocking ? flags | O_NONBLOCK : flags & ~O_NONBLOCK) < 0)
        {
            throw Error("fcntl(O_NONBLOCK)");
        }
    }

    /// <summary>Asks for a pipe buffer of <paramref name="bytes"/>; returns the size the kernel granted, or the errno
    /// negated when it refused (EPERM above /proc/sys/fs/pipe-max-size without CAP_SYS_RESOURCE).</summary>
    public static int SetPipeSize(SafeHandle pipe, int bytes)
    {
        var size = fcntl(Fd(pipe), F_SETPIPE_SZ, bytes);
        return size >= 0 ? size : -Marshal.GetLastPInvokeError();
    }

    /// <summary>The pipe's buffer size.</summary>
    public static int GetPipeSize(SafeHandle pipe)
    {
        var size = fcntl(Fd(pipe), F_GETPIPE_SZ, 0);
        return size >= 0 ? size : throw Error("fcntl(F_GETPIPE_SZ)");
    }

    /// <summary>read(2): the bytes read (0 at end of file), or -1 when nothing is there yet (EAGAIN); other failures
    /// throw with their errno (EIO from a pty master whose other side closed).</summary>
    public static int Read(SafeHandle handle, Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                if (Outcome(read(Fd(handle), p, (nuint)buffer.Length), "read") is { } n)
                {
                    return n;
                }
            }
        }
    }

    /// <summary>pread(2): up to <paramref name="buffer"/>'s length from <paramref name="offset"/> (0 at end of file);
    /// failures throw with their errno. Allocates nothing unless it throws.</summary>
    public static int ReadAt(SafeHandle handle, Span<byte> buffer, long offset)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                var n = pread(Fd(handle), p, (nuint)buffer.Length, offset);
                if (n >= 0)
                {
                    return (int)n;
                }

                var errno = Marshal.GetLastPInvokeError();
                if (errno != EINTR)
                {
                    throw Error("pread", errno);
                }
            }
        }
    }

    /// <summary>write(2): the bytes written (possibly fewer than given), or -1 when the descriptor is full (EAGAIN);
    /// other failures throw with their errno (EPIPE: the reader is gone; SIGPIPE is ignored by .NET processes).</summary>
    public static int Write(SafeHandle handle, ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            while (true)
            {
                if (Outcome(write(Fd(handle), p, (nuint)data.Length), "write") is { } n)
                {
                    return n;
                }
            }
        }
    }

    /// <summary>What a read(2), write(2) (or splice(2), send(2): <see cref="SpliceCalls"/>) that returned
    /// <paramref name="result"/> means, read right after the call: the byte count, -1 for EAGAIN, null for EINTR (call
    /// again); any other errno throws, naming <paramref name="call"/>.</summary>
    internal static int? Outcome(nint result, string call)
    {
        if (result >= 0)
        {
            return (int)result;
        }

        var errno = Marshal.GetLastPInvokeError();
        return errno == EAGAIN ? -1 : errno == EINTR ? null : throw Error(call, errno);
    }

    private static int Fd(SafeHandle handle) => (int)handle.DangerousGetHandle();

    private static IOException Error(string what, int? errno = null)
    {
        var e = errno ?? Marshal.GetLastPInvokeError();
        return new IOException($"{what}: {Marshal.GetPInvokeErrorMessage(e)}", e);
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int pipe2(int* fds, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int cmd, int arg);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint read(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint write(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint pread(int fd, byte* buffer, nuint count, long offset);
}
