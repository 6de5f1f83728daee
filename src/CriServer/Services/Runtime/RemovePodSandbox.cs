using Grpc.Core;
using Nacelle.Common;
using Nacelle.Sandbox.Containers;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>Removes a pod (stopping it first) with its containers and their writable layers; idempotent, and an
    /// unknown id succeeds (CRI).</summary>
    public override async Task<RemovePodSandboxResponse> RemovePodSandbox(RemovePodSandboxRequest request, ServerCallContext context)
    {
        if (pods.Find(request.PodSandboxId) is not { } found)
        {
            return new RemovePodSandboxResponse();
        }

        // One Stop or Remove of a pod at a time; one that waited finds the pod gone and succeeds (CRI: idempotent).
        await using (await pods.ExclusiveAsync(found.Id, context.CancellationToken).ConfigureAwait(false))
        {
            if (pods.Find(found.Id) is { } pod)
            {
                await containers.StopPodContainersAsync(pod.Id, context.CancellationToken).ConfigureAwait(false);
                await containers.RemovePodContainersAsync(pod.Id, context.CancellationToken).ConfigureAwait(false);
                await pods.RemoveAsync(pod.Id, context.CancellationToken).ConfigureAwait(false);
                containers.Events.Publish(new ContainerEvent(pod.Id, pod.Id, ContainerEventKind.Deleted, UnixTime.Now()));
            }
        }

        return new RemovePodSandboxResponse();
    }
}
