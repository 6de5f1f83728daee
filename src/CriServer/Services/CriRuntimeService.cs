using Nacelle.CriServer.Hosting;
using Nacelle.CriServer.Streaming;
using Nacelle.ImageService;
using Nacelle.Sandbox.Containers;
using Nacelle.Sandbox.Network;
using Nacelle.Sandbox.Pods;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

/// <summary>
/// The CRI RuntimeService. One file per rpc under Services/Runtime/ (this class is partial); rpcs not overridden
/// answer Unimplemented, and the interceptor names the rpc in that answer.
/// </summary>
internal sealed partial class CriRuntimeService(DaemonInfo daemon, RuntimeReadiness readiness, CniNetwork network, PodManager pods,
    ContainerManager containers, ImageManager images, StreamingServer streams)
    : RuntimeService.RuntimeServiceBase
{
}
