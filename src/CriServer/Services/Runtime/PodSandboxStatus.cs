using Grpc.Core;
using Nacelle.CriServer.Services.Pods;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>A pod's status; verbose adds info["info"] with the pause-init and monitor pids, the protocol version
    /// spoken with the monitor (1 for a monitor an older nacelle started) and the netns path.</summary>
    public override async Task<PodSandboxStatusResponse> PodSandboxStatus(PodSandboxStatusRequest request, ServerCallContext context)
    {
        var pod = pods.Get(request.PodSandboxId);
        var response = new PodSandboxStatusResponse { Status = PodSandboxMapping.ToStatus(pod), Timestamp = Common.UnixTime.Now() };
        // For kubelet's evented PLEG: the pod's containers as ContainerStatus shows them.
        response.ContainersStatuses.Add(containers.OfPod(pod.Id)
            .Select(c => Containers.ContainerMapping.ToStatus(c, containers.SpecJson)));
        if (request.Verbose)
        {
            var monitor = pod.State == Nacelle.Sandbox.Store.PodState.Ready ? await pods.ClientAsync(pod, context.CancellationToken).ConfigureAwait(false) : null;
            response.Info["info"] = JsonText.Write(json =>
            {
                json.WriteStartObject();
                json.WriteNumber("pid", pod.PauseInitPid ?? 0);
                json.WriteNumber("pauseInitPid", pod.PauseInitPid ?? 0);
                json.WriteNumber("monitorPid", pod.MonitorPid ?? 0);
                json.WriteNumber("monitorProtocol", monitor?.ProtocolVersion ?? 0);
                json.WriteString("netnsPath", pod.NetnsPath);
                json.WriteString("runtimeHandler", pod.RuntimeHandler);
                json.WriteString("cgroupParent", pod.CgroupParent);
                json.WriteString("podDirectory", pods.PodDirectory(pod.Id));
                json.WriteEndObject();
            });
        }

        return response;
    }
}
