using Grpc.Core;
using Nacelle.CriServer.Streaming;
using Nacelle.Sandbox.Store;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>Checks the request (a ready pod, ports from 1 to 65535) and answers the single-use URL of the streaming
    /// server through which the client forwards connections to the pod's ports (only those named, when it names any).</summary>
    public override Task<PortForwardResponse> PortForward(PortForwardRequest request, ServerCallContext context)
    {
        streams.EnsureEnabled("PortForward");
        var pod = pods.Get(request.PodSandboxId);
        var pending = StreamRequests.PortForward(request, new StreamPod(pod.Id, pod.State == PodState.Ready));
        return Task.FromResult(new PortForwardResponse { Url = streams.Register(pending) });
    }
}
