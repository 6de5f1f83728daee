using Nacelle.Common;
using Nacelle.Common.PodMonitor;

namespace Nacelle.Monitor.Operations;

internal sealed partial class MonitorOperations
{
    /// <summary>hello: version negotiation. The daemon names the newest version it speaks; the answer is the newest both
    /// speak (the request's, or this monitor's own when the daemon is newer), with the pod and the monitor's pid. A
    /// daemon older than this monitor's oldest version is refused.</summary>
    private MonitorResponse Hello(MonitorRequest request, MonitorResponse ok)
    {
        var asked = request.Version ?? MonitorProtocol.MinVersion;
        if (asked < MonitorProtocol.MinVersion)
        {
            throw NacelleException.FailedPrecondition(
                $"monitor speaks protocol versions {MonitorProtocol.MinVersion} to {MonitorProtocol.Version}, not {asked}");
        }

        return ok with { Version = Math.Min(asked, MonitorProtocol.Version), PodId = options.PodId, MonitorPid = Environment.ProcessId };
    }
}
