using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.Sandbox.Monitor;
using Nacelle.Sandbox.Store;

namespace Nacelle.Sandbox.Containers;

/// <summary>Exits and recovery: one exit watch per pod on its monitor keeps the store current; after a daemon restart every create left half way is finished or cleaned up and each container's state brought up to date.</summary>
public sealed partial class ContainerManager
{
    /// <summary>
    /// After a daemon start: every create left half way by a killed daemon is removed (a row still incomplete; one
    /// the monitor has, from a daemon that spawned at CreateContainer, is finished), and every pod's monitor is watched
    /// again, which brings each container's state up to date from the monitor's exit records first. A created container
    /// the monitor does not have is not spawned yet and stays created; one a start cut short left parked in the monitor
    /// stays created too, and StartContainer releases it.
    /// </summary>
    public async Task RecoverAsync(CancellationToken cancellationToken = default)
    {
        foreach (var pod in _store.ListPods())
        {
            try
            {
                await RefreshAsync(pod.Id, cancellationToken).ConfigureAwait(false);
                await ReleaseOrphansAsync(pod, cancellationToken).ConfigureAwait(false);
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

        RemoveOrphanRootfs();
    }

    /// <summary>
    /// A rootfs whose container row is gone (a removal or an undo cut short by a crash) is removed, and a mount under
    /// the containers directory that no rootfs owns is unmounted: nothing of a container the daemon no longer knows
    /// stays mounted.
    /// </summary>
    private void RemoveOrphanRootfs()
    {
        foreach (var id in _images.Rootfs.ContainerIds().Where(id => _store.TryGetContainer(id) is null && !_creating.ContainsKey(id)))
        {
            try
            {
                _images.RemoveRootfs(id);
                ContainerLog.OrphanRootfsRemoved(_log, id);
            }
            catch (Exception e) when (e is IOException or NacelleException)
            {
                ContainerLog.UndoFailed(_log, id, "rootfs of a removed container", e.Message);
            }
        }

        foreach (var point in _images.Rootfs.UnmountOrphans())
        {
            ContainerLog.OrphanMountRemoved(_log, point);
        }
    }

    /// <summary>
    /// After a daemon start: a container the pod's monitor still has but the store has no row for was removed by a
    /// daemon killed before the monitor released it (RemoveContainer of an exited container releases it in the
    /// background): it is released now, its cgroup, state and exit record going with it. The pause container is the
    /// pod's, never a container's.
    /// </summary>
    private async Task ReleaseOrphansAsync(PodRecord pod, CancellationToken cancellationToken)
    {
        if (await _pods.ClientAsync(pod, cancellationToken).ConfigureAwait(false) is not { } client)
        {
            return;
        }

        var listed = (await client.SendAsync(new MonitorRequest { Op = MonitorProtocol.List }, cancellationToken).ConfigureAwait(false)).Containers!;
        foreach (var orphan in listed.Where(c => c.Id != Pods.PodManager.PauseId && !_creating.ContainsKey(c.Id) && _store.TryGetContainer(c.Id) is null))
        {
            await ReleaseInMonitorAsync(pod.Id, orphan.Id, cancellationToken).ConfigureAwait(false);
            ContainerLog.OrphanReleased(_log, orphan.Id);
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
                    // The rows were read before the monitor's list: a row incomplete then may be a create of this
                    // daemon that finished since (it leaves _creating only once its row is complete), read again.
                    if (_store.TryGetContainer(row.Id) is not { } now)
                    {
                        continue;
                    }

                    current = now;
                    if (!now.Complete)
                    {
                        // The monitor has it: the create got that far, so it is finished rather than undone.
                        if (_store.TryUpdateContainer(row.Id, c => c with { Complete = true, Pid = state.Pid, CgroupPath = state.CgroupPath ?? c.CgroupPath }) is not { } completed)
                        {
                            continue; // removed meanwhile
                        }

                        current = completed;
                        ContainerLog.CreateCompleted(_log, row.Id);
                    }
                }

                Apply(current, state);
            }
            else if (!row.Complete)
            {
                // The rows were read before the monitor's list, and a create of this daemon leaves _creating only
                // after its row is complete: a row that was incomplete then may be a create that finished since.
                // Read again after the _creating check above, only a row still incomplete now is abandoned.
                if (_store.TryGetContainer(row.Id) is { Complete: false } abandoned)
                {
                    CleanUpIncomplete(abandoned);
                }
            }
            else if (row.State == ContainerRecordState.Created && client is not null)
            {
                // Created, not spawned yet: the monitor has it from StartContainer on.
            }
            else if (row.State != ContainerRecordState.Exited && (client is not null || !Pods.PodManager.MonitorAlive(pod)))
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

    /// <summary>Moves the row to Exited unless it is there already. The exit watch, a refresh (ContainerStatus, a stop)
    /// and a lost pod may apply the same exit at once: the row as the store holds it, inside the update's transaction,
    /// decides which one records it, and only that one announces it. A row removed meanwhile (RemoveContainer beside a
    /// StopPodSandbox, whose refresh read the rows before) records nothing.</summary>
    private bool ExitOnce(ContainerRecord row, Func<ContainerRecord, ContainerRecord> exit)
    {
        var recorded = false;
        _store.TryUpdateContainer(row.Id, c =>
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
            // Only from Created: an exit recorded meanwhile is never turned back into Running.
            _store.TryUpdateContainer(row.Id, c => c.State != ContainerRecordState.Created ? c : c with
            {
                State = ContainerRecordState.Running, StartedAt = UnixTime.Nanoseconds(state.StartedAt ?? DateTimeOffset.UtcNow), Pid = state.Pid,
                CgroupPath = state.CgroupPath ?? c.CgroupPath,
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
                        _liveWatches[podId] = 0;
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
            finally
            {
                // Disconnected (or stopping): statuses ask the monitor again until the watch is back and caught up.
                _liveWatches.TryRemove(podId, out _);
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
}
