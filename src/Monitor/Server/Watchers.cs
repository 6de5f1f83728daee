using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;

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

    /// <summary>A watch connection: events queue here and one writer sends them; a full queue drops the watcher.</summary>
    private sealed class Watcher(long number)
    {
        public long Number { get; } = number;
        public Channel<byte[]> Events { get; } = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(Backlog)
        {
            SingleReader = true, FullMode = BoundedChannelFullMode.Wait,
        });
        public CancellationTokenSource Dropped { get; } = new();
    }

    /// <summary>
    /// A watch connection: the ok answer, then every event line until either side closes. The watcher is registered
    /// before the answer is written, so an exit recorded after the answer is never missed. Lines the client sends are
    /// read and ignored (only to notice it closing).
    /// </summary>
    public async Task ServeAsync(NetworkStream stream, MemoryStream pending, MonitorResponse answer, CancellationToken cancellationToken)
    {
        var watcher = new Watcher(Interlocked.Increment(ref _nextWatcher));
        lock (_gate)
        {
            _watchers.Add(watcher);
        }

        using var done = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, watcher.Dropped.Token);
        var reason = "closed";
        try
        {
            await stream.WriteAsync(MonitorProtocol.Encode(answer, MonitorJson.Default.MonitorResponse), done.Token).ConfigureAwait(false);
            var reader = DrainUntilClosedAsync(stream, pending, done);
            await foreach (var line in watcher.Events.Reader.ReadAllAsync(done.Token).ConfigureAwait(false))
            {
                await stream.WriteAsync(line, done.Token).ConfigureAwait(false);
            }

            await done.CancelAsync().ConfigureAwait(false);
            await reader.ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or SocketException)
        {
            reason = watcher.Dropped.IsCancellationRequested ? "too slow (event backlog full)" : e is OperationCanceledException ? "closed" : e.Message;
        }
        finally
        {
            lock (_gate)
            {
                _watchers.Remove(watcher);
            }

            watcher.Events.Writer.TryComplete();
            MonitorLog.WatcherDropped(log, watcher.Number, reason);
            watcher.Dropped.Dispose();
        }
    }

    /// <summary>Queues an event for every watcher; a watcher whose queue is full is dropped rather than waited for.</summary>
    public void Broadcast(MonitorResponse message)
    {
        var line = MonitorProtocol.Encode(message, MonitorJson.Default.MonitorResponse);
        List<Watcher> watchers;
        lock (_gate)
        {
            watchers = [.. _watchers];
        }

        foreach (var watcher in watchers)
        {
            if (!watcher.Events.Writer.TryWrite(line))
            {
                try
                {
                    watcher.Dropped.Cancel();
                }
                catch (ObjectDisposedException)
                {
                    // it went away meanwhile
                }
            }
        }
    }

    /// <summary>Ends every watch (the monitor is shutting down): each writer sends what is queued and closes.</summary>
    public void CompleteAll()
    {
        lock (_gate)
        {
            foreach (var watcher in _watchers)
            {
                watcher.Events.Writer.TryComplete();
            }
        }
    }

    /// <summary>Reads (and ignores) what a watcher sends; its end of stream or an error ends the watch.</summary>
    private static async Task DrainUntilClosedAsync(NetworkStream stream, MemoryStream pending, CancellationTokenSource done)
    {
        try
        {
            while (await MonitorProtocol.ReadLineAsync(stream, pending, done.Token).ConfigureAwait(false) is not null)
            {
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or SocketException or NacelleException or ObjectDisposedException)
        {
            // the watcher closed, broke, or the watch ended on our side (the stream is gone)
        }

        try
        {
            await done.CancelAsync().ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
        }
    }
}
