using Google.Protobuf;
using Grpc.Core;
using Nacelle.Common;
using Nacelle.CriServer.Services.Containers;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>Applies new linux resources to a container's cgroup; ContainerStatus reports them afterwards.</summary>
    public override async Task<UpdateContainerResourcesResponse> UpdateContainerResources(UpdateContainerResourcesRequest request, ServerCallContext context)
    {
        var linux = request.Linux ?? throw NacelleException.InvalidArgument("linux resources are required (Windows resources are not supported)");
        await containers.UpdateResourcesAsync(request.ContainerId, ContainerRequestMapping.ToResources(linux), context.CancellationToken).ConfigureAwait(false);
        var container = containers.Get(request.ContainerId);
        containers.Store.UpdateContainer(container.Id, c =>
        {
            var config = ContainerMapping.Config(c);
            config.Linux ??= new LinuxContainerConfig();
            config.Linux.Resources = linux;
            return c with { Config = config.ToByteArray(), LegacyConfigJson = "" };
        });
        return new UpdateContainerResourcesResponse();
    }

    /// <summary>Asks the pod's monitor to reopen the container's log file (after kubelet rotated it).</summary>
    public override async Task<ReopenContainerLogResponse> ReopenContainerLog(ReopenContainerLogRequest request, ServerCallContext context)
    {
        await containers.ReopenLogAsync(request.ContainerId, context.CancellationToken).ConfigureAwait(false);
        return new ReopenContainerLogResponse();
    }
}
