using Nacelle.Common.PodMonitor;

namespace Nacelle.Monitor.Operations;

internal sealed partial class MonitorOperations
{
    /// <summary>shutdown: every container of the pod is deleted, then the monitor stops serving (after answering).</summary>
    private async Task<MonitorResponse> ShutdownAsync(MonitorResponse ok)
    {
        foreach (var state in runtime.List())
        {
            await DeleteContainerAsync(state.Id, force: true).ConfigureAwait(false);
        }

        stop.Cancel(); // not CancelAsync: its callbacks would run on the thread pool, off the loop
        return ok;
    }
}
