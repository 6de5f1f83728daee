using System.Collections.Frozen;
using Grpc.Core;
using Runtime.V1;

namespace Nacelle.CriServer.Grpc;

/// <summary>Every CRI rpc, and which of them kubelet polls (logged at Debug) versus mutating calls (logged at Information).</summary>
internal static class RpcCatalog
{
    // Both services' gRPC method paths ("/runtime.v1.RuntimeService/Version", ...), from the generated method table read
    // through its binder. Not from the services' reflection descriptors: building those parses the whole CRI schema into
    // about 1 MB of objects the daemon would then keep for its life.
    private static readonly string[] Methods = MethodPaths();

    /// <summary>Short rpc names ("Version", "PullImage", ...) of both services, from the compiled protocol.</summary>
    public static readonly IReadOnlyList<string> All = Methods.Select(ShortName).ToArray();

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
        Methods.Select(Describe).ToFrozenDictionary(n => n.Method, StringComparer.Ordinal);

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

    private static string[] MethodPaths()
    {
        var binder = new MethodPathBinder();
        RuntimeService.BindService(binder, null);
        Runtime.V1.ImageService.BindService(binder, null);
        return [.. binder.Paths];
    }

    /// <summary>Binds nothing: notes the path of each method the generated code offers.</summary>
    private sealed class MethodPathBinder : ServiceBinderBase
    {
        public List<string> Paths { get; } = [];

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler) =>
            Paths.Add(method.FullName);

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingServerMethod<TRequest, TResponse>? handler) =>
            Paths.Add(method.FullName);

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse>? handler) =>
            Paths.Add(method.FullName);

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingServerMethod<TRequest, TResponse>? handler) =>
            Paths.Add(method.FullName);
    }
}

/// <summary>An rpc's names: its gRPC method path, its short name (metrics, logs), its full name (span) and whether
/// kubelet polls it (logged at Debug).</summary>
internal sealed record RpcNames(string Method, string Short, string Full, bool Polled);
