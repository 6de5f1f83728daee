using Nacelle.Common;
using Nacelle.ContainerCore.Security;
using Nacelle.ContainerCore.Spec;
using Nacelle.CriServer.Services.Containers;
using Nacelle.Sandbox.Containers.Spec;
using Runtime.V1;
using static Nacelle.Tests.Unit.Containers.SpecBuilder.Fx;

namespace Nacelle.Tests.Unit.Containers.SpecBuilder;

public sealed class SecurityTranslationTests
{
    private static SpecNamespace? Namespace(RuntimeSpec spec, string type) => spec.Linux!.Namespaces.SingleOrDefault(n => n.Type == type);

    [Fact]
    public void DefaultCapabilitiesInBoundingEffectivePermittedOnly()
    {
        var caps = Spec().Process!.Capabilities!;
        var expected = Capabilities.ToNames(Capabilities.ToMask(Capabilities.DefaultNames));
        Assert.Equal(expected, caps.Bounding);
        Assert.Equal(expected, caps.Effective);
        Assert.Equal(expected, caps.Permitted);
        Assert.Empty(caps.Inheritable);
        Assert.Empty(caps.Ambient);
    }

    [Fact]
    public void AddAndDropIncludingAll()
    {
        var addAll = Spec(Config(s => s.Capabilities = new Capability { AddCapabilities = { "ALL" }, DropCapabilities = { "NET_RAW" } }));
        Assert.Contains("CAP_SYS_ADMIN", addAll.Process!.Capabilities!.Bounding);
        Assert.DoesNotContain("CAP_NET_RAW", addAll.Process.Capabilities.Bounding);
        Assert.Equal(Capabilities.LastKnown, addAll.Process.Capabilities.Bounding.Count); // 41 - 1

        var dropAll = Spec(Config(s => s.Capabilities = new Capability { DropCapabilities = { "ALL" }, AddCapabilities = { "NET_BIND_SERVICE" } }));
        Assert.Equal(["CAP_NET_BIND_SERVICE"], dropAll.Process!.Capabilities!.Effective);

        Refused(() => Spec(Config(s => s.Capabilities = new Capability { AddCapabilities = { "CAP_FLY" } })), "add_capabilities", "CAP_FLY");
    }

    [Fact]
    public void AmbientCapabilitiesAreAlsoPermittedAndInheritable()
    {
        var caps = Spec(Config(s => s.Capabilities = new Capability { AddAmbientCapabilities = { "NET_ADMIN" } })).Process!.Capabilities!;
        Assert.Equal(["CAP_NET_ADMIN"], caps.Ambient);
        Assert.Equal(["CAP_NET_ADMIN"], caps.Inheritable);
        Assert.Contains("CAP_NET_ADMIN", caps.Permitted);
        Assert.Contains("CAP_NET_ADMIN", caps.Bounding);
    }

    /// <summary>Regression (found by critest): on a node whose runtime lacks CAP_SYS_RESOURCE, privileged containers and
    /// "ALL" asked for it anyway and capset failed; they get what the runtime holds, as with containerd.</summary>
    [Fact]
    public void PrivilegedAndAllGetTheCapabilitiesTheRuntimeHolds()
    {
        const ulong withoutSysResource = 0x1fffeffffff; // CAP_SYS_RESOURCE is 24
        var context = Context() with { HostLastCap = 40, HostCapabilities = withoutSysResource };
        var privileged = Spec(Config(s => s.Privileged = true), sandbox: PodConfig(privileged: true), context: context).Process!.Capabilities!;
        Assert.Equal(40, privileged.Bounding.Count);
        Assert.DoesNotContain("CAP_SYS_RESOURCE", privileged.Bounding);
        Assert.DoesNotContain("CAP_SYS_RESOURCE", privileged.Permitted);

        var all = Spec(Config(s => s.Capabilities = new Capability { AddCapabilities = { "ALL" }, DropCapabilities = { "KILL" } }), context: context).Process!.Capabilities!;
        Assert.DoesNotContain("CAP_SYS_RESOURCE", all.Bounding);
        Assert.DoesNotContain("CAP_KILL", all.Bounding);
        Assert.Contains("CAP_SYS_ADMIN", all.Bounding);

        // Named one by one, a capability is asked for as it is (the kernel then refuses it, naming the stage).
        var named = Spec(Config(s => s.Capabilities = new Capability { AddCapabilities = { "SYS_RESOURCE" } }), context: context).Process!.Capabilities!;
        Assert.Contains("CAP_SYS_RESOURCE", named.Bounding);
    }

