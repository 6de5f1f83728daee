using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Reactor;

namespace Nacelle.Monitor.Reaping;

/// <summary>
/// Reaps the monitor's orphaned descendants. nacelle-monitor is a child subreaper, so processes whose parent dies
/// (the double-forked children of a host-pid container, the background children of an exec) become its children
/// and would stay zombies. It must not reap with waitpid(-1): that would also take the exits of the container and
/// exec processes ContainerCore reaps through their pidfds. So it lists its children (/proc/self/task/*/children)
/// and reaps, one pid at a time with waitid(P_PID), only those nobody tracks.
/// </summary>
/// <remarks>
/// <para>A process the spawn helper just cloned is a child before ContainerCore has adopted it; scanning then could reap
/// it and lose its exit. So a spawn holds the reaper (<see cref="Hold"/>) until its pid is known (tracked by the
/// runtime, or <see cref="Track"/>ed), and no scan runs while any hold is active.</para>
/// <para>Scans run on the event loop when <see cref="Kick"/>ed (a container or exec process ended) and, only while
/// orphans can appear unannounced, every interval. Orphans are re-parented to the monitor only from processes in its own
/// pid namespace (a container without a pid namespace of its own, as a hostPID pod's); in a container's or the pod's pid
/// namespace they go to that namespace's init. So the periodic scan runs only while such a container lives
/// (<c>orphansPossible</c>): an ordinary pod's monitor has no timer at all.</para>
/// </remarks>
public sealed class OrphanReaper : IAsyncDisposable
{
    private readonly Func<IEnumerable<int>> _trackedElsewhere;
    private readonly Func<bool> _orphansPossible;
    private readonly ILogger _log;
    private readonly TimeSpan _interval;
    private readonly Lock _gate = new();
    private readonly HashSet<int> _tracked = [];
    private ITimer? _timer;
    private bool _kicked;
    private bool _polling;
    private bool _stopped;
    private int _holds;
    private DateTimeOffset _scanUntil;

    /// <param name="trackedElsewhere">The pids reaped by someone else (the runtime's live container inits).</param>
    /// <param name="logger">Where reaped orphans are logged.</param>
    /// <param name="interval">How often to scan without a kick, while <paramref name="orphansPossible"/>.</param>
    /// <param name="orphansPossible">Whether orphans can appear without a kick (default: always).</param>
    public OrphanReaper(Func<IEnumerable<int>> trackedElsewhere, ILogger? logger = null, TimeSpan? interval = null, Func<bool>? orphansPossible = null)
    {
        ArgumentNullException.ThrowIfNull(trackedElsewhere);
        _trackedElsewhere = trackedElsewhere;
        _orphansPossible = orphansPossible ?? (static () => true);
        _log = logger ?? NullLogger.Instance;
        _interval = interval ?? TimeSpan.FromSeconds(1);
    }

    /// <summary>How many orphans this reaper has collected.</summary>
    public int Reaped { get; private set; }

    /// <summary>Whether the periodic scan is on (orphans may appear without a kick).</summary>
    public bool Polling
    {
        get
        {
            lock (_gate)
            {
                return _polling;
            }
        }
    }

    /// <summary>Starts reaping: a first scan soon, then scans on kicks (and periodically while needed).</summary>
    public void Start()
    {
        lock (_gate)
        {
            _timer = FdReactor.Time.CreateTimer(static state => ((OrphanReaper)state!).Scheduled(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }

        Kick();
    }

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

    /// <summary>
    /// A spawn failed (its helper killed with the container it had joined, say): the process the helper had cloned, if
    /// any, was never tracked and ends as a zombie of the monitor, and the init of the pid namespace it is in cannot
    /// finish exiting until it is reaped, so no exit comes to kick a scan. Scans periodically for
    /// <see cref="FailedSpawnWindow"/> whether or not orphans are otherwise possible.
    /// </summary>
    public void ScanAfterFailedSpawn()
    {
        lock (_gate)
        {
            _scanUntil = FdReactor.Time.GetUtcNow() + FailedSpawnWindow;
        }

        Kick();
    }

    /// <summary>How long <see cref="ScanAfterFailedSpawn"/> keeps scanning.</summary>
    public static TimeSpan FailedSpawnWindow { get; } = TimeSpan.FromSeconds(30);

    /// <summary>Asks for a scan soon, on the loop (something exited).</summary>
    public void Kick()
    {
        lock (_gate)
        {
            if (_kicked || _stopped || _timer is null)
            {
                return;
            }

            _kicked = true;
        }

        FdReactor.Loop.Post(Scheduled);
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

    /// <summary>A kicked or periodic scan; then the timer is set for the next one, or off when none is needed.</summary>
    private void Scheduled()
    {
        lock (_gate)
        {
            _kicked = false;
            if (_stopped)
            {
                return;
            }
        }

        try
        {
            ScanOnce();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            MonitorLog.OrphanScanFailed(_log, e.Message);
        }

        var poll = _orphansPossible();
        lock (_gate)
        {
            poll |= FdReactor.Time.GetUtcNow() < _scanUntil;
            _polling = poll && !_stopped;
            _timer?.Change(_polling ? _interval : Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }
    }

    public ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            _stopped = true;
            _polling = false;
            _timer?.Dispose();
        }

        return ValueTask.CompletedTask;
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
