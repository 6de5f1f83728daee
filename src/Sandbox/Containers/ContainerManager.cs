using Nacelle.ContainerCore.Security;
using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Cgroups;
using Nacelle.ImageService;
using Nacelle.Sandbox.Containers.Spec;
using Nacelle.Sandbox.Monitor;
using Nacelle.Sandbox.Pods;
using Nacelle.Sandbox.Store;

namespace Nacelle.Sandbox.Containers;

/// <summary>A container's resource usage at <paramref name="At"/>.</summary>
public sealed record ContainerUsage(DateTimeOffset At, CgroupUsage? Cgroup, long WritableBytes, long WritableInodes);

public sealed record ContainerManagerOptions
{
    /// <summary>How long StopPodSandbox waits after a container's stop signal before SIGKILL.</summary>
    public TimeSpan PodStopGrace { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>The most ExecSync answers of stdout and stderr together: what one response message may carry (the daemon
    /// sets it from grpc.max_send_message_size; 16 MiB is also kubelet's receive limit). More is ResourceExhausted.</summary>
    public long ExecSyncOutputLimit { get; init; } = MonitorProtocol.DefaultExecOutputLimit;

    public ILogger Logger { get; init; } = NullLogger.Instance;

    /// <summary>The host I/O of the spec builder (tests substitute it).</summary>
    public ISpecHost SpecHost { get; init; } = Spec.SpecHost.Instance;

    /// <summary>The security modules the node enforces.</summary>
    public LinuxSecurityModules SecurityModules { get; init; } = LinuxSecurityModules.None;

    /// <summary>RuntimeDefault's AppArmor profile (loaded at start), or why there is none on a node with AppArmor.</summary>
    public string? AppArmorDefaultProfile { get; init; }

    public string? AppArmorDefaultUnavailable { get; init; }

    /// <summary>
    /// Failure injection for the recovery tests ($NACELLE_TEST_CRASH): "create-after-rootfs" (CreateContainer),
    /// "start-after-monitor-create" (StartContainer, the monitor has spawned the container) or
    /// "remove-before-monitor-release" (RemoveContainer) kill the daemon with SIGKILL at that point, as a crash would.
    /// Null in production.
    /// </summary>
    public string? CrashPoint { get; init; }
}

/// <summary>
/// Containers of pod sandboxes: CreateContainer's steps (name reservation, writable rootfs, bundle, spec) each with its
/// undo; start (the monitor's spawn and release), stop (stop signal, timeout, SIGKILL), remove, status from the store kept current
/// by one exit watch per pod on its monitor, exec-sync, resource updates, log reopening, stats, and lifecycle events.
/// After a daemon restart <see cref="RecoverAsync"/> finishes or cleans every create that was in flight and brings
/// each container's state up to date from its monitor's durable exit records.
/// </summary>
public sealed partial class ContainerManager : IAsyncDisposable
{
    private readonly ContainerManagerOptions _options;
    private readonly PodManager _pods;
    private readonly PodStore _store;
    private readonly ImageManager _images;
    private readonly ILogger _log;
    private readonly ContainerSpecBuilder _specs;
    private readonly Lazy<CgroupManager> _cgroups = new(() => CgroupManager.Detect());
    private readonly ConcurrentDictionary<string, (Task Task, CancellationTokenSource Stop)> _watches = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _exitWaiters = new(StringComparer.Ordinal);

    /// <summary>Pods whose exit watch is connected and caught up (listed after the monitor accepted it): their exits
    /// reach the store as events, so a status is served from the store without asking the monitor.</summary>
    private readonly ConcurrentDictionary<string, byte> _liveWatches = new(StringComparer.Ordinal);

    /// <summary>Creates under way in this daemon: their rows are incomplete on purpose, and a refresh must leave them be
    /// (only a create a previous daemon left behind is cleaned up).</summary>
    private readonly ConcurrentDictionary<string, byte> _creating = new(StringComparer.Ordinal);

    /// <summary>One start, removal or resource update of a container at a time (<see cref="StartAsync"/>,
    /// <see cref="RemoveAsync"/>, <see cref="UpdateResourcesAsync"/>).</summary>
    private readonly KeyedGate _operations = new();

    /// <summary>Exited containers already removed whose release in the pod's monitor (its cgroup, state and exit record)
    /// is still under way, by container id, with their pod: RemovePodSandbox waits for them before the monitor goes.</summary>
    private readonly ConcurrentDictionary<string, (string PodId, Task Release)> _releasing = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _disposed = new();

    public ContainerManager(ContainerManagerOptions options, PodManager pods, ImageManager images, ContainerEvents events)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(pods);
        _options = options;
        _pods = pods;
        _store = pods.Store;
        _images = images;
        Events = events;
        _log = options.Logger;
        _specs = new ContainerSpecBuilder(options.SpecHost);
        pods.PodLost += OnPodLost;
        // The exit watch starts with the pod, so it is connected and caught up before the first container's status is
        // asked for (a status asks the monitor itself while the watch is not: a round trip on the hot path).
        pods.PodReady += EnsureWatching;
    }

    /// <summary>A pod whose monitor is gone cannot run containers any more (its processes were killed): they are exited,
    /// with a reason that says so, so Stop and Remove succeed and kubelet replaces the pod.</summary>
    private void OnPodLost(PodLoss loss)
    {
        if (!loss.MonitorGone)
        {
            return; // pause-init died: the pod is NotReady; its containers run on until kubelet stops them
        }

        foreach (var row in RowsOf(loss.PodId).Where(r => r.Complete && r.State != ContainerRecordState.Exited))
        {
            MarkLost(row, $"{loss.Reason}; the container's processes were killed");
        }
    }

    public ContainerEvents Events { get; }

    public PodStore Store => _store;

    /// <summary>The container's bundle: config.json (its OCI spec) lives here.</summary>
    public string BundleDirectory(string podId, string containerId) => Path.Combine(_pods.PodDirectory(podId), "containers", containerId);

    public ContainerRecord Get(string idOrPrefix) => Visible(_store.GetContainer(_store.ResolveContainerId(idOrPrefix)));

    public ContainerRecord? Find(string idOrPrefix)
    {
        try
        {
            return _store.GetContainer(_store.ResolveContainerId(idOrPrefix));
        }
        catch (NacelleException e) when (e.Kind == ErrorKind.NotFound)
        {
            return null;
        }
    }

    /// <summary>The complete containers matching <paramref name="filter"/> (a create in flight is not listed).</summary>
    public IReadOnlyList<ContainerRecord> List(ContainerRecordFilter? filter = null) =>
        _store.ListContainers(filter).Where(c => c.Complete).ToList();

    /// <summary>The complete containers of exactly this pod.</summary>
    public IReadOnlyList<ContainerRecord> OfPod(string podId) => RowsOf(podId).Where(c => c.Complete).ToList();

    /// <summary>Every container row of exactly this pod, a create under way included.</summary>
    private IReadOnlyList<ContainerRecord> RowsOf(string podId) => _store.ContainersOfPod(podId);

    /// <summary>
    /// The container as the store has it: its pod's exit watch keeps it current (the monitor pushes exits, the pod's
    /// liveness watch marks them lost when the monitor dies). Only while that watch is not connected and caught up
    /// (being set up after a create or a restart, reconnecting, given up) is the state first brought up to date from
    /// the monitor.
    /// </summary>
    public async Task<ContainerRecord> StatusAsync(string idOrPrefix, CancellationToken cancellationToken = default)
    {
        var container = Get(idOrPrefix);
        if (container.State != ContainerRecordState.Exited && !_liveWatches.ContainsKey(container.PodId))
        {
            await RefreshAsync(container.PodId, cancellationToken).ConfigureAwait(false);
            container = Get(container.Id);
        }

        return container;
    }

    /// <summary>The container's OCI spec as created (its bundle's config.json), or null when the bundle is gone.</summary>
    public string? SpecJson(ContainerRecord container)
    {
        ArgumentNullException.ThrowIfNull(container);
        var path = Path.Combine(BundleDirectory(container.PodId, container.Id), "config.json");
        return File.Exists(path) ? File.ReadAllText(path) : null;
    }

    /// <summary>"/proc/PID/ns/pid" of a running container (a TARGET pid namespace), or null when it does not run.</summary>
    public string? PidNamespaceOf(string idOrPrefix)
    {
        var container = Find(idOrPrefix);
        return container is { State: ContainerRecordState.Running, Pid: { } pid } ? $"/proc/{pid}/ns/pid" : null;
    }

    private async Task<MonitorClient> MonitorOfAsync(PodRecord pod, CancellationToken cancellationToken) =>
        await _pods.ClientAsync(pod, cancellationToken).ConfigureAwait(false)
        ?? throw NacelleException.Unavailable($"the monitor of pod sandbox {pod.Id} is not running");

    /// <summary>A row still being created is not a container yet.</summary>
    private static ContainerRecord Visible(ContainerRecord container) =>
        container.Complete ? container : throw NacelleException.NotFound($"container {container.Id} not found (its creation has not finished)");

    private static string StateName(ContainerRecordState state) => state.ToString().ToLowerInvariant();

    public async ValueTask DisposeAsync()
    {
        await _disposed.CancelAsync().ConfigureAwait(false);
        foreach (var (_, watch) in _watches)
        {
            await watch.Task.ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
            watch.Stop.Dispose();
        }

        _disposed.Dispose();
    }
}
