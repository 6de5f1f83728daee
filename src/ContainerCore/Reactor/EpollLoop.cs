using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Nacelle.ContainerCore.Interop;

namespace Nacelle.ContainerCore.Reactor;

/// <summary>
/// One epoll loop: it completes "this descriptor turned readable (or writable)" waits, fires its timers
/// (<see cref="Time"/>) and runs work posted to it (<see cref="Post"/>). It runs either on a thread of its own
/// (<see cref="StartThread"/>: the daemon, where continuations go to the thread pool and never run on the loop) or on
/// the caller's thread (<see cref="Run"/>: nacelle-monitor, whose main thread is its only working thread; continuations
/// then run inline on the loop, so a program that only awaits descriptors and this loop's timers needs no other thread).
/// </summary>
/// <remarks>
/// <para>A descriptor is registered once (EPOLLONESHOT) for whatever is waited on it, a read and a write at most; each
/// event disarms it, and it is armed again for the waits that remain, or removed. A wait holds a reference on its handle
/// (the descriptor cannot be closed, and its number reused, while registered); a cancelled wait is unregistered at once.
/// Tokens are never reused, so an event that was already queued for a descriptor closed meanwhile completes nothing.</para>
/// <para>A readiness completion is a hint: readers and writers use non-blocking descriptors and wait again on EAGAIN.</para>
/// </remarks>
public sealed class EpollLoop : IDisposable
{
    private const ulong WakeToken = 0;
    private const int MaxEvents = 64;

    private readonly Lock _gate = new();
    private readonly SafeFileHandle _epoll;
    private readonly SafeFileHandle _wake;
    private readonly Dictionary<int, Registration> _byFd = [];
    private readonly Dictionary<ulong, Registration> _byToken = [];
    private readonly Queue<Action> _posted = new();
    private readonly PriorityQueue<LoopTimer, long> _timers = new();
    private readonly TaskCreationOptions _completion;
    private ulong _nextToken = WakeToken;
    private int _loopThread;
    private bool _disposed;

