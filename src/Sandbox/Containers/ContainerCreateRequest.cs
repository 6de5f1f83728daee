using Nacelle.Sandbox.Store;

namespace Nacelle.Sandbox.Containers;

/// <summary>
/// What CreateContainer asks for, in domain terms: CriServer maps the CRI request into this once, and everything below
/// (the container manager, the spec builder, the monitor) works from it. It mirrors the CRI ContainerConfig, so
/// the spec builder's refusals name the CRI fields ("linux.security_context.run_as_user: ..."). Values are as kubelet
/// sent them: validation is the spec builder's.
/// </summary>
public sealed record ContainerCreateRequest
{
    public required string PodId { get; init; }

    /// <summary>metadata.name.</summary>
    public required string Name { get; init; }

    public uint Attempt { get; init; }

    /// <summary>The image as kubelet names it (CRI image.image): a reference or an id.</summary>
    public required string Image { get; init; }

    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
    public IReadOnlyDictionary<string, string> Annotations { get; init; } = new Dictionary<string, string>();

    /// <summary>CRI log_path, relative to the pod's log directory (empty: no log).</summary>
    public string LogPath { get; init; } = "";

    /// <summary>The CRI ContainerConfig in protobuf's binary encoding, kept for ContainerStatus (opaque here).</summary>
    public byte[] Config { get; init; } = [];

    public ProcessRequest Process { get; init; } = new();
    public IReadOnlyList<MountRequest> Mounts { get; init; } = [];
    public IReadOnlyList<DeviceRequest> Devices { get; init; } = [];

    /// <summary>CDI device names (CDI is not supported: any is refused).</summary>
    public IReadOnlyList<string> CdiDevices { get; init; } = [];

    /// <summary>linux.resources; null when kubelet sent none.</summary>
    public ResourceRequest? Resources { get; init; }

    /// <summary>linux.security_context.</summary>
    public SecurityRequest Security { get; init; } = new();

    /// <summary>stop_signal as a Linux signal; null for RUNTIME_DEFAULT (the image's, else SIGTERM).</summary>
    public StopSignal? StopSignal { get; init; }

    /// <summary>What the request's sandbox config says about the pod.</summary>
    public PodSandboxSettings Sandbox { get; init; } = new();
}

/// <summary>The container's process: command/args (Docker's rules against the image's), working_dir, envs, tty.</summary>
public sealed record ProcessRequest
{
    public IReadOnlyList<string> Command { get; init; } = [];
    public IReadOnlyList<string> Args { get; init; } = [];
    public string WorkingDir { get; init; } = "";

    /// <summary>envs in order (a later one replaces an earlier variable of the same name).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Envs { get; init; } = [];

    public bool Tty { get; init; }
    public bool Stdin { get; init; }
    public bool StdinOnce { get; init; }
}

/// <summary>A Linux signal: its number and canonical name ("SIGTERM", "SIGRTMIN+3").</summary>
public sealed record StopSignal(int Number, string Name);

/// <summary>One requested mount (CRI Mount).</summary>
public sealed record MountRequest
{
    public string ContainerPath { get; init; } = "";
    public string HostPath { get; init; } = "";
    public bool Readonly { get; init; }
    public bool RecursiveReadOnly { get; init; }
    public MountPropagation Propagation { get; init; }

    /// <summary>selinux_relabel: accepted and ignored (nacelle does not run with SELinux labels).</summary>
    public bool SelinuxRelabel { get; init; }

    /// <summary>An image volume's image (not supported: refused); null for a host path mount.</summary>
    public string? ImageVolume { get; init; }

    /// <summary>uidMappings/gidMappings: an idmapped mount (kubelet sends the pod's mappings for a user-namespaced pod's
    /// volumes); empty for a plain bind.</summary>
    public IReadOnlyList<IdMapping> UidMappings { get; init; } = [];
    public IReadOnlyList<IdMapping> GidMappings { get; init; } = [];
}

/// <summary>CRI MountPropagation, same values.</summary>
public enum MountPropagation
{
    Private = 0,
    HostToContainer = 1,
    Bidirectional = 2,
}

/// <summary>One requested host device (CRI Device).</summary>
public sealed record DeviceRequest(string ContainerPath, string HostPath, string Permissions);

