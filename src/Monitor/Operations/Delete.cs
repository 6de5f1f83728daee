using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Reactor;

namespace Nacelle.Monitor.Operations;

internal sealed partial class MonitorOperations
{
    /// <summary>How long a delete waits for a container's output to end after its processes are gone (a process that
    /// escaped the cgroup may hold a pipe).</summary>
    private static readonly TimeSpan PumpGrace = TimeSpan.FromSeconds(5);

    /// <summary>delete: the container goes (killed first when <see cref="MonitorRequest.Force"/>), with its log
    /// writer, pumps, stdin, attachers and exit record.</summary>
    private async Task<MonitorResponse> DeleteAsync(MonitorRequest request, MonitorResponse ok)
    {
        await DeleteContainerAsync(Id(request), request.Force).ConfigureAwait(false);
        return ok;
    }

    private async Task DeleteContainerAsync(string id, bool force)
    {
        var tracked = containers.Get(id);
        await runtime.DeleteAsync(id, force).ConfigureAwait(false);
        try
        {
            await tracked.Watch.ConfigureAwait(false);
        }
        catch (Exception)
        {
            // the exit could not be recorded: the record goes with the container anyway
        }

        try
        {
            await tracked.Pump.WaitAsync(PumpGrace, FdReactor.Time).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // a stuck or failed pump does not keep the container
        }

        tracked.Log?.Dispose();
        tracked.Stdin?.Dispose();
        if (tracked.Pump.IsCompleted)
        {
            tracked.Terminal?.Dispose();
        }

        exits.Delete(id);
        containers.Remove(id);
    }
}
