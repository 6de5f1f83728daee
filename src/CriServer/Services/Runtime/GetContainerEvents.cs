using Grpc.Core;
using Nacelle.CriServer.Services.Containers;
using Nacelle.CriServer.Services.Pods;
using Nacelle.Sandbox.Containers;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>
    /// Streams container and pod sandbox lifecycle events (created, started, stopped, deleted) from now on, each with
    /// the pod's status and its containers' statuses at that moment. A consumer that falls behind loses the oldest
    /// events; every loss is counted in nacelle_container_events_dropped_total.
    /// </summary>
    public override async Task GetContainerEvents(GetEventsRequest request, IServerStreamWriter<ContainerEventResponse> responseStream,
        ServerCallContext context)
    {
        await foreach (var e in containers.Events.SubscribeAsync(context.CancellationToken).ConfigureAwait(false))
        {
            var message = new ContainerEventResponse
            {
                ContainerId = e.ContainerId,
                ContainerEventType = (ContainerEventType)(int)e.Kind,
                CreatedAt = e.At,
            };
            if (pods.Store.TryGetPod(e.PodId) is { } pod)
            {
                message.PodSandboxStatus = PodSandboxMapping.ToStatus(pod);
                message.ContainersStatuses.Add(containers.OfPod(pod.Id).Select(c => ContainerMapping.ToStatus(c, containers.SpecJson)));
            }

            await responseStream.WriteAsync(message, context.CancellationToken).ConfigureAwait(false);
        }
    }
}
