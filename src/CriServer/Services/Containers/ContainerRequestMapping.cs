using System.Text;
using Google.Protobuf;
using Nacelle.Common;
using Nacelle.CriServer.Services.Pods;
using Nacelle.Sandbox.Containers;
using Runtime.V1;
using DomainIdMapping = Nacelle.Sandbox.Store.IdMapping;
using DomainMountPropagation = Nacelle.Sandbox.Containers.MountPropagation;
using DomainNamespaceMode = Nacelle.Sandbox.Store.PodNamespaceMode;
using DomainSupplementalGroupsPolicy = Nacelle.Sandbox.Containers.SupplementalGroupsPolicy;

namespace Nacelle.CriServer.Services.Containers;

/// <summary>
/// CRI container requests in domain terms: the only place that reads a CreateContainer's ContainerConfig and
/// PodSandboxConfig (and UpdateContainerResources' resources). Values are carried over as sent, enums with the same
/// numbers; the domain's spec builder validates them and names the CRI field in its refusals.
/// </summary>
internal static class ContainerRequestMapping
{
    /// <summary>CreateContainer's request for the pod <paramref name="podId"/>, with its (or the stored) sandbox config.</summary>
    public static ContainerCreateRequest ToCreateRequest(string podId, ContainerConfig config, PodSandboxConfig sandbox)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(sandbox);
        var linux = config.Linux;
        return new ContainerCreateRequest
        {
            PodId = podId,
            Name = config.Metadata?.Name ?? "",
            Attempt = config.Metadata?.Attempt ?? 0,
            Image = config.Image?.Image ?? "",
            Labels = new Dictionary<string, string>(config.Labels),
            Annotations = new Dictionary<string, string>(config.Annotations),
            LogPath = config.LogPath,
            Config = config.ToByteArray(),
            Process = new ProcessRequest
            {
                Command = [.. config.Command],
                Args = [.. config.Args],
                WorkingDir = config.WorkingDir,
                Envs = [.. config.Envs.Select(e => new KeyValuePair<string, string>(e.Key, Encoding.UTF8.GetString(e.Value.Span)))],
                Tty = config.Tty,
                Stdin = config.Stdin,
                StdinOnce = config.StdinOnce,
            },
            Mounts = [.. config.Mounts.Select(ToMount)],
            Devices = [.. config.Devices.Select(d => new DeviceRequest(d.ContainerPath, d.HostPath, d.Permissions))],
            CdiDevices = [.. config.CDIDevices.Select(d => d.Name)],
            Resources = linux?.Resources is { } resources ? ToResources(resources) : null,
            Security = ToSecurity(linux?.SecurityContext ?? new LinuxContainerSecurityContext()),
            StopSignal = ToStopSignal(config.StopSignal),
            Sandbox = ToSandbox(sandbox),
        };
    }

    /// <summary>linux.resources, for CreateContainer and UpdateContainerResources.</summary>
    public static ResourceRequest ToResources(LinuxContainerResources r)
    {
        ArgumentNullException.ThrowIfNull(r);
        return new ResourceRequest
        {
            CpuPeriod = r.CpuPeriod,
            CpuQuota = r.CpuQuota,
            CpuShares = r.CpuShares,
            CpusetCpus = r.CpusetCpus,
            CpusetMems = r.CpusetMems,
            MemoryLimitInBytes = r.MemoryLimitInBytes,
            MemorySwapLimitInBytes = r.MemorySwapLimitInBytes,
            HugepageLimits = [.. r.HugepageLimits.Select(h => new Sandbox.Containers.HugepageLimit(h.PageSize, h.Limit))],
            Unified = new Dictionary<string, string>(r.Unified),
            OomScoreAdj = r.OomScoreAdj,
        };
    }

    private static MountRequest ToMount(Mount mount) => new()
    {
        ContainerPath = mount.ContainerPath,
        HostPath = mount.HostPath,
        Readonly = mount.Readonly,
        RecursiveReadOnly = mount.RecursiveReadOnly,
        Propagation = (DomainMountPropagation)(int)mount.Propagation,
        SelinuxRelabel = mount.SelinuxRelabel,
        ImageVolume = mount.Image is { } image && !string.IsNullOrEmpty(image.Image) ? image.Image : null,
        UidMappings = [.. mount.UidMappings.Select(m => new DomainIdMapping(m.ContainerId, m.HostId, m.Length))],
        GidMappings = [.. mount.GidMappings.Select(m => new DomainIdMapping(m.ContainerId, m.HostId, m.Length))],
    };

    private static SecurityRequest ToSecurity(LinuxContainerSecurityContext sc) => new()
    {
        Privileged = sc.Privileged,
        ReadonlyRootfs = sc.ReadonlyRootfs,
        NoNewPrivs = sc.NoNewPrivs,
        NamespaceOptions = ToNamespaces(sc.NamespaceOptions),
        RunAsUser = sc.RunAsUser?.Value,
        RunAsGroup = sc.RunAsGroup?.Value,
        RunAsUsername = sc.RunAsUsername,
        SupplementalGroups = [.. sc.SupplementalGroups],
        SupplementalGroupsPolicy = (DomainSupplementalGroupsPolicy)(int)sc.SupplementalGroupsPolicy,
        Capabilities = sc.Capabilities is { } caps
            ? new CapabilityRequest { Add = [.. caps.AddCapabilities], Drop = [.. caps.DropCapabilities], AddAmbient = [.. caps.AddAmbientCapabilities] }
            : null,
        Seccomp = ToProfile(sc.Seccomp),
#pragma warning disable CS0612 // seccomp_profile_path and apparmor_profile are deprecated, and still sent by older kubelets
        SeccompProfilePath = sc.SeccompProfilePath,
        ApparmorProfile = sc.ApparmorProfile,
#pragma warning restore CS0612
        Apparmor = ToProfile(sc.Apparmor),
        SelinuxOptions = sc.SelinuxOptions is { } selinux ? new SelinuxOptions(selinux.User, selinux.Role, selinux.Type, selinux.Level) : null,
        MaskedPaths = [.. sc.MaskedPaths],
        ReadonlyPaths = [.. sc.ReadonlyPaths],
    };

    private static NamespaceOptions? ToNamespaces(NamespaceOption? options) => options is null ? null : new NamespaceOptions
    {
        Network = (DomainNamespaceMode)(int)options.Network,
        Pid = (DomainNamespaceMode)(int)options.Pid,
        Ipc = (DomainNamespaceMode)(int)options.Ipc,
        TargetId = options.TargetId,
        User = PodSandboxMapping.ToUserNamespace(options.UsernsOptions),
    };

    private static Sandbox.Containers.SecurityProfile? ToProfile(Runtime.V1.SecurityProfile? profile) =>
        profile is null ? null : new((SecurityProfileType)(int)profile.ProfileType, profile.LocalhostRef);

    private static StopSignal? ToStopSignal(Signal signal)
    {
        if (signal == Signal.RuntimeDefault)
        {
            return null;
        }

        return CriSignals.FromCri(signal) is { } mapped
            ? new StopSignal(mapped.Number, mapped.Name)
            : throw NacelleException.InvalidArgument($"stop_signal: unknown signal {(int)signal}");
    }

    private static PodSandboxSettings ToSandbox(PodSandboxConfig sandbox) => new()
    {
        Name = sandbox.Metadata?.Name ?? "",
        Namespace = sandbox.Metadata?.Namespace ?? "",
        Uid = sandbox.Metadata?.Uid ?? "",
        Hostname = sandbox.Hostname,
        LogDirectory = sandbox.LogDirectory,
        Privileged = sandbox.Linux?.SecurityContext?.Privileged == true,
        NamespaceOptions = ToNamespaces(sandbox.Linux?.SecurityContext?.NamespaceOptions),
    };
}
