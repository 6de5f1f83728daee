using Nacelle.Common.PodMonitor;

namespace Nacelle.Monitor.Operations;

internal sealed partial class MonitorOperations
{
    /// <summary>start: releases the parked container into its program. The reaper looks again whether orphans can now
    /// appear without notice (a container in the monitor's own pid namespace), and polls while they can.</summary>
    private async Task<MonitorResponse> StartAsync(MonitorRequest request, MonitorResponse ok)
    {
        await runtime.StartAsync(Id(request)).ConfigureAwait(false);
        reaper?.Kick();
        return ok with { Container = containers.Describe(Id(request)) };
    }
}
