using Grpc.Core;
using Nacelle.CriServer.Hosting;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>The kubelet runtime API version this answers with (the value every CRI runtime reports).</summary>
    internal const string KubeletApiVersion = "0.1.0";

    public override Task<VersionResponse> Version(VersionRequest request, ServerCallContext context) =>
        Task.FromResult(new VersionResponse
        {
            Version = KubeletApiVersion,
            RuntimeName = "nacelle",
            RuntimeVersion = DaemonInfo.Version,
            RuntimeApiVersion = "v1",
        });
}
