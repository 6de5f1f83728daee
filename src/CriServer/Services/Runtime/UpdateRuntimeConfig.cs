using Grpc.Core;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>
    /// kubelet hands over the node's pod CIDR(s) ("10.244.1.0/24" or a dual-stack "10.244.1.0/24,fd00:1::/64"): the
    /// built-in default network allocates from them from now on. Empty leaves it unchanged; an invalid CIDR is
    /// InvalidArgument naming it (thrown by the CNI client).
    /// </summary>
    public override Task<UpdateRuntimeConfigResponse> UpdateRuntimeConfig(UpdateRuntimeConfigRequest request, ServerCallContext context)
    {
        var podCidr = request.RuntimeConfig?.NetworkConfig?.PodCidr;
        if (!string.IsNullOrWhiteSpace(podCidr) && podCidr.Trim() != network.PodCidr)
        {
            network.UpdatePodCidr(podCidr.Trim());
        }

        return Task.FromResult(new UpdateRuntimeConfigResponse());
    }
}
