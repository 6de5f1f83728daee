using Google.Protobuf.Collections;
using Nacelle.Common;
using Runtime.V1;

namespace Nacelle.CriServer.Grpc;

/// <summary>
/// Bounds every CRI request is held to before its rpc runs, so that an oversized request (a megabyte id, ten thousand
/// annotations) is refused at once, naming the field, instead of being resolved, stored, logged or kept in memory. The
/// bounds are far above what kubelet sends for any pod the API server accepts; the rpcs' own validation still applies.
/// </summary>
internal static class RequestLimits
{
    /// <summary>A pod or container id: 64 hex digits (a prefix is shorter).</summary>
    public const int MaxIdLength = 64;

    /// <summary>An image reference: a 255-byte name (the distribution spec's limit), a 128-byte tag and a digest fit.</summary>
    public const int MaxImageLength = 1024;

    /// <summary>A metadata name, namespace or uid: Kubernetes names are at most 253 bytes.</summary>
    public const int MaxNameLength = 253;

    /// <summary>Labels or annotations of one pod or container, keys and values together: the API server's limit on a
    /// pod's annotations (256 KiB), which no valid pod object exceeds.</summary>
    public const int MaxMapBytes = 256 * 1024;

    /// <summary>Throws <see cref="ErrorKind.InvalidArgument"/> naming the first field over its bound.</summary>
    public static void Check(object? request)
    {
        switch (request)
        {
            case RunPodSandboxRequest r:
                Pod(r.Config, "config");
                break;
            case CreateContainerRequest r:
                Id(r.PodSandboxId, "pod_sandbox_id");
                Container(r.Config, "config");
                Pod(r.SandboxConfig, "sandbox_config");
                break;
            case PullImageRequest r:
                Image(r.Image, "image");
                Pod(r.SandboxConfig, "sandbox_config");
                break;
            case ImageStatusRequest r:
                Image(r.Image, "image");
                break;
            case RemoveImageRequest r:
                Image(r.Image, "image");
                break;
            case ListContainersRequest r when r.Filter is { } filter:
                Id(filter.Id, "filter.id");
                Id(filter.PodSandboxId, "filter.pod_sandbox_id");
                Map(filter.LabelSelector, "filter.label_selector");
                break;
            case ListPodSandboxRequest r when r.Filter is { } filter:
                Id(filter.Id, "filter.id");
                Map(filter.LabelSelector, "filter.label_selector");
                break;
            case ListContainerStatsRequest r when r.Filter is { } filter:
                Id(filter.Id, "filter.id");
                Id(filter.PodSandboxId, "filter.pod_sandbox_id");
                Map(filter.LabelSelector, "filter.label_selector");
                break;
            case ListPodSandboxStatsRequest r when r.Filter is { } filter:
                Id(filter.Id, "filter.id");
                Map(filter.LabelSelector, "filter.label_selector");
                break;
            default:
                // Every other request names at most one pod and one container: RequestIds knows where.
                var ids = RequestIds.Of(request, clip: false);
                Id(ids.PodSandboxId, "pod_sandbox_id");
                Id(ids.ContainerId, "container_id");
                break;
        }
    }

    private static void Pod(PodSandboxConfig? config, string field)
    {
        if (config is null)
        {
            return;
        }

        Name(config.Metadata?.Name, field + ".metadata.name");
        Name(config.Metadata?.Namespace, field + ".metadata.namespace");
        Name(config.Metadata?.Uid, field + ".metadata.uid");
        Map(config.Labels, field + ".labels");
        Map(config.Annotations, field + ".annotations");
    }

    private static void Container(ContainerConfig? config, string field)
    {
        if (config is null)
        {
            return;
        }

        Name(config.Metadata?.Name, field + ".metadata.name");
        Image(config.Image, field + ".image");
        Map(config.Labels, field + ".labels");
        Map(config.Annotations, field + ".annotations");
    }

    private static void Image(ImageSpec? image, string field)
    {
        if (image is not null && image.Image.Length > MaxImageLength)
        {
            throw Refuse(field + ".image", image.Image.Length, MaxImageLength, "an image reference");
        }

        if (image is not null)
        {
            Map(image.Annotations, field + ".annotations");
        }
    }

    private static void Id(string? id, string field)
    {
        if (id is { Length: > MaxIdLength })
        {
            throw Refuse(field, id.Length, MaxIdLength, "an id");
        }
    }

    private static void Name(string? name, string field)
    {
        if (name is { Length: > MaxNameLength })
        {
            throw Refuse(field, name.Length, MaxNameLength, "a Kubernetes name");
        }
    }

    private static void Map(MapField<string, string> map, string field)
    {
        long bytes = 0;
        foreach (var (key, value) in map)
        {
            bytes += key.Length + value.Length;
            if (bytes > MaxMapBytes)
            {
                throw NacelleException.InvalidArgument(
                    $"{field}: {map.Count} entries of more than {MaxMapBytes / 1024} KiB (keys and values); at most {MaxMapBytes / 1024} KiB are accepted");
            }
        }
    }

    private static NacelleException Refuse(string field, int length, int limit, string what) =>
        NacelleException.InvalidArgument($"{field} is {length} characters long; {what} is at most {limit}");
}
