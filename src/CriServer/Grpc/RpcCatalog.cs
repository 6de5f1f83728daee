using Runtime.V1;

namespace Nacelle.CriServer.Grpc;

/// <summary>Every CRI rpc, and which of them kubelet polls (logged at Debug) versus mutating calls (logged at Information).</summary>
internal static class RpcCatalog
{
    /// <summary>Short rpc names ("Version", "PullImage", ...) of both services, from the compiled protocol.</summary>
    public static readonly IReadOnlyList<string> All =
        RuntimeService.Descriptor.Methods.Select(m => m.Name)
            .Concat(Runtime.V1.ImageService.Descriptor.Methods.Select(m => m.Name))
            .ToArray();

    // Calls kubelet makes every few seconds to observe state (ExecSync included: it is how exec probes run).
    private static readonly HashSet<string> Polled = new(StringComparer.Ordinal)
    {
        "Version", "Status", "RuntimeConfig",
        "ListPodSandbox", "StreamPodSandboxes", "PodSandboxStatus",
        "ListContainers", "StreamContainers", "ContainerStatus",
        "ContainerStats", "ListContainerStats", "StreamContainerStats",
        "PodSandboxStats", "ListPodSandboxStats", "StreamPodSandboxStats",
        "ListMetricDescriptors", "ListPodSandboxMetrics", "StreamPodSandboxMetrics",
        "GetContainerEvents", "ExecSync",
        "ListImages", "StreamImages", "ImageStatus", "ImageFsInfo",
    };

    public static bool IsPolled(string rpc) => Polled.Contains(rpc);

    /// <summary>"/runtime.v1.RuntimeService/Version" -> "Version".</summary>
    public static string ShortName(string method)
    {
        var slash = method.LastIndexOf('/');
        return slash >= 0 ? method[(slash + 1)..] : method;
    }

    /// <summary>"/runtime.v1.RuntimeService/Version" -> "runtime.v1.RuntimeService/Version" (the OpenTelemetry span name).</summary>
    public static string FullName(string method) => method.TrimStart('/');
}
