namespace Nacelle.Sandbox.Store;

/// <summary>A pod sandbox's state (CRI <c>PodSandboxState</c>).</summary>
public enum PodState
{
    /// <summary>Running: its namespaces, network and monitor are up.</summary>
    Ready = 0,
    /// <summary>Stopped or not (yet, or any more) fully set up.</summary>
    NotReady = 1,
}

/// <summary>How a pod's containers get a namespace (CRI <c>NamespaceMode</c>, same numbers).</summary>
public enum PodNamespaceMode
{
    /// <summary>One namespace for the pod, shared by its containers.</summary>
    Pod = 0,
    /// <summary>One namespace per container.</summary>
    Container = 1,
    /// <summary>The node's namespace.</summary>
    Node = 2,
    /// <summary>The namespace of the container named by <see cref="PodNamespaceOptions.TargetId"/>.</summary>
    Target = 3,
}

/// <summary>The pod's network, pid and ipc namespace modes (CRI <c>NamespaceOption</c>), and its user namespace (null: the
/// node's; CRI's userns_options unset or NODE).</summary>
public sealed record PodNamespaceOptions(
    PodNamespaceMode Network = PodNamespaceMode.Pod,
    PodNamespaceMode Pid = PodNamespaceMode.Container,
    PodNamespaceMode Ipc = PodNamespaceMode.Pod,
    string TargetId = "",
    UserNamespaceOption? User = null)
{
    /// <summary>The pod's own user namespace (mode POD), or null when it uses the node's.</summary>
    public UserNamespaceOption? OwnUserNamespace => User is { IsPod: true } user ? user : null;
}

/// <summary>
/// A pod sandbox as the metadata database keeps it. Times are unix nanoseconds (CRI's precision). Identity fields
/// (<see cref="Id"/>, <see cref="Name"/>, <see cref="Namespace"/>, <see cref="Uid"/>, <see cref="Attempt"/>,
/// <see cref="CreatedAt"/>) never change after <see cref="PodStore.AddPod"/>.
/// </summary>
public sealed record PodRecord
{
    /// <summary>64 lower-case hex digits.</summary>
    public required string Id { get; init; }

    /// <summary>Pod name (CRI metadata.name).</summary>
    public required string Name { get; init; }

    /// <summary>Pod namespace (CRI metadata.namespace).</summary>
    public required string Namespace { get; init; }

    /// <summary>Pod UID (CRI metadata.uid).</summary>
    public required string Uid { get; init; }

    /// <summary>Sandbox attempt (CRI metadata.attempt).</summary>
    public uint Attempt { get; init; }

    public PodState State { get; init; } = PodState.NotReady;

    /// <summary>Creation time, unix nanoseconds.</summary>
    public long CreatedAt { get; init; }

    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    public IReadOnlyDictionary<string, string> Annotations { get; init; } = new Dictionary<string, string>();

    /// <summary>The runtime handler asked for ("" = default).</summary>
    public string RuntimeHandler { get; init; } = "";

    /// <summary>The pinned network namespace path ("" for host-network pods or before it exists).</summary>
    public string NetnsPath { get; init; } = "";

    /// <summary>The pod's IP addresses, primary first.</summary>
    public IReadOnlyList<string> Ips { get; init; } = [];

    public string Hostname { get; init; } = "";

    /// <summary>Kubelet's log directory for the pod's containers (CRI log_directory).</summary>
    public string LogDirectory { get; init; } = "";

    public string CgroupParent { get; init; } = "";

    public PodNamespaceOptions NamespaceOptions { get; init; } = new();

    public bool Privileged { get; init; }

    /// <summary>The pod monitor's pid, null when none is known.</summary>
    public int? MonitorPid { get; init; }

    /// <summary>The monitor's start time (/proc/&lt;pid&gt;/stat field 22, clock ticks since boot): tells a reused pid apart.</summary>
    public ulong MonitorStartTime { get; init; }

    /// <summary>pause-init's pid (the namespace holder), null when none is known.</summary>
    public int? PauseInitPid { get; init; }

    /// <summary>The original PodSandboxConfig in protobuf's binary encoding, opaque to the store.</summary>
    public byte[] Config { get; init; } = [];

    /// <summary>The PodSandboxConfig as protobuf JSON, as daemons before the binary form stored it; empty for pods made
    /// since (<see cref="Config"/> holds theirs).</summary>
    public string LegacyConfigJson { get; init; } = "";

    /// <summary>False while RunPodSandbox is still building the pod: a row left incomplete by a daemon that died half
    /// way is torn down by the next one (<c>PodManager.RecoverAsync</c>); callers never see such a pod.</summary>
    public bool Complete { get; init; } = true;
}
