using Grpc.Core;
using Nacelle.CriServer.Services.Pods;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>Stats of the ready pods matching the filter (id prefix, label selector).</summary>
    public override Task<ListPodSandboxStatsResponse> ListPodSandboxStats(ListPodSandboxStatsRequest request, ServerCallContext context)
    {
        var response = new ListPodSandboxStatsResponse();
        response.Stats.Add(PodStats(request.Filter));
        return Task.FromResult(response);
    }

    /// <summary>The same stats as ListPodSandboxStats, streamed one pod per message.</summary>
    public override async Task StreamPodSandboxStats(StreamPodSandboxStatsRequest request, IServerStreamWriter<StreamPodSandboxStatsResponse> responseStream,
        ServerCallContext context)
    {
        foreach (var stats in PodStats(request.Filter))
        {
            var message = new StreamPodSandboxStatsResponse();
            message.PodSandboxStats.Add(stats);
            await responseStream.WriteAsync(message, context.CancellationToken).ConfigureAwait(false);
        }
    }

    private Runtime.V1.PodSandboxStats[] PodStats(PodSandboxStatsFilter? statsFilter)
    {
        var filter = statsFilter is { } f ? new PodSandboxFilter { Id = f.Id, LabelSelector = { f.LabelSelector } } : null;
        var ready = pods.List().Where(p => p.State == Nacelle.Sandbox.Store.PodState.Ready && PodSandboxMapping.Matches(p, filter)).ToList();
        return StatsCollection.Collect(ready, p => PodStatsMapping.ToStats(p, pods.Usage(p)));
    }
}
