using Runtime.V1;

namespace Nacelle.CriServer.Grpc;

/// <summary>The ids a CRI request is about, for structured logs and span attributes.</summary>
internal readonly record struct RequestIds(string? PodSandboxId, string? ContainerId, string? Image)
{
    /// <summary>The longest id, name or image a log line or span carries: a longer one (a hostile request, which
    /// <see cref="RequestLimits"/> refuses) is cut there and marked.</summary>
    public const int MaxLogged = 256;

    /// <summary>The ids <paramref name="request"/> names, each cut to <see cref="MaxLogged"/> unless <paramref name="clip"/> is false.</summary>
    public static RequestIds Of(object? request, bool clip = true)
    {
        var ids = Named(request);
        return clip ? new(Clip(ids.PodSandboxId), Clip(ids.ContainerId), Clip(ids.Image)) : ids;
    }

    private static string? Clip(string? value) =>
        value is { Length: > MaxLogged } ? string.Concat(value.AsSpan(0, MaxLogged), $"...({value.Length} characters)") : value;

    private static RequestIds Named(object? request) => request switch
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
