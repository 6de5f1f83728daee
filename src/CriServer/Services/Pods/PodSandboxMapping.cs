using System.Runtime.CompilerServices;
using Google.Protobuf;
using Nacelle.Common;
using Nacelle.Sandbox.Network;
using Nacelle.Sandbox.Pods;
using Nacelle.Sandbox.Store;
using Runtime.V1;

namespace Nacelle.CriServer.Services.Pods;

/// <summary>
/// CRI pod sandbox messages <-> the pod layer's domain records. As for containers (<see
/// cref="Containers.ContainerMapping"/>), a record's list item and status are built once per record and shared, read
/// only, by every answer that carries them: a change of the pod publishes a new record.
/// </summary>
internal static class PodSandboxMapping
{
    private static readonly ConditionalWeakTable<PodRecord, PodSandbox> ListItems = new();
    private static readonly ConditionalWeakTable<PodRecord, PodSandboxStatus> Statuses = new();

    public static PodSandboxRequest ToRequest(RunPodSandboxRequest request)
    {
        var config = request.Config ?? throw NacelleException.InvalidArgument("RunPodSandbox: config is required");
        var metadata = config.Metadata ?? throw NacelleException.InvalidArgument("config.metadata is required");
        if (string.IsNullOrEmpty(metadata.Name) || string.IsNullOrEmpty(metadata.Namespace) || string.IsNullOrEmpty(metadata.Uid))
        {
            throw NacelleException.InvalidArgument("config.metadata: name, namespace and uid are required");
        }

        var linux = config.Linux;
        var options = linux?.SecurityContext?.NamespaceOptions;
        foreach (var (field, mode) in new[] { ("network", options?.Network), ("pid", options?.Pid), ("ipc", options?.Ipc) })
        {
            if (mode is { } value && !Enum.IsDefined(value))
            {
                throw NacelleException.InvalidArgument($"linux.security_context.namespace_options.{field}: unknown mode {(int)value}");
            }

            // TARGET names another container's namespace: a container's mode (kubelet's ephemeral debug containers), not
            // a pod's. Accepted here it became the pod's containers' default and failed every one of them.
            if (mode == NamespaceMode.Target)
            {
                throw NacelleException.InvalidArgument(
                    $"linux.security_context.namespace_options.{field}: TARGET is a container's mode; a pod sandbox's is POD, CONTAINER or NODE");
            }
        }

        // A host port of 0 only documents the container port; anything else (negative too) is a mapping to validate.
        var ports = config.PortMappings
            .Where(p => p.HostPort != 0)
            .Select(p => new CniPortMapping(p.HostPort, p.ContainerPort, p.Protocol switch
            {
                Protocol.Tcp => "tcp",
                Protocol.Udp => "udp",
                Protocol.Sctp => "sctp",
                var unknown => ((int)unknown).ToString(System.Globalization.CultureInfo.InvariantCulture), // refused by Validate
            }, string.IsNullOrEmpty(p.HostIp) ? null : p.HostIp))
            .ToList();
        return new PodSandboxRequest
        {
            Name = metadata.Name,
            Namespace = metadata.Namespace,
            Uid = metadata.Uid,
            Attempt = metadata.Attempt,
            Hostname = config.Hostname,
            LogDirectory = config.LogDirectory,
            Labels = new Dictionary<string, string>(config.Labels),
            Annotations = new Dictionary<string, string>(config.Annotations),
            Dns = config.DnsConfig is { } dns ? new PodDnsConfig([.. dns.Servers], [.. dns.Searches], [.. dns.Options]) : null,
            PortMappings = ports,
            NamespaceOptions = new PodNamespaceOptions(
                (PodNamespaceMode)(int)(options?.Network ?? NamespaceMode.Pod),
                (PodNamespaceMode)(int)(options?.Pid ?? NamespaceMode.Pod),
                (PodNamespaceMode)(int)(options?.Ipc ?? NamespaceMode.Pod),
                options?.TargetId ?? "",
                ToUserNamespace(options?.UsernsOptions)),
            CgroupParent = linux?.CgroupParent ?? "",
            Sysctls = linux is null ? new Dictionary<string, string>() : new Dictionary<string, string>(linux.Sysctls),
            Privileged = linux?.SecurityContext?.Privileged ?? false,
            RuntimeHandler = request.RuntimeHandler,
            Config = config.ToByteArray(),
        };
    }

    /// <summary>CRI userns_options as sent (null when unset); the pod layer validates it.</summary>
    public static UserNamespaceOption? ToUserNamespace(UserNamespace? userns) => userns is null ? null : new UserNamespaceOption(
        (PodNamespaceMode)(int)userns.Mode,
        [.. userns.Uids.Select(m => new IdMapping(m.ContainerId, m.HostId, m.Length))],
        [.. userns.Gids.Select(m => new IdMapping(m.ContainerId, m.HostId, m.Length))]);

    /// <summary>The pod's user namespace as CRI reports it: POD with its mappings, or NODE.</summary>
    private static UserNamespace FromUserNamespace(UserNamespaceOption? user)
    {
        var userns = new UserNamespace { Mode = user is { IsPod: true } ? NamespaceMode.Pod : NamespaceMode.Node };
        if (user is { IsPod: true })
        {
            userns.Uids.Add(user.Uids.Select(m => new Runtime.V1.IDMapping { ContainerId = m.ContainerId, HostId = m.HostId, Length = m.Length }));
            userns.Gids.Add(user.Gids.Select(m => new Runtime.V1.IDMapping { ContainerId = m.ContainerId, HostId = m.HostId, Length = m.Length }));
        }

        return userns;
    }

