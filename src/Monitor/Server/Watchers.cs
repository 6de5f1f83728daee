using Microsoft.Extensions.Logging;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Reactor;

namespace Nacelle.Monitor.Server;

/// <summary>
/// The watch connections: each gets every event line (exits, once recorded) through a bounded queue and one writer;
/// a watcher whose queue is full is dropped rather than waited for (it reconnects and lists again).
/// </summary>
internal sealed class Watchers(ILogger log)
{
    /// <summary>How many events may wait for a slow watcher before it is dropped.</summary>
    public const int Backlog = 256;

    private readonly Lock _gate = new();
    private readonly List<Watcher> _watchers = [];
    private long _nextWatcher;
    private bool _completed;

    private sealed class Watcher(long number)
    {
        public long Number { get; } = number;
        public Queue<byte[]> Events { get; } = new();
        public Wakeup Wake { get; } = new();
        public bool Dropped { get; set; }
        public bool Completed { get; set; }

        /// <summary>Cancels a write that waits on a watcher who stopped reading.</summary>
        public CancellationTokenSource? Abort { get; set; }
    }

    /// <summary>
    /// A watch connection: the ok answer, then every event line until either side closes. The watcher is registered
    /// before the answer is written, so an exit recorded after the answer is never missed. What the daemon sends is read
    /// and ignored (only to notice it closing).
    /// </summary>
    public async Task ServeAsync(Connection connection, MonitorResponse answer, CancellationToken cancellationToken)
    {
        var watcher = new Watcher(Interlocked.Increment(ref _nextWatcher));
        lock (_gate)
        {
            watcher.Completed = _completed;
            _watchers.Add(watcher);
        }

        using var done = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        lock (_gate)
        {
            watcher.Abort = done;
        }

        var reason = "closed";
        var closed = WatchClosedAsync(connection, watcher, done.Token);
        try
        {
            await connection.WriteAsync(answer, cancellationToken: done.Token).ConfigureAwait(false);
            while (true)
            {
                byte[]? line;
                bool stop;
                lock (_gate)
                {
                    stop = watcher.Dropped || (watcher.Completed && watcher.Events.Count == 0) || closed.IsCompleted;
                    watcher.Events.TryDequeue(out line);
                }

                if (stop)
                {
                    reason = watcher.Dropped ? "too slow (event backlog full)" : closed.IsCompleted ? "closed" : "monitor shutting down";
                    break;
                }

                if (line is null)
                {
                    await watcher.Wake.WaitAsync().ConfigureAwait(false);
                    continue;
                }

                await connection.WriteAsync(line, cancellationToken: done.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            reason = watcher.Dropped ? "too slow (event backlog full)" : e is OperationCanceledException ? "closed" : e.Message;
        }
        finally
        {
            lock (_gate)
            {
                _watchers.Remove(watcher);
                watcher.Abort = null;
            }

            done.Cancel(); // not CancelAsync: its callbacks would run on the thread pool, off the loop
            await closed.ConfigureAwait(false);
            MonitorLog.WatcherDropped(log, watcher.Number, reason);
        }
    }

    /// <summary>Queues an event for every watcher; a watcher whose queue is full is dropped rather than waited for.</summary>
    public void Broadcast(MonitorResponse message)
    {
        var line = MonitorProtocol.Encode(message, MonitorJson.Current.MonitorResponse);
        List<Watcher> woken = [];
        lock (_gate)
        {
            foreach (var watcher in _watchers)
            {
                if (watcher.Events.Count >= Backlog)
                {
                    // Its writer may be waiting on a full socket: cancelled from the loop's queue, not from here.
                    watcher.Dropped = true;
                    if (watcher.Abort is { } abort)
                    {
                        FdReactor.Loop.Post(() => Cancel(abort));
                    }
                }
                else
                {
                    watcher.Events.Enqueue(line);
                }

                woken.Add(watcher);
            }
        }

        woken.ForEach(w => w.Wake.Set());
    }

    /// <summary>Ends every watch (the monitor is shutting down): each writer sends what is queued and closes.</summary>
    public void CompleteAll()
    {
        List<Watcher> woken;
        lock (_gate)
        {
            _completed = true;
            _watchers.ForEach(w => w.Completed = true);
            woken = [.. _watchers];
        }

        woken.ForEach(w => w.Wake.Set());
    }

    /// <summary>Waits for the daemon to close the watch connection, then wakes the writer.</summary>
    private static async Task WatchClosedAsync(Connection connection, Watcher watcher, CancellationToken cancellationToken)
    {
        try
        {
            await connection.WaitClosedAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // the watch ended on our side
        }

        watcher.Wake.Set();
    }

    private static void Cancel(CancellationTokenSource source)
    {
        try
        {
            source.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // the watch ended meanwhile
        }
    }
}
