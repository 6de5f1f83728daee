using Runtime.V1;

namespace Nacelle.CriServer.Grpc;

/// <summary>The ids a CRI request is about, for structured logs and span attributes.</summary>
internal readonly record struct RequestIds(string? PodSandboxId, string? ContainerId, string? Image)
{
    public static RequestIds Of(object? request) => request switch
    {
        // Before the pod has an id, name it namespace/name.
        RunPodSandboxRequest r => new(PodName(r.Config?.Metadata), null, null),
        StopPodSandboxRequest r => new(r.PodSandboxId, null, null),
        RemovePodSandboxRequest r => new(r.PodSandboxId, null, null),
        PodSandboxStatusRequest r => new(r.PodSandboxId, null, null),
        PodSandboxStatsRequest r => new(r.PodSandboxId, null, null),
        UpdatePodSandboxResourcesRequest r => new(r.PodSandboxId, null, null),
        PortForwardRequest r => new(r.PodSandboxId, null, null),
        CreateContainerRequest r => new(r.PodSandboxId, r.Config?.Metadata?.Name, r.Config?.Image?.Image),
        StartContainerRequest r => new(null, r.ContainerId, null),
        StopContainerRequest r => new(null, r.ContainerId, null),
        RemoveContainerRequest r => new(null, r.ContainerId, null),
        ContainerStatusRequest r => new(null, r.ContainerId, null),
        UpdateContainerResourcesRequest r => new(null, r.ContainerId, null),
        ReopenContainerLogRequest r => new(null, r.ContainerId, null),
        ExecSyncRequest r => new(null, r.ContainerId, null),
        ExecRequest r => new(null, r.ContainerId, null),
        AttachRequest r => new(null, r.ContainerId, null),
        ContainerStatsRequest r => new(null, r.ContainerId, null),
        CheckpointContainerRequest r => new(null, r.ContainerId, null),
        PullImageRequest r => new(PodName(r.SandboxConfig?.Metadata), null, r.Image?.Image),
        ImageStatusRequest r => new(null, null, r.Image?.Image),
        RemoveImageRequest r => new(null, null, r.Image?.Image),
        _ => default,
    };

    private static string? PodName(PodSandboxMetadata? metadata) =>
        metadata is null ? null : $"{metadata.Namespace}/{metadata.Name}";
}
