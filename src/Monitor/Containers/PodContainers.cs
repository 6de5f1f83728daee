using Microsoft.Win32.SafeHandles;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Runtime;
using Nacelle.Monitor.Logging;
using Nacelle.Monitor.Stdio;

namespace Nacelle.Monitor.Containers;

/// <summary>What the monitor holds for one container besides ContainerCore's state: its log writer and pumps, its
/// attached clients, its stdin, its exit watch, its terminal, and whether its exit is on disk yet.</summary>
internal sealed class TrackedContainer
{
    public CriLogWriter? Log { get; init; }
    public Task Pump { get; set; } = Task.CompletedTask;
    public Task Watch { get; set; } = Task.CompletedTask;
    public string? LogFile { get; init; }
    public bool ExitRecorded { get; set; }

    /// <summary>A tty container's pty master (its output is pumped to the log as stdout; attachers with stdin get a copy).</summary>
    public SafeFileHandle? Terminal { get; init; }

    /// <summary>Created with stdin (CRI stdin): attachers may write to it.</summary>
    public bool OpenStdin { get; init; }

    /// <summary>CRI stdin_once: the stdin closes when the first attach that took it ends.</summary>
    public bool StdinOnce { get; init; }

    /// <summary>A non-tty container's stdin: the write end of its pipe, until closed (stdin_once, or delete).</summary>
    public SafeFileHandle? Stdin { get; set; }

    /// <summary>Set once stdin_once has closed the stdin: no later attacher gets it.</summary>
    public bool StdinClosed { get; set; }

    /// <summary>Where the output goes besides the log.</summary>
    public AttachFanout Attachers { get; } = new();

    /// <summary>Completes (from the loop's queue) once the exit is recorded and announced.</summary>
    public TaskCompletionSource ExitAnnounced { get; } = new();
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
