using Nacelle.Common.PodMonitor;

namespace Nacelle.Monitor.Operations;

internal sealed partial class MonitorOperations
{
    /// <summary>list: every container of the pod.</summary>
    private MonitorResponse List(MonitorResponse ok) => ok with { Containers = [.. runtime.List().Select(s => containers.Describe(s.Id))] };
}
