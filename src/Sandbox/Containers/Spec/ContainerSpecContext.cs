using Nacelle.ContainerCore.Security;
using Nacelle.ContainerCore.Spec;
using Nacelle.Sandbox.Store;

namespace Nacelle.Sandbox.Containers.Spec;

/// <summary>
/// What the pod layer knows when a container of the pod is created, besides the request and the image config: where
/// its rootfs is, which namespaces to join, which cgroup to use, the pod's generated files, the image facts that need
/// the rootfs (/etc/passwd, /etc/group) and the node's facts. Paths are host paths. Null means "not available" (e.g.
/// no pid namespace when the pod does not share one). The container manager fills it in; the spec builder reads it.
/// </summary>
public sealed record ContainerSpecContext
{
    /// <summary>The pod sandbox id (annotations).</summary>
    public required string PodId { get; init; }

    /// <summary>The container id being created; may be empty.</summary>
    public string ContainerId { get; init; } = string.Empty;

    /// <summary>The prepared rootfs (the overlay mount point the image service made for this container).</summary>
    public required string RootfsPath { get; init; }

    /// <summary>The pod's network namespace (needed unless the container uses the node's network).</summary>
    public string? NetworkNamespacePath { get; init; }

    /// <summary>The pod's ipc namespace (needed for NamespaceMode.POD ipc).</summary>
    public string? IpcNamespacePath { get; init; }

    /// <summary>The pod's uts namespace (needed unless the container uses the node's network, which implies the node's uts).</summary>
    public string? UtsNamespacePath { get; init; }

    /// <summary>The pod's shared pid namespace (needed for NamespaceMode.POD pid).</summary>
    public string? PidNamespacePath { get; init; }

    /// <summary>The pod's own user namespace (kubelet's hostUsers: false) with its mappings; null when the pod uses the
    /// node's.</summary>
    public UserNamespaceOption? PodUserNamespace { get; init; }

    /// <summary>The pod's pinned user namespace (needed when <see cref="PodUserNamespace"/> is set).</summary>
    public string? UserNamespacePath { get; init; }

    /// <summary>The pid namespace of the container named by namespace_options.target_id (needed for NamespaceMode.TARGET).</summary>
    public string? TargetPidNamespacePath { get; init; }

    /// <summary>linux.cgroupsPath of the container, in the form the cgroup driver expects.</summary>
    public required string CgroupsPath { get; init; }

    /// <summary>Whether the node runs the unified hierarchy (cgroup v2): then a non-privileged container gets a private
    /// cgroup namespace and /sys/fs/cgroup is a cgroup2 mount (containerd's rule).</summary>
    public bool CgroupV2 { get; init; } = true;

    /// <summary>The pod's hostname; null or empty means the sandbox config's hostname.</summary>
    public string? Hostname { get; init; }

    /// <summary>The node's hostname: the HOSTNAME of a host-network container whose pod sets none.</summary>
    public string NodeHostname { get; init; } = string.Empty;

    /// <summary>The pod's generated /etc/hosts (bound unless the container mounts /etc/hosts itself); null: none.</summary>
    public string? HostsPath { get; init; }

    /// <summary>The pod's generated /etc/resolv.conf; null: none.</summary>
    public string? ResolvConfPath { get; init; }

    /// <summary>The pod's generated /etc/hostname; null: none.</summary>
    public string? HostnamePath { get; init; }

    /// <summary>The pod's /dev/shm directory (bound for POD ipc); null: none.</summary>
    public string? ShmPath { get; init; }

    /// <summary>The pod's log_directory; null means the sandbox config's log_directory.</summary>
    public string? LogDirectory { get; init; }

    /// <summary>The content of the image rootfs's /etc/passwd; null when the image has none.</summary>
    public string? ImagePasswd { get; init; }

    /// <summary>The content of the image rootfs's /etc/group; null when the image has none.</summary>
    public string? ImageGroup { get; init; }

    /// <summary>The runtime's default seccomp profile (RuntimeDefault) for a container granted the given capabilities
    /// (its bounding set: capability-conditional rules follow it), as OCI linux.seccomp JSON; null: RuntimeDefault is
    /// refused.</summary>
    public Func<IReadOnlyCollection<string>, string>? DefaultSeccompProfile { get; init; }

    /// <summary>The security modules the node enforces (AppArmor, SELinux): what is asked for is applied where they
    /// are, and refused (or, for RuntimeDefault, noted) where they are not.</summary>
    public LinuxSecurityModules SecurityModules { get; init; } = LinuxSecurityModules.None;

    /// <summary>The AppArmor profile RuntimeDefault means on a node that enforces AppArmor (nacelle's own, loaded at
    /// start), or null with <see cref="AppArmorDefaultUnavailable"/> saying why it cannot be used.</summary>
    public string? AppArmorDefaultProfile { get; init; }

    public string? AppArmorDefaultUnavailable { get; init; }

    /// <summary>Whether an AppArmor profile is loaded in the node's kernel (Localhost profiles must be).</summary>
    public Func<string, bool> AppArmorProfileLoaded { get; init; } = LinuxSecurityModules.IsAppArmorProfileLoaded;

    /// <summary>The host's highest capability (cap_last_cap): "ALL" and privileged mean 0..this.</summary>
    public int HostLastCap { get; init; } = Capabilities.LastKnown;

    /// <summary>The capabilities the runtime holds (null: every one up to <see cref="HostLastCap"/>): what a privileged
    /// container or "ALL" gets, since the kernel grants no more.</summary>
    public ulong? HostCapabilities { get; init; }
}

/// <summary>A device node on the host, as stat reports it.</summary>
/// <param name="Path">The host path (for host device listings) or the container path (in specs).</param>
/// <param name="Type">'c' (character) or 'b' (block).</param>
/// <param name="FileMode">The permission bits (mode &amp; 0777).</param>
public sealed record HostDevice(string Path, char Type, long Major, long Minor, uint FileMode, uint Uid, uint Gid);

/// <summary>The user a container process runs as.</summary>
public sealed record ResolvedUser(uint Uid, uint Gid, IReadOnlyList<uint> AdditionalGids, string? Home, string? Name);

/// <summary>The OCI spec of a container plus the facts the runtime keeps next to it.</summary>
/// <param name="LogFile">The CRI log file: the pod's log directory joined with log_path, or null when kubelet asked
/// for no log.</param>
/// <param name="StopSignal">The signal number StopContainer sends first.</param>
/// <param name="StopSignalName">Its name ("SIGTERM", "SIGRTMIN+3").</param>
/// <param name="Notes">Things accepted but not honoured (AppArmor, SELinux), for a log line.</param>
public sealed record ContainerSpec(
    RuntimeSpec Spec,
    string? LogFile,
    int StopSignal,
    string StopSignalName,
    bool Tty,
    bool Stdin,
    bool StdinOnce,
    ResolvedUser User,
    IReadOnlyList<string> Notes);
