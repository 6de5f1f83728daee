using System.Globalization;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Spec;
using Nacelle.Sandbox.Monitor;
using Nacelle.Sandbox.Pods;
using Nacelle.Sandbox.Store;

namespace Nacelle.Sandbox.Containers;

/// <summary>Start, stop (stop signal, timeout, SIGKILL) and remove, of one container or of every container of a pod.</summary>
public sealed partial class ContainerManager
{
    /// <summary>The reason, exit code and first words of the message of a container whose start failed (containerd's
    /// StartError and 128, as Docker): it is exited, its error the message, and StartContainer answers that error.</summary>
    public const string StartErrorReason = "StartError";

    public const int StartErrorExitCode = 128;

    /// <summary>
    /// Starts a created container: the pod's monitor spawns it from its bundle's spec (cgroup, namespaces, mounts, up to
    /// the exec barrier) and releases it into its program. A start that fails leaves the container exited
    /// (<see cref="StartErrorReason"/>, exit code <see cref="StartErrorExitCode"/>, the error as its message) and nothing
    /// of it in the monitor; its rootfs stays until RemoveContainer. A daemon killed half way leaves the container created,
    /// maybe spawned and parked in the monitor: a later start releases it (the monitor answers the create AlreadyExists).
    /// </summary>
    public async Task StartAsync(string idOrPrefix, CancellationToken cancellationToken = default)
    {
        var container = Created(Get(idOrPrefix));
        // Under the pod's gate, as CreateContainer, StopPodSandbox and RemovePodSandbox: the spawn makes the container's
        // cgroup and joins the pod's namespaces, which a teardown beside it would take away half way. Then the
        // container's own gate: one start, removal or resource update of it at a time.
        await using var podGate = await _pods.ExclusiveAsync(container.PodId, cancellationToken).ConfigureAwait(false);
        await using var held = await _operations.EnterAsync(container.Id, cancellationToken).ConfigureAwait(false);
        container = Created(Get(container.Id));
        MonitorContainer started;
        string? cgroupPath;
        try
        {
            (started, cgroupPath) = await SpawnAndStartAsync(container, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NacelleException or IOException or OperationCanceledException)
        {
            await StartFailedAsync(container, e.Message).ConfigureAwait(false);
            throw;
        }

        // The exit watch may already have recorded a quick exit: never go back from Exited to Running.
        var startedAt = UnixTime.Nanoseconds(started.StartedAt ?? DateTimeOffset.UtcNow);
        _store.UpdateContainer(container.Id, c => c.State == ContainerRecordState.Created
            ? c with { State = ContainerRecordState.Running, StartedAt = startedAt, Pid = started.Pid, CgroupPath = cgroupPath ?? c.CgroupPath }
            : c with { StartedAt = c.StartedAt ?? startedAt, CgroupPath = cgroupPath ?? c.CgroupPath });
        Events.Publish(new ContainerEvent(container.Id, container.PodId, ContainerEventKind.Started, UnixTime.Now()));
    }

    private static ContainerRecord Created(ContainerRecord container) => container.State == ContainerRecordState.Created
        ? container
        : throw NacelleException.FailedPrecondition($"container {container.Id} is {StateName(container.State)}: only a created container can start");

    /// <summary>The monitor's create (the spec from the bundle, the log file, stdin) and start; the container's cgroup
    /// as the monitor placed it (null when an interrupted start had it created already).</summary>
    private async Task<(MonitorContainer Started, string? CgroupPath)> SpawnAndStartAsync(ContainerRecord container, CancellationToken cancellationToken)
    {
        var pod = _pods.Get(container.PodId);
        if (pod.State != PodState.Ready)
        {
            throw NacelleException.FailedPrecondition($"pod sandbox {pod.Id} is not ready: its containers cannot start");
        }

        var bundle = BundleDirectory(pod.Id, container.Id);
        var specJson = await File.ReadAllTextAsync(Path.Combine(bundle, "config.json"), cancellationToken).ConfigureAwait(false);
        CheckPidTarget(container, specJson);
        var handler = (await _pods.HandlersAsync(cancellationToken).ConfigureAwait(false)).Resolve(pod.RuntimeHandler);
        var client = await MonitorOfAsync(pod, cancellationToken).ConfigureAwait(false);
        string? cgroupPath = null;
        try
        {
            var created = (await client.SendAsync(new MonitorRequest
            {
                Op = MonitorProtocol.Create, ContainerId = container.Id, SpecJson = specJson, Bundle = bundle,
                LogFile = container.LogFile.Length > 0 ? container.LogFile : null,
                // Version 2: a stdin the monitor keeps for attachers (a version 1 monitor ignores both fields).
                Stdin = container.Stdin, StdinOnce = container.StdinOnce,
                // The pod's RuntimeClass handler: an external OCI runtime goes with the create; the built-in core needs nothing.
                Runtime = handler.External,
            }, cancellationToken).ConfigureAwait(false)).Container!;
            cgroupPath = created.CgroupPath;
        }
        catch (NacelleException e) when (e.Kind == ErrorKind.AlreadyExists)
        {
            // A start a killed daemon left half way: the monitor has the container, parked before its program.
        }

        CrashIfAsked("start-after-monitor-create");
        var started = (await client.SendAsync(new MonitorRequest { Op = MonitorProtocol.Start, ContainerId = container.Id }, cancellationToken)
            .ConfigureAwait(false)).Container!;
        EnsureWatching(pod.Id);
        return (started, cgroupPath);
    }

    /// <summary>
    /// A TARGET pid namespace (kubelet's ephemeral debug containers) is named in the spec by its container's init pid,
    /// taken at CreateContainer: that container must still run with that pid, or the pid may since name another process
    /// and the start would join that process's namespace.
    /// </summary>
    private void CheckPidTarget(ContainerRecord container, string specJson)
    {
        if (!specJson.Contains("/ns/pid\"", StringComparison.Ordinal))
        {
            return; // no /proc/PID/ns/pid in the spec (the pod's own pin is <state>/ns/<pod>/pid): not parsed for nothing
        }

        var spec = RuntimeSpecFile.Parse(specJson);
        foreach (var ns in spec.Linux?.Namespaces ?? [])
        {
            if (ns.Type == "pid" && ns.Path is { } path && path.StartsWith("/proc/", StringComparison.Ordinal) && path.EndsWith("/ns/pid", StringComparison.Ordinal))
            {
                var pid = path["/proc/".Length..^"/ns/pid".Length];
                if (!RowsOf(container.PodId).Any(c => c.State == ContainerRecordState.Running && c.Pid?.ToString(CultureInfo.InvariantCulture) == pid))
                {
                    throw NacelleException.FailedPrecondition(
                        $"container {container.Id} joins the pid namespace of the container whose process was {pid} at CreateContainer, which no longer runs");
                }
            }
        }
    }

    /// <summary>A start that failed: the container is exited with <see cref="StartErrorReason"/>, and whatever the
    /// monitor has of it goes (a create that got that far, a process parked or let go).</summary>
    private async Task StartFailedAsync(ContainerRecord container, string error)
    {
        ContainerLog.StartFailed(_log, container.Id, error);
        if (ExitOnce(container, c => c with
            {
                State = ContainerRecordState.Exited, Pid = null, FinishedAt = UnixTime.Now(), ExitCode = StartErrorExitCode,
                Reason = StartErrorReason, Message = error,
            }))
        {
            Events.Publish(new ContainerEvent(container.Id, container.PodId, ContainerEventKind.Stopped, UnixTime.Now()));
        }

        CompleteWaiter(container.Id);
        try
        {
            using var bounded = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await ReleaseInMonitorAsync(container.PodId, container.Id, bounded.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NacelleException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            // Left to RemoveContainer (it releases an exited container in the monitor too) or to recovery.
            ContainerLog.MonitorReleaseFailed(_log, container.Id, e.Message);
        }
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
        if (state is null && container.State == ContainerRecordState.Created)
        {
            // Created and not spawned (the monitor spawns it at StartContainer): nothing runs, and the container stays
            // created, as containerd leaves a container that never started.
            return;
        }

        if (state is null || state.Status == "Stopped")
        {
            await RefreshAsync(container.PodId, cancellationToken).ConfigureAwait(false);
            return;
        }

        if (state.Status == "Created")
        {
            // Spawned by a start a killed daemon left half way, never released: no process to signal gracefully.
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

    /// <summary>
    /// Removes a container (killing it if it runs), its writable layer and bundle. Idempotent.
    /// A container that runs (or may) is deleted in its pod's monitor first, so nothing runs on the rootfs that goes.
    /// An exited one has no process left: its rootfs, bundle and row go at once (the directories moved aside, deleted in
    /// the background) and the monitor's part (its cgroup
    /// directories, state directory and exit record, a round trip to another process that a loaded node schedules
    /// late) follows in the background. A daemon killed before that finishes leaves the monitor a container without a
    /// row, which recovery releases (<see cref="ReleaseOrphansAsync"/>); RemovePodSandbox waits for it.
    /// </summary>
    public async Task RemoveAsync(string idOrPrefix, CancellationToken cancellationToken = default)
    {
        if (Find(idOrPrefix) is not { } found)
        {
            return;
        }

        // One removal of a container at a time (RemoveContainer twice, or beside RemovePodSandbox): the one that waited
        // finds it gone and succeeds, instead of deleting what the other already deleted.
        await using var held = await _operations.EnterAsync(found.Id, cancellationToken).ConfigureAwait(false);
        if (Find(found.Id) is not { } container)
        {
            return;
        }

        var exited = container.State == ContainerRecordState.Exited;
        if (!exited)
        {
            await ReleaseInMonitorAsync(container.PodId, container.Id, cancellationToken).ConfigureAwait(false);
        }

        // The writable layer and the bundle leave their places now and are deleted in the background (see Trash).
        _images.RemoveRootfs(container.Id);
        _ = _pods.Trash.Discard(BundleDirectory(container.PodId, container.Id));
        _store.DeleteContainer(container.Id);
        if (exited)
        {
            CrashIfAsked("remove-before-monitor-release");
            var release = ReleaseInBackgroundAsync(container.PodId, container.Id);
            if (!release.IsCompleted)
            {
                _releasing[container.Id] = (container.PodId, release);
                _ = release.ContinueWith(done => _releasing.TryRemove(container.Id, out var _), CancellationToken.None,
                    TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }
        else
        {
            Events.Publish(new ContainerEvent(container.Id, container.PodId, ContainerEventKind.Stopped, UnixTime.Now()));
        }

        Events.Publish(new ContainerEvent(container.Id, container.PodId, ContainerEventKind.Deleted, UnixTime.Now()));
        ContainerLog.Removed(_log, container.Id);
    }

    /// <summary>The container goes from its pod's monitor (killed first if it runs); a monitor that never had it, or
    /// is gone with its processes, has nothing to do.</summary>
    private async Task ReleaseInMonitorAsync(string podId, string containerId, CancellationToken cancellationToken)
    {
        if (_store.TryGetPod(podId) is { } pod && await _pods.ClientAsync(pod, cancellationToken).ConfigureAwait(false) is { } client)
        {
            try
            {
                await client.SendAsync(new MonitorRequest { Op = MonitorProtocol.Delete, ContainerId = containerId, Force = true }, cancellationToken)
                    .ConfigureAwait(false);
            }
            catch (NacelleException e) when (e.Kind is ErrorKind.NotFound or ErrorKind.Unavailable)
            {
                // the monitor never had it, or is gone with its processes
            }
        }
    }

    private async Task ReleaseInBackgroundAsync(string podId, string containerId)
    {
        try
        {
            await ReleaseInMonitorAsync(podId, containerId, _disposed.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NacelleException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            // Left to the pod's removal (its monitor deletes what it still has) or to recovery after a restart.
            ContainerLog.MonitorReleaseFailed(_log, containerId, e.Message);
        }
    }

    /// <summary>Waits until every background release of the pod's removed containers is done.</summary>
    private async Task WaitForReleasesAsync(string podId)
    {
        foreach (var (_, (pod, release)) in _releasing)
        {
            if (pod == podId)
            {
                await release.ConfigureAwait(false);
            }
        }
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

        await WaitForReleasesAsync(podId).ConfigureAwait(false);

        if (_watches.TryRemove(podId, out var watch))
        {
            await watch.Stop.CancelAsync().ConfigureAwait(false);
            watch.Stop.Dispose();
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
                // The store decides too: an exit applied between the stop's state query and its waiter, or a RemoveContainer
                // that took the container meanwhile (its monitor no longer lists it), completes no waiter by itself.
                if (Find(container.Id) is not { State: not ContainerRecordState.Exited })
                {
                    CompleteWaiter(container.Id);
                    exited.TrySetResult();
                }
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
}