/// <summary>linux.resources (CRI LinuxContainerResources); 0 or empty means "not set", as in CRI.</summary>
public sealed record ResourceRequest
{
    public long CpuPeriod { get; init; }
    public long CpuQuota { get; init; }
    public long CpuShares { get; init; }
    public string CpusetCpus { get; init; } = "";
    public string CpusetMems { get; init; } = "";
    public long MemoryLimitInBytes { get; init; }
    public long MemorySwapLimitInBytes { get; init; }
    public IReadOnlyList<HugepageLimit> HugepageLimits { get; init; } = [];
    public IReadOnlyDictionary<string, string> Unified { get; init; } = new Dictionary<string, string>();
    public long OomScoreAdj { get; init; }
}

public sealed record HugepageLimit(string PageSize, ulong Limit);

/// <summary>linux.security_context of the container (CRI LinuxContainerSecurityContext).</summary>
public sealed record SecurityRequest
{
    public bool Privileged { get; init; }
    public bool ReadonlyRootfs { get; init; }
    public bool NoNewPrivs { get; init; }

    /// <summary>null: the pod's namespace options (else all POD).</summary>
    public NamespaceOptions? NamespaceOptions { get; init; }

    public long? RunAsUser { get; init; }
    public long? RunAsGroup { get; init; }
    public string RunAsUsername { get; init; } = "";
    public IReadOnlyList<long> SupplementalGroups { get; init; } = [];
    public SupplementalGroupsPolicy SupplementalGroupsPolicy { get; init; }

    /// <summary>null: none given (the default set).</summary>
    public CapabilityRequest? Capabilities { get; init; }

    /// <summary>seccomp; null when not given (then <see cref="SeccompProfilePath"/>, the deprecated field, counts).</summary>
    public SecurityProfile? Seccomp { get; init; }
    public string SeccompProfilePath { get; init; } = "";

    /// <summary>apparmor; null when not given (then <see cref="ApparmorProfile"/>, the deprecated field, counts).</summary>
    public SecurityProfile? Apparmor { get; init; }
    public string ApparmorProfile { get; init; } = "";

    public SelinuxOptions? SelinuxOptions { get; init; }

    /// <summary>Empty: the runtime's defaults.</summary>
    public IReadOnlyList<string> MaskedPaths { get; init; } = [];
    public IReadOnlyList<string> ReadonlyPaths { get; init; } = [];
}

/// <summary>CRI NamespaceOption, with the pod's mode enum (CRI NamespaceMode, same names and numbers).</summary>
public sealed record NamespaceOptions
{
    public PodNamespaceMode Network { get; init; }
    public PodNamespaceMode Pid { get; init; }
    public PodNamespaceMode Ipc { get; init; }

    /// <summary>The container whose pid namespace a TARGET pid mode joins.</summary>
    public string TargetId { get; init; } = "";

    /// <summary>userns_options as sent; null when none were given.</summary>
    public UserNamespaceOption? User { get; init; }
}

/// <summary>CRI SupplementalGroupsPolicy, same values.</summary>
public enum SupplementalGroupsPolicy
{
    Merge = 0,
    Strict = 1,
}

/// <summary>CRI Capability: names as kubelet sends them ("NET_ADMIN", "CAP_CHOWN", "ALL").</summary>
public sealed record CapabilityRequest
{
    public IReadOnlyList<string> Add { get; init; } = [];
    public IReadOnlyList<string> Drop { get; init; } = [];
    public IReadOnlyList<string> AddAmbient { get; init; } = [];
}

/// <summary>CRI SecurityProfile.</summary>
public sealed record SecurityProfile(SecurityProfileType ProfileType, string LocalhostRef);

/// <summary>CRI SecurityProfile.ProfileType, same names and values.</summary>
public enum SecurityProfileType
{
    RuntimeDefault = 0,
    Unconfined = 1,
    Localhost = 2,
}

/// <summary>CRI SELinuxOption.</summary>
public sealed record SelinuxOptions(string User, string Role, string Type, string Level);

/// <summary>What the CreateContainer request's sandbox config says about the pod (the pod's record has the rest).</summary>
public sealed record PodSandboxSettings
{
    /// <summary>metadata name, namespace and uid (for annotations).</summary>
    public string Name { get; init; } = "";
    public string Namespace { get; init; } = "";
    public string Uid { get; init; } = "";

    /// <summary>The hostname and log_directory, used when the pod's record has none.</summary>
    public string Hostname { get; init; } = "";
    public string LogDirectory { get; init; } = "";

    /// <summary>linux.security_context.privileged of the pod.</summary>
    public bool Privileged { get; init; }

    /// <summary>The pod's namespace options (used when the container gives none); null: none.</summary>
    public NamespaceOptions? NamespaceOptions { get; init; }
}
