namespace Nacelle.ImageService.Snapshots;

/// <summary>
/// The disk usage of every container's writable layer (its overlay upper directory, never the mounted rootfs), kept
/// in memory and refreshed in the background: a reader gets the last numbers at once and, when they are older than
/// <see cref="MaxAge"/>, starts one refresh walk that the next reader sees. Only what is asked for is walked, at most
/// one walk at a time, so an idle node spends nothing and a busy one at most one walk of each upper directory per
/// <see cref="MaxAge"/>. A container created by this daemon starts with its empty upper directory measured.
/// </summary>
public sealed class WritableLayerUsage : IDisposable
{
    /// <summary>How old numbers may be before a read starts a refresh (kubelet polls stats every 10 s).</summary>
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(5);

    private readonly Func<string, string> _upperDirOf;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _disposed = new();
    private readonly TimeProvider _time;
    private Task _refresh = Task.CompletedTask;
    private bool _refreshing;

    /// <param name="upperDirOf">The upper directory of a container id.</param>
    /// <param name="time">The clock (tests).</param>
    public WritableLayerUsage(Func<string, string> upperDirOf, TimeProvider? time = null)
    {
        _upperDirOf = upperDirOf;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Starts tracking <paramref name="containerId"/>, measured now (a new upper directory is nearly empty).</summary>
    public void Add(string containerId)
    {
        var usage = DiskUsage.Measure(_upperDirOf(containerId));
        lock (_lock)
        {
            _entries[containerId] = new Entry(usage, _time.GetUtcNow());
        }
    }

    /// <summary>Starts tracking containers found at start: measured by the next refresh, zero until then.</summary>
    public void AddUnmeasured(IEnumerable<string> containerIds)
    {
        lock (_lock)
        {
            foreach (var id in containerIds)
            {
                _entries.TryAdd(id, new Entry(default, DateTimeOffset.MinValue));
            }
        }

        StartRefresh();
    }

    public void Remove(string containerId)
    {
        lock (_lock)
        {
            _entries.Remove(containerId);
        }
    }

    /// <summary>
    /// The last numbers of one container's writable layer and when they were measured. A container not tracked yet
    /// (or never measured) is measured now; stale numbers are returned and refreshed in the background.
    /// </summary>
    public (UsageNumbers Usage, DateTimeOffset MeasuredAt) Get(string containerId)
    {
        Entry entry;
        bool known;
        lock (_lock)
        {
            known = _entries.TryGetValue(containerId, out entry);
        }

        if (!known || entry.MeasuredAt == DateTimeOffset.MinValue)
        {
            var now = _time.GetUtcNow();
            var usage = DiskUsage.Measure(_upperDirOf(containerId));
            lock (_lock)
            {
                if (known || _entries.ContainsKey(containerId))
                {
                    _entries[containerId] = new Entry(usage, now);
                }
            }

            return (usage, now);
        }

        if (_time.GetUtcNow() - entry.MeasuredAt > MaxAge)
        {
            StartRefresh();
        }

        return (entry.Usage, entry.MeasuredAt);
    }

    /// <summary>
    /// The sum over every tracked container and the time of the oldest numbers in it; never walks (stale numbers
    /// start a background refresh).
    /// </summary>
    public (UsageNumbers Total, DateTimeOffset OldestMeasurement) Total()
    {
        var total = default(UsageNumbers);
        var oldest = _time.GetUtcNow();
        var stale = false;
        lock (_lock)
        {
            foreach (var entry in _entries.Values)
            {
                total += entry.Usage;
                if (entry.MeasuredAt < oldest)
                {
                    oldest = entry.MeasuredAt;
                }
            }

            stale = _entries.Count > 0 && _time.GetUtcNow() - oldest > MaxAge;
        }

        if (stale)
        {
            StartRefresh();
        }

        return (total, oldest == DateTimeOffset.MinValue ? DateTimeOffset.UnixEpoch : oldest);
    }

    /// <summary>Re-measures every tracked container now and waits for it (tests, and callers that need exact numbers).</summary>
    public async Task RefreshAsync()
    {
        Task running;
        lock (_lock)
        {
            running = _refresh;
        }

        await running.ConfigureAwait(false);
        await Task.Run(() => RefreshStale(TimeSpan.Zero)).ConfigureAwait(false);
    }

    public void Dispose()
    {
        _disposed.Cancel();
        _disposed.Dispose();
    }

    private void StartRefresh()
    {
        lock (_lock)
        {
            if (_refreshing || _disposed.IsCancellationRequested)
            {
                return;
            }

            _refreshing = true;
            _refresh = Task.Run(() =>
            {
                try
                {
                    RefreshStale(MaxAge);
                }
                finally
                {
                    lock (_lock)
                    {
                        _refreshing = false;
                    }
                }
            });
        }
    }

    // Walks each upper directory whose numbers are older than maxAge, one after the other.
    private void RefreshStale(TimeSpan maxAge)
    {
        List<string> stale;
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            stale = [.. _entries.Where(e => now - e.Value.MeasuredAt >= maxAge).Select(e => e.Key)];
        }

        foreach (var id in stale)
        {
            if (_disposed.IsCancellationRequested)
            {
                return;
            }

            UsageNumbers usage;
            try
            {
                usage = DiskUsage.Measure(_upperDirOf(id));
            }
            catch (IOException)
            {
                continue; // removed while measured; the next refresh tries again if it is still tracked
            }

            lock (_lock)
            {
                if (_entries.ContainsKey(id))
                {
                    _entries[id] = new Entry(usage, _time.GetUtcNow());
                }
            }
        }
    }

    private readonly record struct Entry(UsageNumbers Usage, DateTimeOffset MeasuredAt);
}
