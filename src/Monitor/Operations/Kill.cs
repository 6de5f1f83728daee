using Nacelle.Common.PodMonitor;

namespace Nacelle.Monitor.Operations;

internal sealed partial class MonitorOperations
{
    /// <summary>kill: a signal (default SIGTERM) to the container's init, or to all its processes.</summary>
    private MonitorResponse Kill(MonitorRequest request, MonitorResponse ok)
    {
        runtime.Kill(Id(request), request.Signal ?? 15, request.All);
        return ok;
    }
}
