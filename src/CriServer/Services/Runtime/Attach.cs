using Grpc.Core;
using Nacelle.CriServer.Services.Containers;
using Nacelle.CriServer.Streaming;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>Checks the request (at least one stream, no stderr with a tty, a running container that has the stdin
    /// and terminal asked for) and answers the single-use URL of the streaming server where the client attaches.</summary>
    public override Task<AttachResponse> Attach(AttachRequest request, ServerCallContext context)
    {
        streams.EnsureEnabled("Attach");
        var pending = StreamRequests.Attach(request, ContainerMapping.StreamTarget(containers.Get(request.ContainerId)));
        return Task.FromResult(new AttachResponse { Url = streams.Register(pending) });
    }
}
