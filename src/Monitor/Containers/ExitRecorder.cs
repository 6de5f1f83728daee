using Microsoft.Extensions.Logging;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Reactor;
using Nacelle.ContainerCore.Runtime;
using Nacelle.Monitor.Exits;
using Nacelle.Monitor.Reaping;
using Nacelle.Monitor.Server;

namespace Nacelle.Monitor.Containers;

/// <summary>
/// The child watch: waits for each container's init to exit (ContainerCore reaps it through its pidfd), writes the
/// exit record, and only then announces the exit to the watchers.
/// </summary>
internal sealed class ExitRecorder(
    ContainerRuntime runtime, ExitRecordStore exits, PodContainers containers, Watchers watchers, OrphanReaper? reaper, ILogger log)
{
    /// <summary>Watches <paramref name="id"/> until it exits; the task ends once the exit is recorded and announced.</summary>
    public async Task RecordExitAsync(string id, TrackedContainer tracked)
    {
        try
        {
            var state = await runtime.WaitAsync(id).ConfigureAwait(false);
            exits.Save(new ExitRecord
            {
                Id = id,
                Pid = state.Pid,
                ExitCode = state.ExitCode ?? -1,
                Signal = state.ExitSignal,
                OomKilled = state.OomKilled,
                StartedAt = state.StartedAt ?? state.CreatedAt,
                ExitedAt = state.FinishedAt ?? DateTimeOffset.UtcNow,
            });
            tracked.ExitRecorded = true;
            reaper?.Kick();
            try
            {
                // Only now, with the record on disk, is the exit announced.
                watchers.Broadcast(new MonitorResponse { Id = 0, Ok = true, Event = MonitorProtocol.EventExited, Container = containers.Describe(id) });
            }
            catch (NacelleException e)
            {
                MonitorLog.ExitEventFailed(log, id, e.Message);
            }
        }
        finally
        {
            // Attach sessions end with the recorded state (from the loop's queue, not inside this call).
            FdReactor.Loop.Post(() => tracked.ExitAnnounced.TrySetResult());
        }
    }
}