    /// <param name="inlineContinuations">Complete waits without forcing their continuations onto the thread pool: for a
    /// loop run on the caller's thread (<see cref="Run"/>), where the awaiting code then goes on inline on the loop.</param>
    public EpollLoop(bool inlineContinuations)
    {
        _completion = inlineContinuations ? TaskCreationOptions.None : TaskCreationOptions.RunContinuationsAsynchronously;
        _epoll = EpollCalls.Create();
        _wake = EpollCalls.CreateEvent();
        var errno = EpollCalls.Control(_epoll, EpollCalls.EPOLL_CTL_ADD, (int)_wake.DangerousGetHandle(), EpollCalls.EPOLLIN, WakeToken);
        if (errno != 0)
        {
            throw new IOException($"epoll_ctl(ADD eventfd): {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }

        Time = new LoopTime(this);
    }

    /// <summary>Timers fired by this loop (on its thread): for CancellationTokenSource and WaitAsync timeouts and FdReactor.DelayAsync
    /// of code that runs on the loop, so that no timer thread is ever started.</summary>
    public TimeProvider Time { get; }

    /// <summary>True on the thread that runs the loop.</summary>
    public bool IsLoopThread => Volatile.Read(ref _loopThread) == Environment.CurrentManagedThreadId;

    /// <summary>Waits registered right now (descriptors and timers), for tests and diagnostics.</summary>
    public (int Descriptors, int Timers) Pending
    {
        get
        {
            lock (_gate)
            {
                return (_byFd.Count, _timers.Count);
            }
        }
    }

    /// <summary>Runs the loop on a new background thread, forever.</summary>
    public void StartThread(string name)
    {
        var thread = new Thread(() => Run(static () => true)) { IsBackground = true, Name = name };
        thread.Start();
    }

    /// <summary>
    /// Runs the loop on the calling thread until <paramref name="keepRunning"/> answers false (asked before every wait, so
    /// work done by a completion that ends the program stops the loop at once).
    /// </summary>
    public void Run(Func<bool> keepRunning)
    {
        ArgumentNullException.ThrowIfNull(keepRunning);
        if (Interlocked.CompareExchange(ref _loopThread, Environment.CurrentManagedThreadId, 0) != 0)
        {
            throw new InvalidOperationException("the loop is already running on another thread");
        }

        try
        {
            Span<EpollCalls.EpollEvent> events = stackalloc EpollCalls.EpollEvent[MaxEvents];
            while (true)
            {
                RunPosted();
                if (!keepRunning())
                {
                    return;
                }

                var n = EpollCalls.Wait(_epoll, events, NextTimeout());
                for (var i = 0; i < n; i++)
                {
                    if (events[i].Data == WakeToken)
                    {
                        EpollCalls.Drain(_wake);
                    }
                    else
                    {
                        Dispatch(events[i].Data, events[i].Events);
                    }
                }

                FireDueTimers();
            }
        }
        finally
        {
            Volatile.Write(ref _loopThread, 0);
        }
    }

    /// <summary>Runs <paramref name="action"/> on the loop thread, soon (after the events at hand).</summary>
    public void Post(Action action)
    {
        ArgumentNullException.ThrowIfNull(action);
        lock (_gate)
        {
            _posted.Enqueue(action);
        }

        if (!IsLoopThread)
        {
            EpollCalls.Signal(_wake);
        }
    }

    /// <summary>Completes when <paramref name="handle"/> is readable (or hung up, or in error); cancellable.</summary>
    public Task WaitReadableAsync(SafeHandle handle, CancellationToken cancellationToken = default) => WaitAsync(handle, write: false, cancellationToken);

    /// <summary>Completes when <paramref name="handle"/> is writable (or hung up, or in error); cancellable.</summary>
    public Task WaitWritableAsync(SafeHandle handle, CancellationToken cancellationToken = default) => WaitAsync(handle, write: true, cancellationToken);

    private Task WaitAsync(SafeHandle handle, bool write, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(handle);
        cancellationToken.ThrowIfCancellationRequested();
        var added = false;
        handle.DangerousAddRef(ref added);
        var waiter = new Waiter(handle, write, _completion);
        try
        {
            lock (_gate)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                var fd = (int)handle.DangerousGetHandle();
                var fresh = !_byFd.TryGetValue(fd, out var registration);
                if (fresh)
                {
                    registration = new Registration(fd, ++_nextToken);
                }

                if ((write ? registration!.Write : registration!.Read) is not null)
                {
                    throw new InvalidOperationException($"descriptor {fd} already has a {(write ? "write" : "read")} wait");
                }

                if (write)
                {
                    registration.Write = waiter;
                }
                else
                {
                    registration.Read = waiter;
                }

                var errno = EpollCalls.Control(_epoll, fresh ? EpollCalls.EPOLL_CTL_ADD : EpollCalls.EPOLL_CTL_MOD, fd, registration.Interest, registration.Token);
                if (errno != 0)
                {
                    if (write)
                    {
                        registration.Write = null;
                    }
                    else
                    {
                        registration.Read = null;
                    }

                    throw new IOException($"epoll_ctl({(fresh ? "ADD" : "MOD")}, {fd}): {Marshal.GetPInvokeErrorMessage(errno)}", errno);
                }

                if (fresh)
                {
                    _byFd.Add(fd, registration);
                    _byToken.Add(registration.Token, registration);
                }

                waiter.Owner = registration;
            }
        }
        catch
        {
            handle.DangerousRelease();
            throw;
        }

        if (cancellationToken.CanBeCanceled)
        {
            waiter.Cancellation = cancellationToken.Register(static state =>
            {
                var (loop, w, token) = ((EpollLoop, Waiter, CancellationToken))state!;
                if (loop.Detach(w))
                {
                    w.Finish(token);
                }
            }, (this, waiter, cancellationToken));
        }

        return waiter.Completion.Task;
    }

    /// <summary>An event for <paramref name="token"/>: the waits it satisfies complete; the others stay armed.</summary>
    private void Dispatch(ulong token, uint events)
    {
        Waiter? read = null, write = null;
        lock (_gate)
        {
            if (!_byToken.TryGetValue(token, out var registration))
            {
                return; // its waits were cancelled meanwhile
            }

            const uint Failed = EpollCalls.EPOLLERR | EpollCalls.EPOLLHUP;
            if ((events & (EpollCalls.EPOLLIN | EpollCalls.EPOLLRDHUP | Failed)) != 0)
            {
                read = registration.Read;
                registration.Read = null;
            }

            if ((events & (EpollCalls.EPOLLOUT | Failed)) != 0)
            {
                write = registration.Write;
                registration.Write = null;
            }

            // One-shot: the event disarmed it; what is still waited for is armed again.
            RearmLocked(registration);
        }

        read?.Finish(null);
        write?.Finish(null);
    }

    /// <summary>Takes a cancelled wait out of its registration; false when it completed first.</summary>
    private bool Detach(Waiter waiter)
    {
        lock (_gate)
        {
            if (waiter.Owner is not { } registration)
            {
                return false;
            }

            if (waiter.Write ? registration.Write != waiter : registration.Read != waiter)
            {
                return false;
            }

            if (waiter.Write)
            {
                registration.Write = null;
            }
            else
            {
                registration.Read = null;
            }

            RearmLocked(registration);
            return true;
        }
    }

    private void RearmLocked(Registration registration)
    {
        if (registration.Read is null && registration.Write is null)
        {
            EpollCalls.Control(_epoll, EpollCalls.EPOLL_CTL_DEL, registration.Fd, 0, 0);
            _byFd.Remove(registration.Fd);
            _byToken.Remove(registration.Token);
        }
        else
        {
            EpollCalls.Control(_epoll, EpollCalls.EPOLL_CTL_MOD, registration.Fd, registration.Interest, registration.Token);
        }
    }

    private void RunPosted()
    {
        while (true)
        {
            Action? action;
            lock (_gate)
            {
                if (!_posted.TryDequeue(out action))
                {
                    return;
                }
            }

            Invoke(action);
        }
    }

    /// <summary>Milliseconds until the next timer is due (rounded up; 0: now), -1 without timers, 0 with posted work.</summary>
    private int NextTimeout()
    {
        lock (_gate)
        {
            if (_posted.Count > 0)
            {
                return 0;
            }

            while (_timers.TryPeek(out var timer, out var due))
            {
                if (timer.Due != due)
                {
                    _timers.Dequeue(); // changed or disposed since it was queued
                    continue;
                }

                return (int)Math.Clamp(due - Environment.TickCount64, 0, int.MaxValue);
            }

            return -1;
        }
    }

    private void FireDueTimers()
    {
        var now = Environment.TickCount64;
        while (true)
        {
            LoopTimer? fire = null;
            lock (_gate)
            {
                while (_timers.TryPeek(out var timer, out var due) && due <= now)
                {
                    _timers.Dequeue();
                    if (timer.Due == due)
                    {
                        fire = timer;
                        timer.Due = timer.Period > 0 ? now + timer.Period : long.MinValue;
                        if (timer.Period > 0)
                        {
                            _timers.Enqueue(timer, timer.Due);
                        }

                        break;
                    }
                }
            }

            if (fire is null)
            {
                return;
            }

            Invoke(() => fire.Callback(fire.State));
        }
    }

    /// <summary>Schedules (or with <paramref name="dueMs"/> -1 unschedules) a timer.</summary>
    private void Schedule(LoopTimer timer, long dueMs, long periodMs)
    {
        lock (_gate)
        {
            timer.Period = periodMs;
            timer.Due = dueMs < 0 ? long.MinValue : Environment.TickCount64 + dueMs;
            if (dueMs >= 0)
            {
                _timers.Enqueue(timer, timer.Due);
            }
        }

        if (dueMs >= 0 && !IsLoopThread)
        {
            EpollCalls.Signal(_wake);
        }
    }

    /// <summary>Work on the loop must not end it: a failure is reported on stderr (the process's log) and the loop goes on.</summary>
    private static void Invoke(Action action)
    {
        try
        {
            action();
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"event loop: unhandled {e.GetType().Name}: {e.Message}");
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
        }

        _epoll.Dispose();
        _wake.Dispose();
    }

