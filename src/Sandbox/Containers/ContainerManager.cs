using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Nacelle.Common;
using Nacelle.ContainerCore.Cgroups;
using Nacelle.ContainerCore.Spec;
using Nacelle.ImageService;
using Nacelle.ImageService.Store;
using Nacelle.Sandbox.Monitor;
using Nacelle.Sandbox.Pods;
using Nacelle.Sandbox.Store;

namespace Nacelle.Sandbox.Containers;

/// <summary>What CreateContainer asks for, in domain terms (CriServer translates the CRI request and builds the spec).</summary>
public sealed record ContainerCreateRequest
{
    public required string PodId { get; init; }
    public required string Name { get; init; }
    public uint Attempt { get; init; }

    /// <summary>The image as kubelet names it (CRI image.image): a reference or an id.</summary>
    public required string Image { get; init; }

    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
    public IReadOnlyDictionary<string, string> Annotations { get; init; } = new Dictionary<string, string>();

    /// <summary>CRI log_path, relative to the pod's log directory.</summary>
    public string LogPath { get; init; } = "";

    /// <summary>The ContainerConfig as JSON (kept for ContainerStatus).</summary>
    public string ConfigJson { get; init; } = "";
}

/// <summary>Everything the spec builder needs that only exists once the container's rootfs does. Paths are host paths;
/// a null namespace means the pod has none of that kind (the node's is used, or the container gets its own).</summary>
public sealed record ContainerBuildContext
{
    public required string ContainerId { get; init; }
    public required PodRecord Pod { get; init; }
    public required ImageRecord Image { get; init; }
    public required string RootfsPath { get; init; }
    public required string CgroupsPath { get; init; }
    public required string PodDirectory { get; init; }
    public string? ImagePasswd { get; init; }
    public string? ImageGroup { get; init; }
    public string? NetworkNamespace { get; init; }
    public string? IpcNamespace { get; init; }
    public string? UtsNamespace { get; init; }
    public string? PidNamespace { get; init; }
    public string? ShmPath { get; init; }
    public bool CgroupV2 { get; init; }
}

/// <summary>The built container: its OCI spec, the CRI log file (null: none) and the signal StopContainer sends first.</summary>
public sealed record ContainerBuild(RuntimeSpec Spec, string? LogFile, int StopSignal);

/// <summary>A container's resource usage at <paramref name="At"/>.</summary>
public sealed record ContainerUsage(DateTimeOffset At, CgroupStats? Cgroup, long WritableBytes, long WritableInodes);

public sealed record ContainerManagerOptions
{
    /// <summary>How long StopPodSandbox waits after a container's stop signal before SIGKILL.</summary>
    public TimeSpan PodStopGrace { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>kubelet's cap on ExecSync output per stream (the monitor's default, 16 MiB).</summary>
    public int ExecOutputLimit { get; init; } = MonitorServer.DefaultOutputLimit;

    public ILogger Logger { get; init; } = NullLogger.Instance;

    /// <summary>
    /// Failure injection for the recovery tests ($NACELLE_TEST_CRASH): "create-after-rootfs" or "create-after-monitor"
    /// kill the daemon with SIGKILL at that point of CreateContainer, as a crash would. Null in production.
    /// </summary>
    public string? CrashPoint { get; init; }
}

/// <summary>
/// Containers of pod sandboxes: CreateContainer's steps (name reservation, writable rootfs, bundle, spec, the monitor's
/// create) each with its undo; start, stop (stop signal, timeout, SIGKILL), remove, status from the store kept current
/// by one exit watch per pod on its monitor, exec-sync, resource updates, log reopening, stats, and lifecycle events.
/// After a daemon restart <see cref="RecoverAsync"/> finishes or cleans every create that was in flight and brings
/// each container's state up to date from its monitor's durable exit records.
/// </summary>
public sealed class ContainerManager : IAsyncDisposable
{
    private readonly ContainerManagerOptions _options;
    private readonly PodManager _pods;
    private readonly PodStore _store;
    private readonly ImageManager _images;
    private readonly ILogger _log;
    private readonly Lazy<CgroupManager> _cgroups = new(() => CgroupManager.Detect());
    private readonly ConcurrentDictionary<string, (Task Task, CancellationTokenSource Stop)> _watches = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _exitWaiters = new(StringComparer.Ordinal);

