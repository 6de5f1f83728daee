using Grpc.Core;
using Runtime.V1;

namespace Nacelle.CriServer.Grpc;

/// <summary>Every CRI rpc, and which of them kubelet polls (logged at Debug) versus mutating calls (logged at Information).</summary>
internal static class RpcCatalog
{
    /// <summary>Short rpc names ("Version", "PullImage", ...) of both services, from the compiled protocol: the generated
    /// code's method table, read through its binder. Not from the services' reflection descriptors: building those parses
    /// the whole CRI schema into about 1 MB of objects the daemon would then keep for its life.</summary>
    public static readonly IReadOnlyList<string> All = MethodNames();

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

    private static string[] MethodNames()
    {
        var names = new MethodNameBinder();
        RuntimeService.BindService(names, null);
        Runtime.V1.ImageService.BindService(names, null);
        return names.Names.ToArray();
    }

    /// <summary>Binds nothing: notes the name of each method the generated code offers.</summary>
    private sealed class MethodNameBinder : ServiceBinderBase
    {
        public List<string> Names { get; } = [];

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler) =>
            Names.Add(method.Name);

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingServerMethod<TRequest, TResponse>? handler) =>
            Names.Add(method.Name);

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse>? handler) =>
            Names.Add(method.Name);

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingServerMethod<TRequest, TResponse>? handler) =>
            Names.Add(method.Name);
    }
}
