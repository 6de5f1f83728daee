using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Nacelle.ContainerCore.Interop;

namespace Nacelle.Monitor.Reaping;

/// <summary>
/// Reaps the monitor's orphaned descendants. nacelle-monitor is a child subreaper, so processes whose parent dies
/// (the double-forked children of a host-pid container, the background children of an exec) become its children
/// and would stay zombies. It must not reap with waitpid(-1): that would also take the exits of the container and
/// exec processes ContainerCore reaps through their pidfds. So it lists its children (/proc/self/task/*/children)
/// and reaps, one pid at a time with waitid(P_PID), only those nobody tracks.
/// </summary>
/// <remarks>
/// A process the spawn helper just cloned is a child before ContainerCore has adopted it; scanning then could reap
/// it and lose its exit. So a spawn holds the reaper (<see cref="Hold"/>) until its pid is known (tracked by the
/// runtime, or <see cref="Track"/>ed), and no scan runs while any hold is active. Scans run periodically and when
/// <see cref="Kick"/>ed (a container or exec process ended).
/// </remarks>
public sealed class OrphanReaper : IAsyncDisposable
{
    private readonly Func<IEnumerable<int>> _trackedElsewhere;
    private readonly ILogger _log;
    private readonly TimeSpan _interval;
    private readonly Lock _gate = new();
    private readonly HashSet<int> _tracked = [];
    private readonly SemaphoreSlim _kick = new(0, 1);
    private readonly CancellationTokenSource _stop = new();
    private int _holds;
    private Task _loop = Task.CompletedTask;

    /// <param name="trackedElsewhere">The pids reaped by someone else (the runtime's live container inits).</param>
    /// <param name="interval">How often to scan without a kick.</param>
    public OrphanReaper(Func<IEnumerable<int>> trackedElsewhere, ILogger? logger = null, TimeSpan? interval = null)
    {
        ArgumentNullException.ThrowIfNull(trackedElsewhere);
        _trackedElsewhere = trackedElsewhere;
        _log = logger ?? NullLogger.Instance;
        _interval = interval ?? TimeSpan.FromSeconds(1);
    }

    /// <summary>How many orphans this reaper has collected.</summary>
    public int Reaped { get; private set; }

    /// <summary>Starts the scanning loop.</summary>
    public void Start() => _loop = Task.Run(LoopAsync);

    /// <summary>Suspends scanning until disposed: taken around a spawn, released once its pid is tracked.</summary>
    public IDisposable Hold()
    {
        lock (_gate)
        {
            _holds++;
        }

        return new Release(this);
    }

    /// <summary>A pid reaped by its owner (an exec process): never reaped here.</summary>
    public void Track(int pid)
    {
        lock (_gate)
        {
            _tracked.Add(pid);
        }
    }

    /// <summary>The owner has reaped <paramref name="pid"/>: the number may name an orphan later.</summary>
    public void Untrack(int pid)
    {
        lock (_gate)
        {
            _tracked.Remove(pid);
        }

        Kick();
    }

    /// <summary>Asks for a scan soon (something exited).</summary>
    public void Kick()
    {
        try
        {
            if (_kick.CurrentCount == 0)
            {
                _kick.Release();
            }
        }
        catch (SemaphoreFullException)
        {
            // a scan is already due
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>
    /// One scan: every child that is neither tracked here nor by the runtime and has exited is reaped. Returns how
    /// many were; 0 without looking while a spawn holds the reaper.
    /// </summary>
    public int ScanOnce()
    {
        lock (_gate)
        {
            // Under the gate: no spawn can begin (Hold waits for the gate) while children are listed and reaped.
            if (_holds > 0)
            {
                return 0;
            }

            var known = new HashSet<int>(_tracked);
            known.UnionWith(_trackedElsewhere());
            var reaped = 0;
            foreach (var pid in ChildReaping.Children())
            {
                if (!known.Contains(pid) && ChildReaping.TryReap(pid))
                {
                    reaped++;
                    MonitorLog.OrphanReaped(_log, pid);
                }
            }

            Reaped += reaped;
            return reaped;
        }
    }

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await _kick.WaitAsync(_interval, _stop.Token).ConfigureAwait(false);
                ScanOnce();
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                MonitorLog.OrphanScanFailed(_log, e.Message);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        _stop.Dispose();
        _kick.Dispose();
    }

    private sealed class Release(OrphanReaper reaper) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                lock (reaper._gate)
                {
                    reaper._holds--;
                }
            }
        }
    }
}