    /// <summary>Creates under way in this daemon: their rows are incomplete on purpose, and a refresh must leave them be
    /// (only a create a previous daemon left behind is cleaned up).</summary>
    private readonly ConcurrentDictionary<string, byte> _creating = new(StringComparer.Ordinal);
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
        pods.PodLost += OnPodLost;
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

    // ------------------------------------------------------------------ create

    /// <summary>Creates a container in a ready pod; returns its id. On failure nothing of it remains.</summary>
    public async Task<string> CreateAsync(ContainerCreateRequest request, Func<ContainerBuildContext, ContainerBuild> build,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(build);
        var pod = _pods.Get(request.PodId);
        if (pod.State != PodState.Ready)
        {
            throw NacelleException.FailedPrecondition($"pod sandbox {pod.Id} is not ready: containers are created in ready pods only");
        }

        var image = _images.Find(request.Image)
            ?? throw NacelleException.NotFound($"image \"{request.Image}\" is not present on this node: pull it first");
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        var cgroupsPath = $"{pod.CgroupParent.TrimEnd('/')}/{id}";
        var undo = new UndoStack();
        _creating[id] = 0;
        try
        {
            // The row reserves the name (AlreadyExists for a duplicate) and stays incomplete until the monitor has the
            // container: a daemon killed before that leaves a row recovery removes with everything else it made.
            _store.AddContainer(new ContainerRecord
            {
                Id = id, PodId = pod.Id, Name = request.Name, Attempt = request.Attempt, ImageRef = request.Image,
                ImageId = image.Id, State = ContainerRecordState.Created, CreatedAt = UnixTime.Now(),
                Labels = request.Labels, Annotations = request.Annotations, LogPath = request.LogPath,
                ConfigJson = request.ConfigJson, Complete = false, CgroupPath = cgroupsPath,
                ImageName = image.RepoTags.Count > 0 ? image.RepoTags[0] : request.Image,
                ImageDigestRef = image.RepoDigests.Count > 0 ? image.RepoDigests[0] : image.Id,
            });
            undo.Push("container record", () => _store.DeleteContainer(id));

            _images.CreateRootfs(id, image.Id);
            undo.Push("rootfs", () => _images.RemoveRootfs(id));
            var rootfs = _images.Rootfs.Mount(id);
            CrashIfAsked("create-after-rootfs");

            var bundle = BundleDirectory(pod.Id, id);
            Directory.CreateDirectory(bundle);
            undo.Push("bundle", () => Directory.Delete(bundle, recursive: true));

            var shm = Path.Combine(_pods.PodDirectory(pod.Id), PodFiles.ShmDirectoryName);
            var built = build(new ContainerBuildContext
            {
                ContainerId = id, Pod = pod, Image = image, RootfsPath = rootfs.Path, CgroupsPath = cgroupsPath,
                PodDirectory = _pods.PodDirectory(pod.Id),
                ImagePasswd = RootfsFiles.ReadText(rootfs.Path, "/etc/passwd"),
                ImageGroup = RootfsFiles.ReadText(rootfs.Path, "/etc/group"),
                NetworkNamespace = _pods.NamespacePath(pod.Id, "net"),
                IpcNamespace = _pods.NamespacePath(pod.Id, "ipc"),
                UtsNamespace = _pods.NamespacePath(pod.Id, "uts"),
                PidNamespace = _pods.NamespacePath(pod.Id, "pid"),
                ShmPath = Directory.Exists(shm) ? shm : null,
                CgroupV2 = _cgroups.Value.IsUnified,
            });
            // Refused here, naming the field and the limit, rather than by the monitor half way.
            SpecValidator.Validate(built.Spec);
            var specJson = RuntimeSpecFile.Serialize(built.Spec);
            await File.WriteAllTextAsync(Path.Combine(bundle, "config.json"), specJson, cancellationToken).ConfigureAwait(false);
            if (built.LogFile is { } logFile)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(logFile)!);
            }

