using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Nacelle.Sandbox.Network;

/// <summary>
/// Notices configurations installed into or removed from the conf dir after start: a <see cref="FileSystemWatcher"/>
/// (created as soon as the directory exists) plus a periodic re-scan for what the watcher misses (the directory created
/// later, overflowed event queues, network file systems). Each notice calls the refresh callback; the callback must be
/// cheap and thread-safe.
/// </summary>
public sealed class CniConfWatcher : IDisposable
{
    private readonly string _confDir;
    private readonly Action _refresh;
    private readonly ILogger _logger;
    private readonly Timer _timer;
    private readonly Lock _gate = new();
    private FileSystemWatcher? _watcher;
    private bool _disposed;

    public CniConfWatcher(string confDir, TimeSpan rescanInterval, Action refresh, ILogger? logger = null)
    {
        if (rescanInterval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(rescanInterval), "the re-scan interval must be positive");
        }

        _confDir = confDir;
        _refresh = refresh;
        _logger = logger ?? NullLogger.Instance;
        EnsureWatcher();
        _timer = new Timer(_ => Tick(), null, rescanInterval, rescanInterval);
    }

    /// <summary>Whether a file system watcher is active (false while the conf dir does not exist).</summary>
    public bool IsWatching
    {
        get
        {
            lock (_gate)
            {
                return _watcher is not null;
            }
        }
    }

    private void Tick()
    {
        EnsureWatcher();
        Refresh();
    }

    private void EnsureWatcher()
    {
        lock (_gate)
        {
            if (_disposed || _watcher is not null || !Directory.Exists(_confDir))
            {
                return;
            }

            try
            {
                var watcher = new FileSystemWatcher(_confDir)
                {
                    IncludeSubdirectories = false,
                    NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.DirectoryName,
                };
                watcher.Created += OnChanged;
                watcher.Changed += OnChanged;
                watcher.Deleted += OnChanged;
                watcher.Renamed += OnChanged;
                watcher.Error += OnError;
                watcher.EnableRaisingEvents = true;
                _watcher = watcher;
            }
            catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException or PlatformNotSupportedException)
            {
                Log.WatcherError(_logger, e.Message);
            }
        }
    }

    private void OnChanged(object sender, FileSystemEventArgs e) => Refresh();

    private void OnError(object sender, ErrorEventArgs e)
    {
        Log.WatcherError(_logger, e.GetException().Message);
        lock (_gate)
        {
            // drop it (the directory may have been removed); the next tick re-creates it when possible
            _watcher?.Dispose();
            _watcher = null;
        }

        Refresh();
    }

    private void Refresh()
    {
        if (_disposed)
        {
            return;
        }

        try
        {
            _refresh();
        }
        catch (Exception e)
        {
            Log.WatcherError(_logger, e.Message);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _watcher?.Dispose();
            _watcher = null;
        }

        _timer.Dispose();
    }
}
