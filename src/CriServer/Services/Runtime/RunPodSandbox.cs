using Grpc.Core;
using Nacelle.Common;
using Nacelle.Sandbox.Containers;
using Nacelle.CriServer.Services.Pods;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>Creates and starts a pod sandbox (monitor, pause-init, namespaces, network); on failure nothing remains.</summary>
    public override async Task<RunPodSandboxResponse> RunPodSandbox(RunPodSandboxRequest request, ServerCallContext context)
    {
        // kubelet names the pod's parent in its own driver's form: a slice under systemd, a path under cgroupfs.
        var parent = request.Config?.Linux?.CgroupParent ?? "";
        var systemd = daemon.Config.Cgroup.Driver == "systemd";
        if (parent.Length > 0 && Nacelle.ContainerCore.Cgroups.CgroupNames.IsSystemd(parent) != systemd)
        {
            throw NacelleException.InvalidArgument(systemd
                ? $"cgroup_parent \"{parent}\" is a cgroupfs path, but nacelle's cgroup.driver is systemd: kubelet's --cgroup-driver must be systemd too"
                : $"cgroup_parent \"{parent}\" is a systemd slice, but nacelle's cgroup.driver is cgroupfs: kubelet's --cgroup-driver must be cgroupfs too (or set cgroup.driver = \"systemd\")");
        }

        var id = await pods.RunAsync(PodSandboxMapping.ToRequest(request), context.CancellationToken).ConfigureAwait(false);
        containers.Events.Publish(new ContainerEvent(id, id, ContainerEventKind.Created, UnixTime.Now()));
        containers.Events.Publish(new ContainerEvent(id, id, ContainerEventKind.Started, UnixTime.Now()));
        return new RunPodSandboxResponse { PodSandboxId = id };
    }
}
