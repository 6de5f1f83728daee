using Nacelle.Common;
using Nacelle.Common.PodMonitor;

namespace Nacelle.Monitor.Operations;

internal sealed partial class MonitorOperations
{
    /// <summary>hello: the protocol version check; answers with the pod and the monitor's pid.</summary>
    private MonitorResponse Hello(MonitorRequest request, MonitorResponse ok)
    {
        if (request.Version is { } v && v != MonitorProtocol.Version)
        {
            throw NacelleException.FailedPrecondition($"monitor speaks protocol version {MonitorProtocol.Version}, not {v}");
        }

        return ok with { Version = MonitorProtocol.Version, PodId = options.PodId, MonitorPid = Environment.ProcessId };
    }
}
