using Grpc.Core;
using Nacelle.Common;
using Nacelle.Sandbox.Containers;
using Nacelle.Sandbox.Store;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>Stops a pod: its containers get their stop signal then SIGKILL, its network is torn down; idempotent,
    /// and an unknown id succeeds (CRI).</summary>
    public override async Task<StopPodSandboxResponse> StopPodSandbox(StopPodSandboxRequest request, ServerCallContext context)
    {
        if (pods.Find(request.PodSandboxId) is not { } found)
        {
            return new StopPodSandboxResponse();
        }

        // One Stop or Remove of a pod at a time (see RemovePodSandbox).
        await using (await pods.ExclusiveAsync(found.Id, context.CancellationToken).ConfigureAwait(false))
        {
            if (pods.Find(found.Id) is { } pod)
            {
                await containers.StopPodContainersAsync(pod.Id, context.CancellationToken).ConfigureAwait(false);
                await pods.StopAsync(pod.Id, context.CancellationToken).ConfigureAwait(false);
                if (pod.State == PodState.Ready)
                {
                    containers.Events.Publish(new ContainerEvent(pod.Id, pod.Id, ContainerEventKind.Stopped, UnixTime.Now()));
                }
            }
        }

        return new StopPodSandboxResponse();
    }
}
