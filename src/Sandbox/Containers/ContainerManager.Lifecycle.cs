using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.Sandbox.Monitor;
using Nacelle.Sandbox.Store;

namespace Nacelle.Sandbox.Containers;

/// <summary>Start, stop (stop signal, timeout, SIGKILL) and remove, of one container or of every container of a pod.</summary>
public sealed partial class ContainerManager
{
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
        await using var held = await _removals.EnterAsync(found.Id, cancellationToken).ConfigureAwait(false);
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
