using Grpc.Core;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>Removes a pod (stopping it first); idempotent, and an unknown id succeeds (CRI).</summary>
    public override async Task<RemovePodSandboxResponse> RemovePodSandbox(RemovePodSandboxRequest request, ServerCallContext context)
    {
        await pods.RemoveAsync(request.PodSandboxId, context.CancellationToken).ConfigureAwait(false);
        return new RemovePodSandboxResponse();
    }
}
