using Nacelle.Common.PodMonitor;

namespace Nacelle.Monitor.Operations;

internal sealed partial class MonitorOperations
{
    /// <summary>watch: the server turns the connection into an event stream (marked by Event, cleared before it
    /// answers; see Server/Watchers).</summary>
    private static MonitorResponse Watch(MonitorResponse ok) => ok with { Event = MonitorProtocol.Watch };
}
