using Grpc.Core;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>Starts a created container: the pod's monitor spawns it and lets it run. A failure leaves it exited
    /// (StartError, exit code 128) and is the answer.</summary>
    public override async Task<StartContainerResponse> StartContainer(StartContainerRequest request, ServerCallContext context)
    {
        await containers.StartAsync(request.ContainerId, context.CancellationToken).ConfigureAwait(false);
        return new StartContainerResponse();
    }
}