            var client = await MonitorOfAsync(pod, cancellationToken).ConfigureAwait(false);
            var created = (await client.SendAsync(new MonitorRequest
            {
                Op = MonitorProtocol.Create, ContainerId = id, SpecJson = specJson, Bundle = bundle, LogPath = built.LogFile,
            }, cancellationToken).ConfigureAwait(false)).Container!;
            undo.Push("monitor container", () => client.SendAsync(new MonitorRequest { Op = MonitorProtocol.Delete, ContainerId = id, Force = true }));
            CrashIfAsked("create-after-monitor");

            _store.UpdateContainer(id, c => c with
            {
                Complete = true, Pid = created.Pid, StopSignal = built.StopSignal, LogFile = built.LogFile ?? "",
                CgroupPath = created.CgroupPath ?? cgroupsPath,
            });
            EnsureWatching(pod.Id);
            Events.Publish(new ContainerEvent(id, pod.Id, ContainerEventKind.Created, UnixTime.Now()));
            ContainerLog.Created(_log, id, pod.Id, request.Name);
            return id;
        }
        catch (Exception e)
        {
            ContainerLog.CreateFailed(_log, id, pod.Id, e.Message);
            await undo.RunAsync(TimeSpan.FromSeconds(60), (what, error) => ContainerLog.UndoFailed(_log, id, what, error.Message)).ConfigureAwait(false);
            throw;
        }
        finally
        {
            _creating.TryRemove(id, out _);
        }
    }

    private void CrashIfAsked(string point)
    {
        if (_options.CrashPoint == point)
        {
            ContainerCore.Interop.Signals.Send(Environment.ProcessId, 9);
            Thread.Sleep(Timeout.Infinite);
        }
    }

    // ------------------------------------------------------------------ lifecycle

    public async Task StartAsync(string idOrPrefix, CancellationToken cancellationToken = default)
    {
        var container = Get(idOrPrefix);
        if (container.State != ContainerRecordState.Created)
        {
            throw NacelleException.FailedPrecondition($"container {container.Id} is {StateName(container.State)}: only a created container can start");
        }

        var client = await MonitorOfAsync(_pods.Get(container.PodId), cancellationToken).ConfigureAwait(false);
        var started = (await client.SendAsync(new MonitorRequest { Op = MonitorProtocol.Start, ContainerId = container.Id }, cancellationToken)
            .ConfigureAwait(false)).Container!;
        // The exit watch may already have recorded a quick exit: never go back from Exited to Running.
        _store.UpdateContainer(container.Id, c => c.State == ContainerRecordState.Created
            ? c with { State = ContainerRecordState.Running, StartedAt = UnixTime.Nanoseconds(started.StartedAt ?? DateTimeOffset.UtcNow), Pid = started.Pid }
            : c with { StartedAt = c.StartedAt ?? UnixTime.Nanoseconds(started.StartedAt ?? DateTimeOffset.UtcNow) });
        Events.Publish(new ContainerEvent(container.Id, container.PodId, ContainerEventKind.Started, UnixTime.Now()));
    }

    /// <summary>Stops a container: its stop signal, then SIGKILL once <paramref name="timeout"/> has passed (zero: at
    /// once). Idempotent: a container that is not running is left as it is.</summary>
    public async Task StopAsync(string idOrPrefix, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        // An unknown container is already stopped (CRI: StopContainer is idempotent, like RemoveContainer).
        if (Find(idOrPrefix) is not { Complete: true } container || container.State == ContainerRecordState.Exited)
        {
            return;
        }

        var client = await _pods.ClientAsync(_pods.Get(container.PodId), cancellationToken).ConfigureAwait(false);
        if (client is null)
        {
            return;
        }

        var state = await MonitorStateAsync(client, container.Id, cancellationToken).ConfigureAwait(false);
        if (state is null || state.Status == "Stopped")
        {
            await RefreshAsync(container.PodId, cancellationToken).ConfigureAwait(false);
            return;
        }

        if (state.Status == "Created")
        {
            // Never started: there is no process to signal gracefully.
            timeout = TimeSpan.Zero;
        }

        var exited = ExitWaiter(container.Id);
        if (timeout > TimeSpan.Zero)
        {
            await KillAsync(client, container.Id, container.StopSignal, all: false, cancellationToken).ConfigureAwait(false);
            ContainerLog.Stopping(_log, container.Id, container.StopSignal, timeout.TotalSeconds);
            await WaitOrRefreshAsync(container, exited, timeout, cancellationToken).ConfigureAwait(false);
        }

        if (!exited.Task.IsCompleted)
        {
            await KillAsync(client, container.Id, 9, all: true, cancellationToken).ConfigureAwait(false);
            await WaitOrRefreshAsync(container, exited, TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
        }

        if (!exited.Task.IsCompleted)
        {
            throw NacelleException.Internal($"container {container.Id} did not exit after SIGKILL");
        }
    }

    /// <summary>Removes a container (killing it if it runs), its writable layer and bundle. Idempotent.</summary>
    public async Task RemoveAsync(string idOrPrefix, CancellationToken cancellationToken = default)
    {
        if (Find(idOrPrefix) is not { } container)
        {
            return;
        }

        if (_store.TryGetPod(container.PodId) is { } pod && await _pods.ClientAsync(pod, cancellationToken).ConfigureAwait(false) is { } client)
        {
            try
            {
                await client.SendAsync(new MonitorRequest { Op = MonitorProtocol.Delete, ContainerId = container.Id, Force = true }, cancellationToken)
                    .ConfigureAwait(false);
            }
            catch (NacelleException e) when (e.Kind is ErrorKind.NotFound or ErrorKind.Unavailable)
            {
                // the monitor never had it, or is gone with its processes
            }
        }

        _images.RemoveRootfs(container.Id);
        var bundle = BundleDirectory(container.PodId, container.Id);
        if (Directory.Exists(bundle))
        {
            Directory.Delete(bundle, recursive: true);
        }

        _store.DeleteContainer(container.Id);
        if (container.State != ContainerRecordState.Exited)
        {
            Events.Publish(new ContainerEvent(container.Id, container.PodId, ContainerEventKind.Stopped, UnixTime.Now()));
        }

        Events.Publish(new ContainerEvent(container.Id, container.PodId, ContainerEventKind.Deleted, UnixTime.Now()));
        ContainerLog.Removed(_log, container.Id);
    }

    /// <summary>StopPodSandbox's part: every container of the pod gets its stop signal, SIGKILL after the grace.</summary>
    public async Task StopPodContainersAsync(string podId, CancellationToken cancellationToken = default)
    {
        var running = OfPod(podId).Where(c => c.State != ContainerRecordState.Exited);
        await Task.WhenAll(running.Select(c => StopAsync(c.Id, _options.PodStopGrace, cancellationToken))).ConfigureAwait(false);
    }

    /// <summary>RemovePodSandbox's part: every container of the pod is removed (the pod's records go with the pod).</summary>
    public async Task RemovePodContainersAsync(string podId, CancellationToken cancellationToken = default)
    {
        foreach (var container in RowsOf(podId))
        {
            await RemoveAsync(container.Id, cancellationToken).ConfigureAwait(false);
        }

        if (_watches.TryRemove(podId, out var watch))
        {
            await watch.Stop.CancelAsync().ConfigureAwait(false);
            watch.Stop.Dispose();
        }
    }

    // ------------------------------------------------------------------ queries

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

    /// <summary>Every container row of exactly this pod (the store filters by prefix), a create under way included.</summary>
    private List<ContainerRecord> RowsOf(string podId) =>
        _store.ListContainers(new ContainerRecordFilter(PodIdPrefix: podId)).Where(c => c.PodId == podId).ToList();

    /// <summary>The container, its state first brought up to date from its monitor when it may have changed.</summary>
    public async Task<ContainerRecord> StatusAsync(string idOrPrefix, CancellationToken cancellationToken = default)
    {
        var container = Get(idOrPrefix);
        if (container.State != ContainerRecordState.Exited)
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

    public ContainerUsage Usage(ContainerRecord container)
    {
        ArgumentNullException.ThrowIfNull(container);
        CgroupStats? stats = null;
        if (container.State == ContainerRecordState.Running && container.CgroupPath.Length > 0)
        {
            try
            {
                stats = _cgroups.Value.Open(container.CgroupPath).Stats();
            }
            catch (NacelleException)
            {
                // exited meanwhile: no numbers rather than wrong ones
            }
        }

        var (bytes, inodes) = _images.Rootfs.WritableUsage(container.Id);
        return new ContainerUsage(DateTimeOffset.UtcNow, stats, bytes, inodes);
    }

    // ------------------------------------------------------------------ operations in running containers

    /// <summary>Runs <paramref name="command"/> in the running container with its environment, user and working
    /// directory; output is captured up to kubelet's cap. A timeout is DeadlineExceeded.</summary>
    public async Task<MonitorExecResult> ExecSyncAsync(string idOrPrefix, IReadOnlyList<string> command, TimeSpan timeout,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (command.Count == 0)
        {
            throw NacelleException.InvalidArgument("cmd is empty: ExecSync needs a command");
        }

        var container = Get(idOrPrefix);
        if (container.State != ContainerRecordState.Running)
        {
            throw NacelleException.FailedPrecondition($"container {container.Id} is {StateName(container.State)}: exec needs a running container");
        }

        var spec = SpecJson(container) is { } json ? RuntimeSpecFile.Parse(json) : throw NacelleException.NotFound($"container {container.Id} has no spec");
        var process = spec.Process ?? new SpecProcess();
        process.Args = [.. command];
        process.Terminal = false;
        SpecValidator.ValidateProcess(process, "cmd");
        // A connection of its own: a long exec (a slow probe) must not hold up the pod's other requests, and the
        // monitor serves connections concurrently.
        await using var client = new MonitorClient(_pods.MonitorSocket(container.PodId));
        await client.ConnectAsync(TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
        var result = (await client.SendAsync(new MonitorRequest
        {
            Op = MonitorProtocol.ExecSync, ContainerId = container.Id,
            ProcessJson = System.Text.Json.JsonSerializer.Serialize(process, RuntimeSpecJson.Default.SpecProcess),
            TimeoutMs = timeout > TimeSpan.Zero ? (long)timeout.TotalMilliseconds : null, OutputLimit = _options.ExecOutputLimit,
        }, cancellationToken).ConfigureAwait(false)).Exec!;
        if (result.TimedOut)
        {
            throw new NacelleException(ErrorKind.DeadlineExceeded,
                $"command {string.Join(' ', command)} in container {container.Id} timed out after {timeout.TotalSeconds:0.###}s");
        }

        return result;
    }

    public async Task UpdateResourcesAsync(string idOrPrefix, SpecResources resources, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(resources);
        var container = Get(idOrPrefix);
        if (container.State == ContainerRecordState.Exited)
        {
            throw NacelleException.FailedPrecondition($"container {container.Id} has exited: its resources cannot change");
        }

        var client = await MonitorOfAsync(_pods.Get(container.PodId), cancellationToken).ConfigureAwait(false);
        await client.SendAsync(new MonitorRequest
        {
            Op = MonitorProtocol.Update, ContainerId = container.Id,
            ResourcesJson = System.Text.Json.JsonSerializer.Serialize(resources, RuntimeSpecJson.Default.SpecResources),
        }, cancellationToken).ConfigureAwait(false);
    }

    public async Task ReopenLogAsync(string idOrPrefix, CancellationToken cancellationToken = default)
    {
        var container = Get(idOrPrefix);
        if (container.State != ContainerRecordState.Running)
        {
            throw NacelleException.FailedPrecondition($"container {container.Id} is {StateName(container.State)}: only a running container's log is reopened");
        }

        var client = await MonitorOfAsync(_pods.Get(container.PodId), cancellationToken).ConfigureAwait(false);
        await client.SendAsync(new MonitorRequest { Op = MonitorProtocol.ReopenLog, ContainerId = container.Id }, cancellationToken).ConfigureAwait(false);
    }

    // ------------------------------------------------------------------ exits, recovery

    /// <summary>
    /// After a daemon start: every create left half way by a killed daemon is finished (the monitor has the
    /// container) or removed (it has not), and every pod's monitor is watched again, which brings each container's
    /// state up to date from the monitor's exit records first.
    /// </summary>
    public async Task RecoverAsync(CancellationToken cancellationToken = default)
    {
        foreach (var pod in _store.ListPods())
        {
            try
            {
                await RefreshAsync(pod.Id, cancellationToken).ConfigureAwait(false);
                if (File.Exists(_pods.MonitorSocket(pod.Id)))
                {
                    EnsureWatching(pod.Id);
                }
            }
            catch (NacelleException e)
            {
                ContainerLog.RecoverFailed(_log, pod.Id, e.Message);
            }
        }
    }

    /// <summary>Brings the pod's container rows in line with what its monitor knows (see <see cref="RecoverAsync"/>).</summary>
    public async Task RefreshAsync(string podId, CancellationToken cancellationToken = default)
    {
        if (_store.TryGetPod(podId) is not { } pod)
        {
            return;
        }

        var rows = RowsOf(podId);
        var client = await _pods.ClientAsync(pod, cancellationToken).ConfigureAwait(false);
        Dictionary<string, MonitorContainer> known;
        if (client is null)
        {
            known = [];
        }
        else
        {
            try
            {
                known = (await client.SendAsync(new MonitorRequest { Op = MonitorProtocol.List }, cancellationToken).ConfigureAwait(false))
                    .Containers!.ToDictionary(c => c.Id, StringComparer.Ordinal);
            }
            catch (NacelleException e) when (e.Kind == ErrorKind.Unavailable)
            {
                known = [];
                client = null;
            }
        }

        foreach (var row in rows.Where(r => !_creating.ContainsKey(r.Id)))
        {
            if (known.TryGetValue(row.Id, out var state))
            {
                var current = row;
                if (!row.Complete)
                {
                    // The monitor has it: the create got that far, so it is finished rather than undone.
                    current = _store.UpdateContainer(row.Id, c => c with { Complete = true, Pid = state.Pid, CgroupPath = state.CgroupPath ?? c.CgroupPath });
                    ContainerLog.CreateCompleted(_log, row.Id);
                }

                Apply(current, state);
            }
            else if (!row.Complete)
            {
                CleanUpIncomplete(row);
            }
            else if (row.State != ContainerRecordState.Exited && (client is not null || !PodManager.MonitorAlive(pod)))
            {
                // Complete, but its monitor is gone (node reboot, killed) or no longer knows it: it is not running.
                MarkLost(row, client is null ? "the pod's monitor is gone" : "the pod's monitor no longer knows this container");
            }
        }
    }

    private void CleanUpIncomplete(ContainerRecord row)
    {
        ContainerLog.CreateAbandoned(_log, row.Id);
        try
        {
            _images.RemoveRootfs(row.Id);
        }
        catch (NacelleException)
        {
            // no rootfs was made
        }

        var bundle = BundleDirectory(row.PodId, row.Id);
        if (Directory.Exists(bundle))
        {
            Directory.Delete(bundle, recursive: true);
        }

        _store.DeleteContainer(row.Id);
    }

    /// <summary>The reason of a container whose pod's monitor is gone (or no longer knows it): its exit was never recorded.</summary>
    public const string LostReason = "ContainerLost";

    private void MarkLost(ContainerRecord row, string why)
    {
        if (ExitOnce(row, c => c with
            {
                State = ContainerRecordState.Exited, FinishedAt = c.FinishedAt ?? UnixTime.Now(), ExitCode = c.ExitCode ?? 255,
                Reason = LostReason, Message = why,
            }))
        {
            Events.Publish(new ContainerEvent(row.Id, row.PodId, ContainerEventKind.Stopped, UnixTime.Now()));
        }

        CompleteWaiter(row.Id);
    }

    /// <summary>Moves the row to Exited in one transaction unless it is there already: the exit watch, a refresh and a lost
    /// pod may all see the same exit, and only the one that records it publishes the Stopped event.</summary>
    private bool ExitOnce(ContainerRecord row, Func<ContainerRecord, ContainerRecord> exit)
    {
        var recorded = false;
        _store.UpdateContainer(row.Id, c =>
        {
            if (c.State == ContainerRecordState.Exited)
            {
                return c;
            }

            recorded = true;
            return exit(c);
        });
        return recorded;
    }

    /// <summary>Applies what the monitor reports to the row: start seen, or exit (code, time, reason).</summary>
    private void Apply(ContainerRecord row, MonitorContainer state)
    {
        if (state.Status == "Stopped" && row.State != ContainerRecordState.Exited)
        {
            var code = state.ExitCode ?? (state.ExitSignal is { } signal ? 128 + signal : 255);
            var reason = state.OomKilled ? "OOMKilled" : code == 0 ? "Completed" : "Error";
            if (ExitOnce(row, c => c with
                {
                    State = ContainerRecordState.Exited,
                    StartedAt = c.StartedAt ?? (state.StartedAt is { } s ? UnixTime.Nanoseconds(s) : null),
                    FinishedAt = UnixTime.Nanoseconds(state.FinishedAt ?? DateTimeOffset.UtcNow),
                    ExitCode = code,
                    Reason = reason,
                    Message = state.OomKilled ? "the container was killed by the OOM killer" : "",
                }))
            {
                Events.Publish(new ContainerEvent(row.Id, row.PodId, ContainerEventKind.Stopped, UnixTime.Now()));
                ContainerLog.Exited(_log, row.Id, code, reason);
            }
        }
        else if (state.Status is "Running" or "Paused" && row.State == ContainerRecordState.Created)
        {
            // Only from Created: an exit recorded meanwhile must never be undone.
            _store.UpdateContainer(row.Id, c => c.State != ContainerRecordState.Created ? c : c with
            {
                State = ContainerRecordState.Running, StartedAt = UnixTime.Nanoseconds(state.StartedAt ?? DateTimeOffset.UtcNow), Pid = state.Pid,
            });
        }

        if (state.Status == "Stopped")
        {
            CompleteWaiter(row.Id);
        }
    }

    private void EnsureWatching(string podId)
    {
        if (_watches.ContainsKey(podId) || _disposed.IsCancellationRequested)
        {
            return;
        }

        var stop = CancellationTokenSource.CreateLinkedTokenSource(_disposed.Token);
        var entry = (Task: Task.CompletedTask, Stop: stop);
        if (_watches.TryAdd(podId, entry))
        {
            _watches[podId] = (Task.Run(() => WatchAsync(podId, stop.Token)), stop);
        }
        else
        {
            stop.Dispose();
        }
    }

    /// <summary>One pod's exit watch: reconnects while the pod and its monitor exist, refreshing after every connect.</summary>
    private async Task WatchAsync(string podId, CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(100);
        var failures = 0;
        while (!cancellationToken.IsCancellationRequested && _store.TryGetPod(podId) is not null)
        {
            var socket = _pods.MonitorSocket(podId);
            if (!File.Exists(socket))
            {
                break;
            }

            try
            {
                await MonitorClient.WatchAsync(socket,
                    async () =>
                    {
                        failures = 0;
                        delay = TimeSpan.FromMilliseconds(100);
                        await RefreshAsync(podId, cancellationToken).ConfigureAwait(false);
                    },
                    e =>
                    {
                        if (e.Container is { } state && _store.TryGetContainer(state.Id) is { } row)
                        {
                            Apply(row, state);
                        }

                        return Task.CompletedTask;
                    }, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (NacelleException e)
            {
                if (++failures >= 5)
                {
                    ContainerLog.WatchGaveUp(_log, podId, e.Message);
                    await RefreshAsync(podId, CancellationToken.None).ConfigureAwait(false);
                    break;
                }
            }

            try
            {
                await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
        }

        _watches.TryRemove(podId, out _);
    }

    private TaskCompletionSource ExitWaiter(string id) =>
        _exitWaiters.GetOrAdd(id, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    private void CompleteWaiter(string id)
    {
        if (_exitWaiters.TryRemove(id, out var waiter))
        {
            waiter.TrySetResult();
        }
    }

    /// <summary>Waits for the exit watch to see the exit; refreshes from the monitor now and then in case the watch is
    /// reconnecting.</summary>
    private async Task WaitOrRefreshAsync(ContainerRecord container, TaskCompletionSource exited, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!exited.Task.IsCompleted)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                return;
            }

            await Task.WhenAny(exited.Task, Task.Delay(left < TimeSpan.FromSeconds(1) ? left : TimeSpan.FromSeconds(1), cancellationToken)).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            if (!exited.Task.IsCompleted)
            {
                await RefreshAsync(container.PodId, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private static async Task KillAsync(MonitorClient client, string id, int signal, bool all, CancellationToken cancellationToken)
    {
        try
        {
            await client.SendAsync(new MonitorRequest { Op = MonitorProtocol.Kill, ContainerId = id, Signal = signal, All = all }, cancellationToken)
                .ConfigureAwait(false);
        }
        catch (NacelleException e) when (e.Kind is ErrorKind.FailedPrecondition or ErrorKind.NotFound)
        {
            // exited meanwhile
        }
    }

    private static async Task<MonitorContainer?> MonitorStateAsync(MonitorClient client, string id, CancellationToken cancellationToken)
    {
        try
        {
            return (await client.SendAsync(new MonitorRequest { Op = MonitorProtocol.State, ContainerId = id }, cancellationToken).ConfigureAwait(false)).Container;
        }
        catch (NacelleException e) when (e.Kind == ErrorKind.NotFound)
        {
            return null;
        }
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

internal static partial class ContainerLog
{
    [LoggerMessage(5300, LogLevel.Information, "Container {ContainerId} created in pod {PodId} ({Name})")]
    public static partial void Created(ILogger logger, string containerId, string podId, string name);

    [LoggerMessage(5301, LogLevel.Warning, "Container {ContainerId} in pod {PodId}: CreateContainer failed, undoing: {Reason}")]
    public static partial void CreateFailed(ILogger logger, string containerId, string podId, string reason);

    [LoggerMessage(5302, LogLevel.Warning, "Container {ContainerId}: undo of {Step} failed: {Reason}")]
    public static partial void UndoFailed(ILogger logger, string containerId, string step, string reason);

    [LoggerMessage(5303, LogLevel.Information, "Container {ContainerId}: stop signal {Signal}, SIGKILL after {Seconds}s")]
    public static partial void Stopping(ILogger logger, string containerId, int signal, double seconds);

    [LoggerMessage(5304, LogLevel.Information, "Container {ContainerId} exited with {ExitCode} ({Reason})")]
    public static partial void Exited(ILogger logger, string containerId, int exitCode, string reason);

    [LoggerMessage(5305, LogLevel.Information, "Container {ContainerId} removed")]
    public static partial void Removed(ILogger logger, string containerId);

    [LoggerMessage(5306, LogLevel.Warning, "Container {ContainerId}: a create interrupted by a daemon restart was cleaned up")]
    public static partial void CreateAbandoned(ILogger logger, string containerId);

    [LoggerMessage(5307, LogLevel.Information, "Container {ContainerId}: a create interrupted by a daemon restart was completed (the monitor has it)")]
    public static partial void CreateCompleted(ILogger logger, string containerId);

    [LoggerMessage(5308, LogLevel.Warning, "Pod {PodId}: recovering its containers failed: {Reason}")]
    public static partial void RecoverFailed(ILogger logger, string podId, string reason);

    [LoggerMessage(5309, LogLevel.Warning, "Pod {PodId}: stopped watching its monitor for exits: {Reason}")]
    public static partial void WatchGaveUp(ILogger logger, string podId, string reason);
}
