using Nacelle.Common.PodMonitor;

namespace Nacelle.Monitor.Operations;

internal sealed partial class MonitorOperations
{
    /// <summary>reopen-log: the container's log file is opened again by path (kubelet rotated it).</summary>
    private MonitorResponse ReopenLog(MonitorRequest request, MonitorResponse ok)
    {
        containers.Get(Id(request)).Log?.Reopen();
        return ok;
    }
}
