using Nacelle.Common.PodMonitor;
using Nacelle.Monitor.Server;

namespace Nacelle.Monitor.Operations;

internal sealed partial class MonitorOperations
{
    /// <summary>watch: the connection becomes an event stream (see Server/Watchers).</summary>
    private Answer Watch(MonitorResponse ok) => new(ok, new WatchSession(watchers));

    private sealed class WatchSession(Watchers watchers) : IConnectionSession
    {
        public Task RunAsync(Connection connection, MonitorResponse answer, CancellationToken cancellationToken) =>
            watchers.ServeAsync(connection, answer, cancellationToken);
    }
}
