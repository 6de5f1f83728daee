using Nacelle.Common.PodMonitor;

namespace Nacelle.Monitor.Operations;

internal sealed partial class MonitorOperations
{
    /// <summary>state: one container as the monitor knows it.</summary>
    private MonitorResponse State(MonitorRequest request, MonitorResponse ok) => ok with { Container = containers.Describe(Id(request)) };
}
