using System.Runtime.InteropServices;

namespace Nacelle.ContainerCore.Reactor;

/// <summary>
/// The process's <see cref="EpollLoop"/>, through which ContainerCore waits for descriptors (pidfds, the spawn helper's
/// control socket, pipes) and, in a process that runs it on its own thread, for time. By default the loop runs on a
/// background thread of its own, started on first use (the daemon: continuations go to the thread pool). A process that
/// wants a single working thread (nacelle-monitor) calls <see cref="UseCallerThread"/> before anything waits, then runs
/// the loop with <see cref="Run"/> on its main thread: every wait and every timer of ContainerCore completes there.
/// </summary>
public static class FdReactor
{
    private static readonly Lock Gate = new();
    private static EpollLoop? _loop;
    private static bool _callerThread;

    /// <summary>The process's loop (started on its own thread on first use, unless <see cref="UseCallerThread"/> came first).</summary>
    public static EpollLoop Loop
    {
        get
        {
            lock (Gate)
            {
                if (_loop is null)
                {
                    _loop = new EpollLoop(inlineContinuations: false);
                    _loop.StartThread("nacelle-fd-reactor");
                }

                return _loop;
            }
        }
    }

    /// <summary>
    /// The clock for ContainerCore's delays and timeouts: the loop's own timers when the loop runs on the caller's
    /// thread (so no timer thread is ever started), the system's otherwise.
    /// </summary>
    public static TimeProvider Time
    {
        get
        {
            lock (Gate)
            {
                return _callerThread ? _loop!.Time : TimeProvider.System;
            }
        }
    }

    /// <summary>True once <see cref="UseCallerThread"/> was called.</summary>
    public static bool RunsOnCallerThread
    {
        get
        {
            lock (Gate)
            {
                return _callerThread;
            }
        }
    }

    /// <summary>
    /// The process's loop will run on a thread of the caller's through <see cref="Run"/>, with continuations inline.
    /// Must come before anything waits (the loop must not have started on its own thread).
    /// </summary>
    public static void UseCallerThread()
    {
        lock (Gate)
        {
            if (_loop is not null)
            {
                throw new InvalidOperationException(_callerThread ? "the caller's thread is already chosen" : "the reactor already runs on its own thread");
            }

            _loop = new EpollLoop(inlineContinuations: true);
            _callerThread = true;
        }
    }

    /// <summary>Runs the loop on this thread until <paramref name="keepRunning"/> answers false (after <see cref="UseCallerThread"/>).</summary>
    public static void Run(Func<bool> keepRunning)
    {
        if (!RunsOnCallerThread)
        {
            throw new InvalidOperationException("FdReactor.Run needs UseCallerThread first");
        }

        Loop.Run(keepRunning);
    }

    /// <summary>
    /// Completes after <paramref name="delay"/> (cancelled with <paramref name="cancellationToken"/>). On the caller's
    /// thread it is the loop's timer and the continuation runs on the loop: Task.Delay with a TimeProvider completes
    /// through a TaskCompletionSource that runs continuations asynchronously, which would start the thread pool.
    /// </summary>
    public static Task DelayAsync(TimeSpan delay, CancellationToken cancellationToken = default)
    {
        if (!RunsOnCallerThread)
        {
            return Task.Delay(delay, cancellationToken);
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled(cancellationToken);
        }

        var done = new TaskCompletionSource();
        var timer = Loop.Time.CreateTimer(static state => ((TaskCompletionSource)state!).TrySetResult(), done, delay, Timeout.InfiniteTimeSpan);
        if (cancellationToken.CanBeCanceled)
        {
            var registration = cancellationToken.Register(() => done.TrySetCanceled(cancellationToken));
            done.Task.ContinueWith(_ => registration.Dispose(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        done.Task.ContinueWith(_ => timer.Dispose(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return done.Task;
    }

    /// <summary>Completes when <paramref name="handle"/> is readable (or has hung up); cancellable.</summary>
    public static Task WaitReadableAsync(SafeHandle handle, CancellationToken cancellationToken = default) =>
        Loop.WaitReadableAsync(handle, cancellationToken);

    /// <summary>Completes when <paramref name="handle"/> is writable (or has hung up); cancellable.</summary>
    public static Task WaitWritableAsync(SafeHandle handle, CancellationToken cancellationToken = default) =>
        Loop.WaitWritableAsync(handle, cancellationToken);
}
