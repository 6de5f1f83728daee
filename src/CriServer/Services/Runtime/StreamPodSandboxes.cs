using Grpc.Core;
using Nacelle.CriServer.Services.Pods;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>
    /// The same pods as ListPodSandbox (same filter: id prefix, state, label selector), streamed one pod sandbox per
    /// message. No pods means an empty stream.
    /// </summary>
    public override async Task StreamPodSandboxes(StreamPodSandboxesRequest request, IServerStreamWriter<StreamPodSandboxesResponse> responseStream,
        ServerCallContext context)
    {
        foreach (var pod in pods.List().Where(p => PodSandboxMapping.Matches(p, request.Filter)))
        {
            var message = new StreamPodSandboxesResponse();
            message.PodSandboxes.Add(PodSandboxMapping.ToListItem(pod));
            await responseStream.WriteAsync(message, context.CancellationToken).ConfigureAwait(false);
        }
    }
}