    /// <summary>The pod's PodSandboxConfig as stored: binary, or the JSON of a pod made before the binary form.</summary>
    public static PodSandboxConfig Config(PodRecord pod) =>
        pod.Config.Length > 0 ? PodSandboxConfig.Parser.ParseFrom(pod.Config)
        : pod.LegacyConfigJson.Length > 0 ? JsonParser.Default.Parse<PodSandboxConfig>(pod.LegacyConfigJson)
        : new PodSandboxConfig();

    public static PodSandboxMetadata Metadata(PodRecord pod) =>
        new() { Name = pod.Name, Namespace = pod.Namespace, Uid = pod.Uid, Attempt = pod.Attempt };

    public static PodSandboxState State(PodRecord pod) =>
        pod.State == PodState.Ready ? PodSandboxState.SandboxReady : PodSandboxState.SandboxNotready;

    /// <summary>The pod's ListPodSandbox item, shared (read only).</summary>
    public static PodSandbox ToListItem(PodRecord pod) => ListItems.GetValue(pod, BuildListItem);

    private static PodSandbox BuildListItem(PodRecord pod)
    {
        var item = new PodSandbox
        {
            Id = pod.Id, Metadata = Metadata(pod), State = State(pod), CreatedAt = pod.CreatedAt, RuntimeHandler = pod.RuntimeHandler,
        };
        CriMaps.Copy(pod.Labels, item.Labels);
        CriMaps.Copy(pod.Annotations, item.Annotations);
        return item;
    }

    /// <summary>The pod's CRI status, shared (read only).</summary>
    public static PodSandboxStatus ToStatus(PodRecord pod) => Statuses.GetValue(pod, BuildStatus);

    private static PodSandboxStatus BuildStatus(PodRecord pod)
    {
        var status = new PodSandboxStatus
        {
            Id = pod.Id,
            Metadata = Metadata(pod),
            State = State(pod),
            CreatedAt = pod.CreatedAt,
            RuntimeHandler = pod.RuntimeHandler,
            Network = new PodSandboxNetworkStatus { Ip = pod.Ips.Count > 0 ? pod.Ips[0] : "" },
            Linux = new LinuxPodSandboxStatus
            {
                Namespaces = new Namespace
                {
                    Options = new NamespaceOption
                    {
                        Network = (NamespaceMode)(int)pod.NamespaceOptions.Network,
                        Pid = (NamespaceMode)(int)pod.NamespaceOptions.Pid,
                        Ipc = (NamespaceMode)(int)pod.NamespaceOptions.Ipc,
                        TargetId = pod.NamespaceOptions.TargetId,
                        UsernsOptions = FromUserNamespace(pod.NamespaceOptions.User),
                    },
                },
            },
        };
        status.Network.AdditionalIps.Add(pod.Ips.Skip(1).Select(ip => new PodIP { Ip = ip }));
        CriMaps.Copy(pod.Labels, status.Labels);
        CriMaps.Copy(pod.Annotations, status.Annotations);
        return status;
    }

    public static bool Matches(PodRecord pod, PodSandboxFilter? filter)
    {
        if (filter is null)
        {
            return true;
        }

        if (filter.Id.Length > 0 && !pod.Id.StartsWith(filter.Id, StringComparison.Ordinal))
        {
            return false;
        }

        if (filter.State is { } state && State(pod) != state.State)
        {
            return false;
        }

        return filter.LabelSelector.All(pair => pod.Labels.TryGetValue(pair.Key, out var value) && value == pair.Value);
    }
}

/// <summary>Pod usage -> CRI PodSandboxStats.</summary>
internal static class PodStatsMapping
{
    public static Runtime.V1.PodSandboxStats ToStats(PodRecord pod, PodUsage usage)
    {
        var at = UnixTime.Nanoseconds(usage.At);
        var attributes = new PodSandboxAttributes { Id = pod.Id, Metadata = PodSandboxMapping.Metadata(pod) };
        CriMaps.Copy(pod.Labels, attributes.Labels);
        CriMaps.Copy(pod.Annotations, attributes.Annotations);
        var linux = new LinuxPodSandboxStats();
        linux.Cpu = CgroupUsageMapping.Cpu(usage.Cgroup, at);
        linux.Memory = CgroupUsageMapping.Memory(usage.Cgroup, at);

        if (usage.Cgroup?.ProcessCount is { } processes)
        {
            linux.Process = new ProcessUsage { Timestamp = at, ProcessCount = new UInt64Value { Value = processes } };
        }

        if (usage.Interfaces.Count > 0)
        {
            static NetworkInterfaceUsage Interface(NetworkCounters c) => new()
            {
                Name = c.Name,
                RxBytes = new UInt64Value { Value = c.RxBytes },
                RxErrors = new UInt64Value { Value = c.RxErrors },
                TxBytes = new UInt64Value { Value = c.TxBytes },
                TxErrors = new UInt64Value { Value = c.TxErrors },
            };
            linux.Network = new NetworkUsage
            {
                Timestamp = at,
                DefaultInterface = Interface(usage.Interfaces.FirstOrDefault(i => i.Name == "eth0") ?? usage.Interfaces[0]),
            };
            linux.Network.Interfaces.Add(usage.Interfaces.Select(Interface));
        }

        return new Runtime.V1.PodSandboxStats { Attributes = attributes, Linux = linux };
    }
}
