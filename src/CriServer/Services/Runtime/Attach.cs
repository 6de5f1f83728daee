using Grpc.Core;
using Nacelle.CriServer.Services.Containers;
using Nacelle.CriServer.Streaming;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>Checks the request (at least one stream, no stderr with a tty, a running container that has the stdin
    /// and terminal asked for, whose pod monitor can hand its stdio over) and answers the single-use URL of the streaming
    /// server where the client attaches.</summary>
    public override async Task<AttachResponse> Attach(AttachRequest request, ServerCallContext context)
    {
        streams.EnsureEnabled("Attach");
        var pending = StreamRequests.Attach(request, ContainerMapping.StreamTarget(containers.Get(request.ContainerId)));
        await containers.EnsureStreamsAsync(pending.PodId, "Attach", context.CancellationToken).ConfigureAwait(false);
        return new AttachResponse { Url = streams.Register(pending) };
    }
}
