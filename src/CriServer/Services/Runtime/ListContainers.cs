using Grpc.Core;
using Nacelle.CriServer.Services.Containers;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>Containers matching the filter (id prefix as crictl sends it, state, pod id, labels).</summary>
    public override Task<ListContainersResponse> ListContainers(ListContainersRequest request, ServerCallContext context)
    {
        var response = new ListContainersResponse();
        if (ContainerMapping.MatchesNothing(request.Filter))
        {
            return Task.FromResult(response);
        }

        var matching = containers.List(ContainerMapping.Filter(request.Filter));
        response.Containers.Capacity = matching.Count;
        foreach (var container in matching)
        {
            response.Containers.Add(ContainerMapping.ToListItem(container));
        }

        return Task.FromResult(response);
    }

    /// <summary>The same list as ListContainers, streamed one container per message.</summary>
    public override async Task StreamContainers(StreamContainersRequest request, IServerStreamWriter<StreamContainersResponse> responseStream,
        ServerCallContext context)
    {
        IReadOnlyList<Nacelle.Sandbox.Store.ContainerRecord> matching =
            ContainerMapping.MatchesNothing(request.Filter) ? [] : containers.List(ContainerMapping.Filter(request.Filter));
        foreach (var container in matching)
        {
            var message = new StreamContainersResponse();
            message.Containers.Add(ContainerMapping.ToListItem(container));
            await responseStream.WriteAsync(message, context.CancellationToken).ConfigureAwait(false);
        }
    }
}
