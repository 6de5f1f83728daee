using Grpc.Core;
using Nacelle.CriServer.Services.Pods;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>A pod's cpu, memory and process count (its cgroup) and network counters (its network namespace).</summary>
    public override Task<PodSandboxStatsResponse> PodSandboxStats(PodSandboxStatsRequest request, ServerCallContext context)
    {
        var pod = pods.Get(request.PodSandboxId);
        return Task.FromResult(new PodSandboxStatsResponse { Stats = PodStatsMapping.ToStats(pod, pods.Usage(pod)) });
    }
}