    [Fact]
    public void PrivilegedMeansEverythingOpen()
    {
        var spec = Spec(
            Config(s =>
            {
                s.Privileged = true;
                s.Seccomp = new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.RuntimeDefault };
                s.MaskedPaths.Add("/proc/kcore");
                s.Capabilities = new Capability { DropCapabilities = { "ALL" } };
            }),
            sandbox: PodConfig(privileged: true),
            context: Context() with { HostLastCap = 40 });

        var caps = spec.Process!.Capabilities!;
        Assert.Equal(41, caps.Bounding.Count);
        Assert.Equal(caps.Bounding, caps.Effective);
        Assert.Equal(caps.Bounding, caps.Permitted);
        Assert.Equal(caps.Bounding, caps.Inheritable);
        Assert.Empty(caps.Ambient);
        Assert.Null(spec.Linux!.Seccomp);
        Assert.Empty(spec.Linux.MaskedPaths);
        Assert.Empty(spec.Linux.ReadonlyPaths);
        Assert.Null(Namespace(spec, "cgroup")); // containerd: no cgroupns for privileged containers
    }

    [Fact]
    public void PrivilegedCapabilitiesFollowTheHostsLastCap()
    {
        var spec = Spec(Config(s => s.Privileged = true), sandbox: PodConfig(privileged: true), context: Context() with { HostLastCap = 37 });
        Assert.Equal(38, spec.Process!.Capabilities!.Bounding.Count);
        Assert.DoesNotContain("CAP_BPF", spec.Process.Capabilities.Bounding);
    }

    [Fact]
    public void APrivilegedContainerNeedsAPrivilegedPod()
    {
        Refused(() => Spec(Config(s => s.Privileged = true), sandbox: PodConfig(privileged: false)), "linux.security_context.privileged");
    }

    [Fact]
    public void NoNewPrivsIsPassedOn()
    {
        Assert.True(Spec(Config(s => s.NoNewPrivs = true)).Process!.NoNewPrivileges);
        Assert.False(Spec().Process!.NoNewPrivileges);
    }

    [Fact]
    public void MaskedAndReadonlyPathsDefaultToRuncsLists()
    {
        var spec = Spec();
        Assert.Equal(
            ["/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
             "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"],
            spec.Linux!.MaskedPaths);
        Assert.Equal(["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"], spec.Linux.ReadonlyPaths);
    }

    [Fact]
    public void KubeletsMaskedAndReadonlyPathsReplaceTheDefaults()
    {
        var spec = Spec(Config(s =>
        {
            s.MaskedPaths.Add("/proc/kcore");
            s.ReadonlyPaths.Add("/proc/sys");
        }));
        Assert.Equal(["/proc/kcore"], spec.Linux!.MaskedPaths);
        Assert.Equal(["/proc/sys"], spec.Linux.ReadonlyPaths);
        Refused(() => Spec(Config(s => s.MaskedPaths.Add("proc/x"))), "masked_paths[0]");
        Refused(() => Spec(Config(s => s.ReadonlyPaths.Add("x"))), "readonly_paths[0]");
    }

    [Fact]
    public void SeccompRuntimeDefaultIsTheContextsProfile()
    {
        var spec = Spec(Config(s => s.Seccomp = new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.RuntimeDefault }));
        Assert.Equal("SCMP_ACT_ERRNO", spec.Linux!.Seccomp!.Value.GetProperty("defaultAction").GetString());
        Assert.Equal(2, spec.Linux.Seccomp.Value.GetProperty("syscalls")[0].GetProperty("names").GetArrayLength());
    }

    /// <summary>Capability-conditional rules of RuntimeDefault (clone with namespace flags, ptrace...) follow what the
    /// container is granted: the profile is built from its bounding set.</summary>
    [Fact]
    public void SeccompRuntimeDefaultIsBuiltForTheGrantedCapabilities()
    {
        IReadOnlyCollection<string>? asked = null;
        var context = Context() with { DefaultSeccompProfile = caps => { asked = caps; return DefaultProfile; } };
        var spec = Spec(Config(s =>
        {
            s.Seccomp = new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.RuntimeDefault };
            s.Capabilities = new Capability { AddCapabilities = { "SYS_ADMIN" }, DropCapabilities = { "NET_RAW" } };
        }), context: context);
        Assert.NotNull(spec.Linux!.Seccomp);
        Assert.NotNull(asked);
        Assert.Contains("CAP_SYS_ADMIN", asked!);
        Assert.DoesNotContain("CAP_NET_RAW", asked!);
        Assert.Equal(spec.Process!.Capabilities!.Bounding.Order(), asked!.Order());
    }

    [Fact]
    public void SeccompRuntimeDefaultWithoutAProfileIsRefused()
    {
        Refused(ErrorKind.FailedPrecondition,
            () => Spec(Config(s => s.Seccomp = new SecurityProfile()), context: Context() with { DefaultSeccompProfile = null }),
            "linux.security_context.seccomp");
    }

    [Fact]
    public void SeccompUnconfinedOrUnsetMeansNone()
    {
        Assert.Null(Spec(Config(s => s.Seccomp = new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.Unconfined })).Linux!.Seccomp);
        Assert.Null(Spec().Linux!.Seccomp);
    }

    [Fact]
    public void SeccompLocalhostReadsTheFileThroughTheHost()
    {
        var host = new FakeHost();
        host.Profiles["/var/lib/kubelet/seccomp/audit.json"] = LocalProfile;
        var spec = Spec(
            Config(s => s.Seccomp = new SecurityProfile
            {
                ProfileType = SecurityProfile.Types.ProfileType.Localhost, LocalhostRef = "/var/lib/kubelet/seccomp/audit.json",
            }),
            host: host);
        Assert.Equal("SCMP_ACT_LOG", spec.Linux!.Seccomp!.Value.GetProperty("defaultAction").GetString());
        Assert.Equal(["/var/lib/kubelet/seccomp/audit.json"], host.Reads);
    }

    [Theory]
    [InlineData("", null, "localhost_ref")]
    [InlineData("relative.json", null, "localhost_ref")]
    [InlineData("/missing.json", null, "/missing.json")]
    [InlineData("/bad.json", "{ not json", "/bad.json")]
    [InlineData("/array.json", "[1]", "/array.json")]
    public void BadLocalhostProfilesAreRefused(string reference, string? content, string fragment)
    {
        var host = new FakeHost();
        if (content is not null)
        {
            host.Profiles[reference] = content;
        }

        Refused(
            () => Spec(Config(s => s.Seccomp = new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.Localhost, LocalhostRef = reference }), host: host),
            "linux.security_context.seccomp.localhost_ref", fragment);
    }

    [Theory]
    [InlineData("runtime/default", "SCMP_ACT_ERRNO")]
    [InlineData("docker/default", "SCMP_ACT_ERRNO")]
    [InlineData("unconfined", null)]
    [InlineData("localhost//profiles/audit.json", "SCMP_ACT_LOG")]
    public void TheDeprecatedSeccompProfilePathStillWorks(string path, string? defaultAction)
    {
        var host = new FakeHost();
        host.Profiles["/profiles/audit.json"] = LocalProfile;
#pragma warning disable CS0612
        var spec = Spec(Config(s => s.SeccompProfilePath = path), host: host);
#pragma warning restore CS0612
        Assert.Equal(defaultAction, spec.Linux!.Seccomp?.GetProperty("defaultAction").GetString());
    }

    [Fact]
    public void AnUnknownDeprecatedSeccompProfilePathIsRefused()
    {
#pragma warning disable CS0612
        Refused(() => Spec(Config(s => s.SeccompProfilePath = "strict")), "seccomp_profile_path");
#pragma warning restore CS0612
    }

    [Fact]
    public void TheSecurityProfileFieldWinsOverTheDeprecatedPath()
    {
#pragma warning disable CS0612
        var spec = Spec(Config(s =>
        {
            s.SeccompProfilePath = "runtime/default";
            s.Seccomp = new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.Unconfined };
        }));
