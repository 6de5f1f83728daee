using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Nacelle.ContainerCore.Interop;

/// <summary>epoll(7) and eventfd(2): the system calls under <see cref="Reactor.EpollLoop"/>.</summary>
public static unsafe partial class EpollCalls
{
    public const uint EPOLLIN = 0x1;
    public const uint EPOLLOUT = 0x4;
    public const uint EPOLLERR = 0x8;
    public const uint EPOLLHUP = 0x10;
    public const uint EPOLLRDHUP = 0x2000;
    public const uint EPOLLONESHOT = 1u << 30;

    public const int EPOLL_CTL_ADD = 1;
    public const int EPOLL_CTL_DEL = 2;
    public const int EPOLL_CTL_MOD = 3;

    private const int EPOLL_CLOEXEC = 0x80000;
    private const int EFD_CLOEXEC = 0x80000;
    private const int EFD_NONBLOCK = 0x800;
    private const int EINTR = 4;
    private const int EAGAIN = 11;

    /// <summary>One ready descriptor: its events and the token it was registered with (struct epoll_event, packed on x86_64).</summary>
    [StructLayout(LayoutKind.Sequential, Pack = 4)]
    public struct EpollEvent
    {
        public uint Events;
        public ulong Data;
    }

    /// <summary>A new epoll instance, close-on-exec.</summary>
    public static SafeFileHandle Create()
    {
        var fd = epoll_create1(EPOLL_CLOEXEC);
        return fd >= 0 ? new SafeFileHandle(fd, ownsHandle: true) : throw Error("epoll_create1");
    }

    /// <summary>epoll_ctl: <paramref name="operation"/> (ADD, MOD, DEL) of <paramref name="fd"/> with its events and token;
    /// 0, or the errno.</summary>
    public static int Control(SafeFileHandle epoll, int operation, int fd, uint events, ulong token)
    {
        var ev = new EpollEvent { Events = events, Data = token };
        return epoll_ctl(Fd(epoll), operation, fd, operation == EPOLL_CTL_DEL ? null : &ev) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    /// <summary>epoll_wait: how many events were written (0 at the timeout or on EINTR); -1 waits forever.</summary>
    public static int Wait(SafeFileHandle epoll, Span<EpollEvent> events, int timeoutMs)
    {
        fixed (EpollEvent* p = events)
        {
            var n = epoll_wait(Fd(epoll), p, events.Length, timeoutMs);
            if (n >= 0)
            {
                return n;
            }

            var errno = Marshal.GetLastPInvokeError();
            return errno == EINTR ? 0 : throw Error("epoll_wait", errno);
        }
    }

    /// <summary>A non-blocking eventfd (a counter that makes the loop wake up), close-on-exec.</summary>
    public static SafeFileHandle CreateEvent()
    {
        var fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        return fd >= 0 ? new SafeFileHandle(fd, ownsHandle: true) : throw Error("eventfd");
    }

    /// <summary>Adds one to an eventfd (it turns readable).</summary>
    public static void Signal(SafeFileHandle eventFd)
    {
        ulong one = 1;
        while (write(Fd(eventFd), &one, 8) < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == EAGAIN)
            {
                return; // the counter is full: it is readable anyway
            }

            if (errno != EINTR)
            {
                throw Error("write eventfd", errno);
            }
        }
    }

    /// <summary>Resets an eventfd's counter (reads it).</summary>
    public static void Drain(SafeFileHandle eventFd)
    {
        ulong value;
        while (read(Fd(eventFd), &value, 8) < 0 && Marshal.GetLastPInvokeError() == EINTR)
        {
        }
    }

    private static int Fd(SafeFileHandle handle) => (int)handle.DangerousGetHandle();

    private static IOException Error(string what, int? errno = null)
    {
        var e = errno ?? Marshal.GetLastPInvokeError();
        return new IOException($"{what}: {Marshal.GetPInvokeErrorMessage(e)}", e);
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_create1(int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_ctl(int epfd, int op, int fd, EpollEvent* ev);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_wait(int epfd, EpollEvent* events, int maxEvents, int timeout);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int eventfd(uint initval, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint read(int fd, void* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint write(int fd, void* buffer, nuint count);
}
