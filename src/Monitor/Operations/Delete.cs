using Nacelle.Common.PodMonitor;

namespace Nacelle.Monitor.Operations;

internal sealed partial class MonitorOperations
{
    /// <summary>delete: the container goes (killed first when <see cref="MonitorRequest.Force"/>), with its log
    /// writer, pumps and exit record.</summary>
    private async Task<MonitorResponse> DeleteAsync(MonitorRequest request, MonitorResponse ok)
    {
        await DeleteContainerAsync(Id(request), request.Force).ConfigureAwait(false);
        return ok;
    }

    private async Task DeleteContainerAsync(string id, bool force)
    {
        var tracked = containers.Get(id);
        await runtime.DeleteAsync(id, force).ConfigureAwait(false);
        await tracked.Watch.ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
        await tracked.Pump.WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
        tracked.Log?.Dispose();
        if (tracked.Pump.IsCompleted)
        {
            tracked.Terminal?.Dispose();
        }

        exits.Delete(id);
        containers.Remove(id);
    }
}
