using Grpc.Core;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>Stops a pod's processes and tears its network down; idempotent, and an unknown id succeeds (CRI).</summary>
    public override async Task<StopPodSandboxResponse> StopPodSandbox(StopPodSandboxRequest request, ServerCallContext context)
    {
        await pods.StopAsync(request.PodSandboxId, context.CancellationToken).ConfigureAwait(false);
        return new StopPodSandboxResponse();
    }
}
