using Grpc.Core;
using Nacelle.CriServer.Services.Containers;
using Nacelle.CriServer.Streaming;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>Checks the request (a command, at least one stream, no stderr with a tty, a running container whose pod
    /// monitor can hand its stdio over) and answers the single-use URL of the streaming server where the client runs it.</summary>
    public override async Task<ExecResponse> Exec(ExecRequest request, ServerCallContext context)
    {
        streams.EnsureEnabled("Exec");
        var pending = StreamRequests.Exec(request, ContainerMapping.StreamTarget(containers.Get(request.ContainerId)));
        await containers.EnsureStreamsAsync(pending.PodId, "Exec", context.CancellationToken).ConfigureAwait(false);
        return new ExecResponse { Url = streams.Register(pending) };
    }
}
