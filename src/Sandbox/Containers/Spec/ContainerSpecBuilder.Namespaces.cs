using Nacelle.Common;
using Nacelle.ContainerCore.Spec;
using Nacelle.Sandbox.Store;

namespace Nacelle.Sandbox.Containers.Spec;

/// <summary>The spec's namespaces: which the container joins (the pod's, a target container's) and which it gets of its own.</summary>
public sealed partial class ContainerSpecBuilder
{
    private static List<SpecNamespace> Namespaces(NamespaceOptions options, bool privileged, ContainerSpecContext context)
    {
        var list = new List<SpecNamespace>();
        if (options.UserNamespaceMode is { } usernsMode && usernsMode != PodNamespaceMode.Node)
        {
            if (usernsMode == PodNamespaceMode.Pod)
            {
                throw NacelleException.Unimplemented($"{Ns}.userns_options.mode: user namespaces are not supported");
            }

            throw Invalid($"{Ns}.userns_options.mode", $"{usernsMode} is not POD or NODE");
        }

        switch (options.Pid)
        {
            case PodNamespaceMode.Pod:
                list.Add(Join("pid", context.PidNamespacePath, $"{Ns}.pid", "POD: the pod has no shared pid namespace"));
                break;
            case PodNamespaceMode.Container:
                list.Add(new SpecNamespace { Type = "pid" });
                break;
            case PodNamespaceMode.Node:
                break;
            case PodNamespaceMode.Target:
                if (string.IsNullOrEmpty(options.TargetId))
                {
                    throw Invalid($"{Ns}.target_id", "is required when pid is TARGET");
                }

                list.Add(Join("pid", context.TargetPidNamespacePath, $"{Ns}.pid",
                    $"TARGET: no pid namespace is known for container \"{options.TargetId}\""));
                break;
            default:
                throw Invalid($"{Ns}.pid", $"unknown mode {(int)options.Pid}");
        }

        switch (options.Network)
        {
            case PodNamespaceMode.Node:
                break;
            case PodNamespaceMode.Pod:
                list.Add(Join("network", context.NetworkNamespacePath, $"{Ns}.network", "POD: the pod has no network namespace"));
                list.Add(Join("uts", context.UtsNamespacePath, $"{Ns}.network", "POD: the pod has no uts namespace"));
                break;
            default:
                throw Invalid($"{Ns}.network", $"{options.Network} is not supported: a container uses its pod's network (POD) or the node's (NODE)");
        }

        switch (options.Ipc)
        {
            case PodNamespaceMode.Node:
                break;
            case PodNamespaceMode.Pod:
                list.Add(Join("ipc", context.IpcNamespacePath, $"{Ns}.ipc", "POD: the pod has no ipc namespace"));
                break;
            case PodNamespaceMode.Container:
                list.Add(new SpecNamespace { Type = "ipc" });
                break;
            default:
                throw Invalid($"{Ns}.ipc", $"{options.Ipc} is not supported for ipc");
        }

        list.Add(new SpecNamespace { Type = "mount" });

        // containerd: a private cgroup namespace hides the host's hierarchy, on v2 only and not for privileged containers.
        if (context.CgroupV2 && !privileged)
        {
            list.Add(new SpecNamespace { Type = "cgroup" });
        }

        return list;
    }

    private static SpecNamespace Join(string type, string? path, string field, string missing)
    {
        if (string.IsNullOrEmpty(path))
        {
            throw Invalid(field, missing);
        }

        return new SpecNamespace { Type = type, Path = path };
    }
}
