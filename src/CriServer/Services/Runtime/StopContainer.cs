using Grpc.Core;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>Sends the container's stop signal, then SIGKILL after the timeout (seconds; 0: at once). Idempotent.</summary>
    public override async Task<StopContainerResponse> StopContainer(StopContainerRequest request, ServerCallContext context)
    {
        await containers.StopAsync(request.ContainerId, CriTimeouts.FromSeconds(request.Timeout), context.CancellationToken).ConfigureAwait(false);
        return new StopContainerResponse();
    }
}
