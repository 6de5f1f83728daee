using Grpc.Core;
using Nacelle.Common;
using Nacelle.CriServer.Services.Containers;
using Nacelle.CriServer.Services.Pods;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>Creates a container in a ready pod: the CRI request, mapped once into the domain's request, goes down to
    /// the container manager, which prepares the rootfs, builds and checks the spec and records the container created;
    /// StartContainer has the pod's monitor spawn it.</summary>
    public override async Task<CreateContainerResponse> CreateContainer(CreateContainerRequest request, ServerCallContext context)
    {
        var config = request.Config ?? throw NacelleException.InvalidArgument("CreateContainer: config is required");
        if (string.IsNullOrEmpty(config.Metadata?.Name))
        {
            throw NacelleException.InvalidArgument("config.metadata.name is required");
        }

        if (string.IsNullOrEmpty(config.Image?.Image))
        {
            throw NacelleException.InvalidArgument("config.image.image is required");
        }

        var pod = pods.Get(request.PodSandboxId);
        var sandboxConfig = request.SandboxConfig ?? PodSandboxMapping.Config(pod);
        var id = await containers.CreateAsync(ContainerRequestMapping.ToCreateRequest(pod.Id, config, sandboxConfig), context.CancellationToken)
            .ConfigureAwait(false);
        if (containers.Find(id) is { } created)
        {
            ContainerStatusParts.Seed(created, config, containers.SpecJson);
        }

        return new CreateContainerResponse { ContainerId = id };
    }
}
