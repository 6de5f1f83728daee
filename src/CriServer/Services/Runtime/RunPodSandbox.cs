using Grpc.Core;
using Nacelle.Common;
using Nacelle.Sandbox.Containers;
using Nacelle.CriServer.Services.Pods;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>Creates and starts a pod sandbox (monitor, pause-init, namespaces, network); on failure nothing remains.</summary>
    public override async Task<RunPodSandboxResponse> RunPodSandbox(RunPodSandboxRequest request, ServerCallContext context)
    {
        var id = await pods.RunAsync(PodSandboxMapping.ToRequest(request), context.CancellationToken).ConfigureAwait(false);
        containers.Events.Publish(new ContainerEvent(id, id, ContainerEventKind.Created, UnixTime.Now()));
        containers.Events.Publish(new ContainerEvent(id, id, ContainerEventKind.Started, UnixTime.Now()));
        return new RunPodSandboxResponse { PodSandboxId = id };
    }
}