    private sealed class Registration(int fd, ulong token)
    {
        public int Fd { get; } = fd;
        public ulong Token { get; } = token;
        public Waiter? Read { get; set; }
        public Waiter? Write { get; set; }

        public uint Interest => EpollCalls.EPOLLONESHOT
            | (Read is null ? 0 : EpollCalls.EPOLLIN | EpollCalls.EPOLLRDHUP)
            | (Write is null ? 0 : EpollCalls.EPOLLOUT);
    }

    private sealed class Waiter(SafeHandle handle, bool write, TaskCreationOptions options)
    {
        private int _finished;

        public bool Write { get; } = write;
        public TaskCompletionSource Completion { get; } = new(options);
        public Registration? Owner { get; set; }
        public CancellationTokenRegistration Cancellation { get; set; }

        /// <summary>Once: the handle is released, then the wait completes (cancelled when a token is given).</summary>
        public void Finish(CancellationToken? cancelled)
        {
            if (Interlocked.Exchange(ref _finished, 1) != 0)
            {
                return;
            }

            handle.DangerousRelease();
            Cancellation.Dispose();
            if (cancelled is { } token)
            {
                Completion.TrySetCanceled(token);
            }
            else
            {
                Completion.TrySetResult();
            }
        }
    }

    /// <summary>A timer of this loop: its callback runs on the loop thread.</summary>
    private sealed class LoopTimer(EpollLoop loop, TimerCallback callback, object? state) : ITimer
    {
        public TimerCallback Callback { get; } = callback;
        public object? State { get; } = state;

        /// <summary>When it is due (Environment.TickCount64), long.MinValue when not scheduled; a queued entry whose
        /// priority differs is stale.</summary>
        public long Due { get; set; } = long.MinValue;
        public long Period { get; set; }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            loop.Schedule(this, Milliseconds(dueTime), Math.Max(Milliseconds(period), 0));
            return true;
        }

        public void Dispose() => loop.Schedule(this, -1, 0);

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }

        private static long Milliseconds(TimeSpan span) =>
            span == Timeout.InfiniteTimeSpan ? -1 : (long)Math.Ceiling(Math.Max(span.TotalMilliseconds, 0));
    }

    /// <summary>The loop's clock: the system's, with timers that fire on the loop.</summary>
    private sealed class LoopTime(EpollLoop loop) : TimeProvider
    {
        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            ArgumentNullException.ThrowIfNull(callback);
            var timer = new LoopTimer(loop, callback, state);
            timer.Change(dueTime, period);
            return timer;
        }
    }
}
