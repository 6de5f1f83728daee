using Nacelle.ContainerCore.Spec;
using Nacelle.Sandbox.Store;

namespace Nacelle.Sandbox.Containers.Spec;

/// <summary>The spec's namespaces: which the container joins (the pod's, a target container's) and which it gets of its own.</summary>
public sealed partial class ContainerSpecBuilder
{
    /// <summary>
    /// The user namespace the container is in: its pod's own (joined by the pinned path, with the pod's mappings) or
    /// the node's (null). A container does not choose: userns_options, when given, must say what its pod has, as kubelet
    /// sends it (the same mode and mappings as the sandbox's).
    /// </summary>
    private static UserNamespaceOption? UserNamespaceOf(UserNamespaceOption? asked, ContainerSpecContext context)
    {
        const string field = Ns + ".userns_options";
        var pod = context.PodUserNamespace;
        if (asked is null)
        {
            return pod;
        }

        asked.Validate(field);
        if (asked.IsPod != pod is not null)
        {
            throw Invalid($"{field}.mode", asked.IsPod
                ? "POD, but the pod sandbox was not created in a user namespace of its own"
                : "NODE, but the pod sandbox has a user namespace of its own (POD), which its containers share");
        }

        if (pod is not null && !asked.Equals(pod))
        {
            throw Invalid($"{field}.uids", "differ from the pod sandbox's mappings: a container is in its pod's user namespace");
        }

        return pod;
    }

    private static List<SpecNamespace> Namespaces(NamespaceOptions options, bool privileged, ContainerSpecContext context,
        UserNamespaceOption? userNamespace)
    {
        var list = new List<SpecNamespace>();
        if (userNamespace is not null)
        {
            list.Add(Join("user", context.UserNamespacePath, $"{Ns}.userns_options", "POD: the pod has no pinned user namespace"));
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
