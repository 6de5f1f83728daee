using Microsoft.Win32.SafeHandles;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Runtime;
using Nacelle.Monitor.Logging;

namespace Nacelle.Monitor.Containers;

/// <summary>What the monitor holds for one container besides ContainerCore's state: its log writer and pumps, its
/// exit watch, its terminal, and whether its exit is on disk yet.</summary>
internal sealed class TrackedContainer
{
    public CriLogWriter? Log { get; init; }
    public Task Pump { get; set; } = Task.CompletedTask;
    public Task Watch { get; set; } = Task.CompletedTask;
    public string? LogFile { get; init; }
    public bool ExitRecorded { get; set; }

    /// <summary>A tty container's pty master (its output is pumped to the log as stdout).</summary>
    public SafeFileHandle? Terminal { get; init; }
}

/// <summary>The containers of this pod the monitor tracks, and how each is described to the daemon.</summary>
internal sealed class PodContainers(ContainerRuntime runtime)
{
    private readonly Dictionary<string, TrackedContainer> _tracked = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    public void Add(string id, TrackedContainer tracked)
    {
        lock (_gate)
        {
            _tracked[id] = tracked;
        }
    }

    public TrackedContainer Get(string id)
    {
        lock (_gate)
        {
            return _tracked.TryGetValue(id, out var tracked) ? tracked : throw NacelleException.NotFound($"container {id} does not exist in this pod");
        }
    }

    public void Remove(string id)
    {
        lock (_gate)
        {
            _tracked.Remove(id);
        }
    }

    /// <summary>The container as the daemon sees it: an exit is reported only once its record is on disk.</summary>
    public MonitorContainer Describe(string id)
    {
        var state = runtime.State(id);
        var tracked = Get(id);
        var status = state.Status;
        if (status == ContainerStatus.Stopped && !tracked.ExitRecorded)
        {
            // Not reported until it is on disk.
            status = state.StartedAt is null ? ContainerStatus.Created : ContainerStatus.Running;
        }

        var stopped = status == ContainerStatus.Stopped;
        return new MonitorContainer
        {
            Id = id,
            Status = status.ToString(),
            Pid = state.Pid,
            CreatedAt = state.CreatedAt,
            StartedAt = state.StartedAt,
            FinishedAt = stopped ? state.FinishedAt : null,
            ExitCode = stopped ? state.ExitCode : null,
            ExitSignal = stopped ? state.ExitSignal : null,
            OomKilled = stopped && state.OomKilled,
            LogFile = tracked.LogFile,
            CgroupPath = state.CgroupPath,
        };
    }
}
