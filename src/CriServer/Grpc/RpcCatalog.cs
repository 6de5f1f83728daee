using System.Collections.Frozen;
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

    // Every rpc's names by its gRPC method path, made once: a call looks its names up instead of cutting new strings.
    private static readonly FrozenDictionary<string, RpcNames> ByMethod =
        RuntimeService.Descriptor.Methods.Concat(Runtime.V1.ImageService.Descriptor.Methods)
            .Select(m => Describe($"/{m.Service.FullName}/{m.Name}"))
            .ToFrozenDictionary(n => n.Method, StringComparer.Ordinal);

    public static bool IsPolled(string rpc) => Polled.Contains(rpc);

    /// <summary>The names of the rpc at gRPC method path <paramref name="method"/> (one of ours: kept; any other: made).</summary>
    public static RpcNames Names(string method) => ByMethod.TryGetValue(method, out var names) ? names : Describe(method);

    /// <summary>"/runtime.v1.RuntimeService/Version" -> "Version".</summary>
    public static string ShortName(string method)
    {
        var slash = method.LastIndexOf('/');
        return slash >= 0 ? method[(slash + 1)..] : method;
    }

    /// <summary>"/runtime.v1.RuntimeService/Version" -> "runtime.v1.RuntimeService/Version" (the OpenTelemetry span name).</summary>
    public static string FullName(string method) => method.TrimStart('/');

    private static RpcNames Describe(string method)
    {
        var shortName = ShortName(method);
        return new RpcNames(method, shortName, FullName(method), IsPolled(shortName));
    }
}

/// <summary>An rpc's names: its gRPC method path, its short name (metrics, logs), its full name (span) and whether
/// kubelet polls it (logged at Debug).</summary>
internal sealed record RpcNames(string Method, string Short, string Full, bool Polled);