#pragma warning restore CS0612
        Assert.Null(spec.Linux!.Seccomp);
    }

    [Fact]
    public void PodNamespacesAreJoinedAndTheRestIsNew()
    {
        var spec = Spec();
        Assert.Equal(["pid", "network", "uts", "ipc", "mount", "cgroup"], spec.Linux!.Namespaces.Select(n => n.Type));
        Assert.Null(Namespace(spec, "pid")!.Path);
        Assert.Equal("/run/nacelle/ns/pod1/net", Namespace(spec, "network")!.Path);
        Assert.Equal("/run/nacelle/ns/pod1/uts", Namespace(spec, "uts")!.Path);
        Assert.Equal("/run/nacelle/ns/pod1/ipc", Namespace(spec, "ipc")!.Path);
        Assert.Null(Namespace(spec, "mount")!.Path);
        Assert.Null(Namespace(spec, "cgroup")!.Path);
    }

    [Fact]
    public void NoCgroupNamespaceOnCgroupV1()
    {
        Assert.Null(Namespace(Spec(context: Context() with { CgroupV2 = false }), "cgroup"));
    }

    [Fact]
    public void HostNetworkMeansNoNetworkOrUtsNamespaceAndTheNodesHostname()
    {
        var context = Context() with { Hostname = "", NetworkNamespacePath = null, UtsNamespacePath = null };
        var sandbox = PodConfig(network: NamespaceMode.Node);
        sandbox.Hostname = "";
        var spec = Spec(Config(s => s.NamespaceOptions.Network = NamespaceMode.Node), context: context, sandbox: sandbox);
        Assert.Null(Namespace(spec, "network"));
        Assert.Null(Namespace(spec, "uts"));
        Assert.Null(spec.Hostname);
        Assert.Equal("node-1", Env(spec, "HOSTNAME"));
        SpecValidator.Validate(spec);
    }

    [Theory]
    [InlineData(NamespaceMode.Pod, "/run/nacelle/ns/pod1/pid")]
    [InlineData(NamespaceMode.Container, null)]
    [InlineData(NamespaceMode.Target, "/proc/4242/ns/pid")]
    public void PidNamespaceModes(NamespaceMode mode, string? path)
    {
        var context = Context() with { PidNamespacePath = "/run/nacelle/ns/pod1/pid", TargetPidNamespacePath = "/proc/4242/ns/pid" };
        var spec = Spec(Config(s =>
        {
            s.NamespaceOptions.Pid = mode;
            s.NamespaceOptions.TargetId = "target-ctr";
        }), context: context);
        Assert.Equal(path, Namespace(spec, "pid")!.Path);
    }

    [Fact]
    public void HostPidMeansNoPidNamespace()
    {
        Assert.Null(Namespace(Spec(Config(s => s.NamespaceOptions.Pid = NamespaceMode.Node)), "pid"));
    }

    [Fact]
    public void NamespacesThatCannotBeJoinedAreRefused()
    {
        Refused(() => Spec(Config(s => s.NamespaceOptions.Pid = NamespaceMode.Pod)), "namespace_options.pid", "shared pid");
        Refused(() => Spec(Config(s => s.NamespaceOptions.Pid = NamespaceMode.Target)), "namespace_options.target_id");
        Refused(() => Spec(Config(s =>
        {
            s.NamespaceOptions.Pid = NamespaceMode.Target;
            s.NamespaceOptions.TargetId = "gone";
        })), "namespace_options.pid", "gone");
        Refused(() => Spec(Config(s => s.NamespaceOptions.Network = NamespaceMode.Container)), "namespace_options.network");
        Refused(() => Spec(context: Context() with { NetworkNamespacePath = null }), "namespace_options.network");
        // A container cannot ask for a user namespace its pod was not made with.
        Refused(() => Spec(Config(s => s.NamespaceOptions.UsernsOptions = new UserNamespace { Mode = NamespaceMode.Pod })),
            "userns_options");
    }

    [Fact]
    public void TheHostUserNamespaceIsFine()
    {
        var spec = Spec(Config(s => s.NamespaceOptions.UsernsOptions = new UserNamespace { Mode = NamespaceMode.Node }));
        Assert.Null(Namespace(spec, "user"));
    }

    [Fact]
    public void ThePodsNamespaceOptionsApplyWhenTheContainerHasNone()
    {
        var config = Config(s => s.NamespaceOptions = null);
        var sandbox = PodConfig(network: NamespaceMode.Node);
        Assert.Null(Namespace(Spec(config, sandbox: sandbox), "network"));
    }
}
