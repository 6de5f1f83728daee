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
        var all = pods.List();
        response.Items.Capacity = all.Count;
        foreach (var pod in all)
        {
            if (PodSandboxMapping.Matches(pod, request.Filter))
            {
                response.Items.Add(PodSandboxMapping.ToListItem(pod));
            }
        }

        return Task.FromResult(response);
    }
}
