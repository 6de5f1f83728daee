using Nacelle.Common.PodMonitor;

namespace Nacelle.Monitor.Operations;

internal sealed partial class MonitorOperations
{
    /// <summary>start: releases the parked container into its program.</summary>
    private async Task<MonitorResponse> StartAsync(MonitorRequest request, MonitorResponse ok)
    {
        await runtime.StartAsync(Id(request)).ConfigureAwait(false);
        return ok with { Container = containers.Describe(Id(request)) };
    }
}
