using Grpc.Core;
using Nacelle.CriServer.Services.Pods;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>Stats of the ready pods matching the filter (id prefix, label selector).</summary>
    public override Task<ListPodSandboxStatsResponse> ListPodSandboxStats(ListPodSandboxStatsRequest request, ServerCallContext context)
    {
        var filter = request.Filter is { } f ? new PodSandboxFilter { Id = f.Id, LabelSelector = { f.LabelSelector } } : null;
        var response = new ListPodSandboxStatsResponse();
        response.Stats.Add(pods.Store.ListPods()
            .Where(p => p.State == Nacelle.Sandbox.Store.PodState.Ready && PodSandboxMapping.Matches(p, filter))
            .Select(p => PodStatsMapping.ToStats(p, pods.Usage(p))));
        return Task.FromResult(response);
    }
}
