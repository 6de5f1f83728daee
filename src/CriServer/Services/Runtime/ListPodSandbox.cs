using Grpc.Core;
using Nacelle.CriServer.Services.Pods;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>Pods, filtered by id prefix (as crictl passes it), state and label selector.</summary>
    public override Task<ListPodSandboxResponse> ListPodSandbox(ListPodSandboxRequest request, ServerCallContext context)
    {
        var response = new ListPodSandboxResponse();
        response.Items.Add(pods.List().Where(p => PodSandboxMapping.Matches(p, request.Filter)).Select(PodSandboxMapping.ToListItem));
        return Task.FromResult(response);
    }
}
