using Grpc.Core;
using Nacelle.CriServer.Services.Containers;
using Nacelle.Sandbox.Store;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>A container's cpu, memory, swap (its cgroup) and writable layer usage.</summary>
    public override Task<ContainerStatsResponse> ContainerStats(ContainerStatsRequest request, ServerCallContext context)
    {
        var container = containers.Get(request.ContainerId);
        return Task.FromResult(new ContainerStatsResponse { Stats = Stats(container) });
    }

    /// <summary>Stats of the running containers matching the filter (kubelet asks for them all).</summary>
    public override Task<ListContainerStatsResponse> ListContainerStats(ListContainerStatsRequest request, ServerCallContext context)
    {
        var response = new ListContainerStatsResponse();
        response.Stats.Add(StatsCollection.Collect(StatsTargets(request.Filter), Stats));
        return Task.FromResult(response);
    }

    /// <summary>The same stats as ListContainerStats, streamed one container per message.</summary>
    public override async Task StreamContainerStats(StreamContainerStatsRequest request, IServerStreamWriter<StreamContainerStatsResponse> responseStream,
        ServerCallContext context)
    {
        foreach (var container in StatsTargets(request.Filter))
        {
            var message = new StreamContainerStatsResponse();
            message.ContainerStats.Add(Stats(container));
            await responseStream.WriteAsync(message, context.CancellationToken).ConfigureAwait(false);
        }
    }

    private List<ContainerRecord> StatsTargets(ContainerStatsFilter? filter) =>
        [.. containers.List(ContainerMapping.Filter(filter)).Where(c => c.State == ContainerRecordState.Running)];

    private Runtime.V1.ContainerStats Stats(ContainerRecord container) =>
        ContainerMapping.ToStats(container, containers.Usage(container), images.ContainersDirectory);
}
