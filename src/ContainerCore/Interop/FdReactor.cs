using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Nacelle.ContainerCore.Interop;

/// <summary>
/// One epoll thread per process that completes "this fd became readable (or writable)" waits: pidfds (a process
/// exited), the spawn helper's control socket, the stdio descriptors the daemon carries for exec and attach. A thread per watched container would cost a stack and a wake-up each; this costs
/// one registration. A wait that is cancelled is unregistered at once and releases its handle.
/// </summary>
public static unsafe partial class FdReactor
{
    private const int EPOLL_CTL_ADD = 1;
    private const int EPOLL_CTL_DEL = 2;
    private const uint EPOLLIN = 0x1;
    private const uint EPOLLOUT = 0x4;
    private const uint EPOLLONESHOT = 1u << 30;
    private const int EPOLL_CLOEXEC = 0x80000;
    private const int EINTR = 4;

    private static readonly Lock Gate = new();
    private static readonly Dictionary<ulong, Waiter> Waiters = [];
    private static readonly int Epoll = CreateAndStart();
    private static ulong _nextToken;

    private sealed class Waiter(SafeFileHandle handle, int fd)
    {
        public SafeFileHandle Handle { get; } = handle;
        public int Fd { get; } = fd;
        public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public CancellationTokenRegistration Registration { get; set; }
    }

    /// <summary>Completes when <paramref name="handle"/> is readable (or has hung up); cancellable.</summary>
    public static Task WaitReadableAsync(SafeFileHandle handle, CancellationToken cancellationToken = default) =>
        WaitAsync(handle, EPOLLIN, cancellationToken);

    /// <summary>Completes when <paramref name="handle"/> is writable (or in error, or hung up); cancellable. One wait per
    /// fd number at a time: a descriptor waited on both ways at once needs a dup for one of them.</summary>
    public static Task WaitWritableAsync(SafeFileHandle handle, CancellationToken cancellationToken = default) =>
        WaitAsync(handle, EPOLLOUT, cancellationToken);

    private static Task WaitAsync(SafeFileHandle handle, uint events, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(handle);
        cancellationToken.ThrowIfCancellationRequested();
        var added = false;
        handle.DangerousAddRef(ref added);
        var waiter = new Waiter(handle, (int)handle.DangerousGetHandle());
        ulong token;
        lock (Gate)
        {
            token = ++_nextToken;
            Waiters[token] = waiter;
        }

        var ev = new EpollEvent { Events = events | EPOLLONESHOT, Data = token };
        if (epoll_ctl(Epoll, EPOLL_CTL_ADD, waiter.Fd, &ev) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            Remove(token);
            throw new IOException($"epoll_ctl(ADD, {waiter.Fd}): {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }

        if (cancellationToken.CanBeCanceled)
        {
            waiter.Registration = cancellationToken.Register(() =>
            {
                if (Remove(token) is { } cancelled)
                {
                    cancelled.Completion.TrySetCanceled(cancellationToken);
                }
            });
        }

        return waiter.Completion.Task;
    }

    /// <summary>Unregisters a waiter (once): epoll forgets the fd and the handle may close again.</summary>
    private static Waiter? Remove(ulong token)
    {
        Waiter? waiter;
        lock (Gate)
        {
            if (!Waiters.Remove(token, out waiter))
            {
                return null;
            }

            epoll_ctl(Epoll, EPOLL_CTL_DEL, waiter.Fd, null);
        }

        waiter.Handle.DangerousRelease();
        waiter.Registration.Dispose();
        return waiter;
    }

    private static int CreateAndStart()
    {
        var epoll = epoll_create1(EPOLL_CLOEXEC);
        if (epoll < 0)
        {
            throw new IOException($"epoll_create1: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }

        new Thread(() => Loop(epoll)) { IsBackground = true, Name = "nacelle-fd-reactor" }.Start();
        return epoll;
    }

    private static void Loop(int epoll)
    {
        var events = stackalloc EpollEvent[32];
        while (true)
        {
            var n = epoll_wait(epoll, events, 32, -1);
            if (n < 0 && Marshal.GetLastPInvokeError() == EINTR)
            {
                continue;
            }

            for (var i = 0; i < n; i++)
            {
                Remove(events[i].Data)?.Completion.TrySetResult();
            }
        }
    }

    [StructLayout(LayoutKind.Sequential, Pack = 4)]
    private struct EpollEvent
    {
        public uint Events;
        public ulong Data;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_create1(int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_ctl(int epfd, int op, int fd, EpollEvent* ev);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_wait(int epfd, EpollEvent* events, int maxEvents, int timeout);
}
