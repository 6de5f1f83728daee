using Nacelle.ContainerCore.Cgroups;
using Nacelle.ContainerCore.Security;
using Nacelle.ContainerCore.Security.Seccomp;
using Nacelle.ContainerCore.Spec;
using Nacelle.CriServer.Services.Containers;
using Nacelle.Sandbox.Containers.Spec;
using Runtime.V1;
using static Nacelle.Tests.Unit.Containers.SpecBuilder.Fx;

namespace Nacelle.Tests.Unit.Containers.SpecBuilder;

/// <summary>Whatever the translation produces must pass the core's own checks unchanged.</summary>
public sealed class TranslatedSpecValidationTests
{
    public static TheoryData<string> Cases => new()
    {
        "minimal", "kubelet-typical", "privileged", "host-network", "shared-pid", "target-pid", "readonly-rootfs-with-mounts",
        "devices-and-resources", "tty", "localhost-seccomp", "cgroup-v1", "host-ipc",
    };

    private static (ContainerConfig, PodSandboxConfig, ContainerSpecContext, FakeHost) Build(string name)
    {
        var config = Config();
        var sandbox = PodConfig();
        var context = Context();
        var host = new FakeHost();
        switch (name)
        {
            case "minimal":
                config = new ContainerConfig { Metadata = new ContainerMetadata { Name = "m" } };
                sandbox = new PodSandboxConfig { Hostname = "m" };
                context = context with { PidNamespacePath = "/run/nacelle/ns/pod1/pid" }; // unset options mean POD everywhere
                break;
            case "kubelet-typical":
                config.Envs.Add(Env("KUBERNETES_SERVICE_HOST", "10.96.0.1"));
                config.Mounts.Add(new Mount { ContainerPath = "/var/run/secrets/kubernetes.io/serviceaccount", HostPath = "/var/lib/kubelet/pods/u/volumes/token", Readonly = true, RecursiveReadOnly = true });
                config.Mounts.Add(new Mount { ContainerPath = "/etc/hosts", HostPath = "/var/lib/kubelet/pods/u/etc-hosts" });
                config.Mounts.Add(new Mount { ContainerPath = "/dev/termination-log", HostPath = "/var/lib/kubelet/pods/u/containers/app/x" });
                config.Linux.Resources = new LinuxContainerResources { CpuPeriod = 100000, CpuQuota = 20000, CpuShares = 102, MemoryLimitInBytes = 128 << 20, OomScoreAdj = 968 };
                config.Linux.SecurityContext.Seccomp = new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.RuntimeDefault };
                config.Linux.SecurityContext.Capabilities = new Capability { DropCapabilities = { "ALL" }, AddCapabilities = { "NET_BIND_SERVICE" } };
                config.Linux.SecurityContext.RunAsUser = new Int64Value { Value = 1000 };
                config.Linux.SecurityContext.NoNewPrivs = true;
                config.Linux.SecurityContext.MaskedPaths.AddRange(LinuxDefaults.MaskedPaths);
                config.Linux.SecurityContext.ReadonlyPaths.AddRange(LinuxDefaults.ReadonlyPaths);
                break;
            case "privileged":
                config.Linux.SecurityContext.Privileged = true;
                sandbox = PodConfig(privileged: true);
                host.HostDevices.Add(new HostDevice("/dev/kvm", 'c', 10, 232, 0x1B0, 0, 108));
                break;
            case "host-network":
                config.Linux.SecurityContext.NamespaceOptions.Network = NamespaceMode.Node;
                sandbox = PodConfig(network: NamespaceMode.Node);
                context = context with { NetworkNamespacePath = null, UtsNamespacePath = null };
                break;
            case "shared-pid":
                config.Linux.SecurityContext.NamespaceOptions.Pid = NamespaceMode.Pod;
                context = context with { PidNamespacePath = "/run/nacelle/ns/pod1/pid" };
                break;
            case "target-pid":
                config.Linux.SecurityContext.NamespaceOptions.Pid = NamespaceMode.Target;
                config.Linux.SecurityContext.NamespaceOptions.TargetId = "other";
                context = context with { TargetPidNamespacePath = "/proc/77/ns/pid" };
                break;
            case "readonly-rootfs-with-mounts":
                config.Linux.SecurityContext.ReadonlyRootfs = true;
                config.Mounts.Add(new Mount { ContainerPath = "/data", HostPath = "/srv", Propagation = MountPropagation.PropagationBidirectional });
                config.Mounts.Add(new Mount { ContainerPath = "/cache", HostPath = "/c", Propagation = MountPropagation.PropagationHostToContainer });
                break;
            case "devices-and-resources":
                host.Devices["/dev/fuse"] = new HostDevice("/dev/fuse", 'c', 10, 229, 0x1B6, 0, 0);
                config.Devices.Add(new Device { HostPath = "/dev/fuse", ContainerPath = "/dev/fuse", Permissions = "rwm" });
                config.Linux.Resources = new LinuxContainerResources
                {
                    CpusetCpus = "0-1", CpusetMems = "0", MemoryLimitInBytes = 1 << 30, MemorySwapLimitInBytes = 2L << 30,
                    HugepageLimits = { new HugepageLimit { PageSize = "2MB", Limit = 0 } }, Unified = { ["memory.high"] = "max" },
                };
                break;
            case "tty":
                config.Tty = true;
                config.Stdin = true;
                config.StdinOnce = true;
                break;
            case "localhost-seccomp":
                host.Profiles["/p.json"] = LocalProfile;
                config.Linux.SecurityContext.Seccomp = new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.Localhost, LocalhostRef = "/p.json" };
                break;
            case "cgroup-v1":
                context = context with { CgroupV2 = false };
                break;
            case "host-ipc":
                config.Linux.SecurityContext.NamespaceOptions.Ipc = NamespaceMode.Node;
                break;
        }

        return (config, sandbox, context, host);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TranslatedSpecsPassTheValidator(string name)
    {
        var (config, sandbox, context, host) = Build(name);
        var result = Translate(config, Image(entrypoint: ["/bin/app"]), context, sandbox, host);

        SpecValidator.Validate(result.Spec);

        // The cgroup mapping, the capability sets and the seccomp compiler accept what we produce.
        _ = CgroupSpecMapping.FromSpec(result.Spec.Linux!.Resources!);
        _ = Capabilities.FromSpec(result.Spec.Process!.Capabilities, Capabilities.LastKnown);
        if (result.Spec.Linux.Seccomp is { } seccomp)
        {
            _ = SeccompProfile.FromJson(seccomp);
        }

        // And it survives config.json.
        var json = RuntimeSpecFile.Serialize(result.Spec);
        var again = RuntimeSpecFile.Parse(json);
        SpecValidator.Validate(again);
        Assert.Equal(json, RuntimeSpecFile.Serialize(again));
    }
}
