using Nacelle.Common;
using Nacelle.ContainerCore.Mounts;
using Nacelle.ContainerCore.Spec;
using Nacelle.Sandbox.Containers.Spec;
using Nacelle.Sandbox.Store;
using Runtime.V1;
using static Nacelle.Tests.Unit.Containers.SpecBuilder.Fx;

namespace Nacelle.Tests.Unit.Containers.SpecBuilder;

/// <summary>
/// A pod in a user namespace of its own (kubelet's hostUsers: false) as CreateContainer sees it: the container joins the
/// pod's namespace by its pin, with the pod's mappings; its volumes carry the same mappings (idmapped); userns_options
/// and mount mappings that are not the pod's are refused naming the field; ProcMount Unmasked is honoured there only.
/// </summary>
public sealed class UserNamespaceTranslationTests
{
    private const string UsernsPin = "/run/nacelle/ns/pod1/user";

    private static IDMapping Cri(uint hostId) => new() { ContainerId = 0, HostId = hostId, Length = 65536 };

    private static UserNamespace PodOptions(uint hostId = 65536)
    {
        var userns = new UserNamespace { Mode = NamespaceMode.Pod };
        userns.Uids.Add(Cri(hostId));
        userns.Gids.Add(Cri(hostId));
        return userns;
    }

    private static ContainerSpecContext UserNamespacedPod(uint hostId = 65536) => Context() with
    {
        PodUserNamespace = UserNamespaceOption.Pod([new IdMapping(0, hostId, 65536)], [new IdMapping(0, hostId, 65536)]),
        UserNamespacePath = UsernsPin,
    };

    /// <summary>As kubelet sends a container of a hostUsers: false pod: the pod's userns_options, its default paths.</summary>
    private static ContainerConfig KubeletConfig(Action<LinuxContainerSecurityContext>? more = null) => Config(s =>
    {
        s.NamespaceOptions.UsernsOptions = PodOptions();
        s.MaskedPaths.Add(LinuxDefaultsMasked);
        s.ReadonlyPaths.Add("/proc/sys");
        more?.Invoke(s);
    });

    private const string LinuxDefaultsMasked = "/proc/kcore";

    private static PodSandboxConfig PodWithOwnUserNamespace()
    {
        var pod = PodConfig();
        pod.Linux.SecurityContext.NamespaceOptions.UsernsOptions = PodOptions();
        return pod;
    }

    private static RuntimeSpec UserNamespacedSpec(ContainerConfig? config = null, FakeHost? host = null) =>
        Spec(config ?? KubeletConfig(), context: UserNamespacedPod(), sandbox: PodWithOwnUserNamespace(), host: host);

    private static Mount Volume(string path, MountPropagation propagation = MountPropagation.PropagationPrivate, uint? mappedTo = 65536)
    {
        var mount = new Mount { ContainerPath = path, HostPath = "/var/lib/kubelet/pods/uid1/volumes" + path, Propagation = propagation };
        if (mappedTo is { } hostId)
        {
            mount.UidMappings.Add(Cri(hostId));
            mount.GidMappings.Add(Cri(hostId));
        }

        return mount;
    }

    [Fact]
    public void The_container_joins_its_pods_user_namespace_first_with_the_pods_mappings()
    {
        var spec = UserNamespacedSpec();
        var user = spec.Linux!.Namespaces[0];
        Assert.Equal(("user", UsernsPin), (user.Type, user.Path));
        var mapping = Assert.Single(spec.Linux.UidMappings);
        Assert.Equal((0u, 65536u, 65536u), (mapping.ContainerId, mapping.HostId, mapping.Size));
        Assert.Single(spec.Linux.GidMappings);
        SpecValidator.Validate(spec);

        // Without userns_options on the container the pod's namespace still applies (a container does not choose).
        Assert.Equal("user", UserNamespacedSpec(Config()).Linux!.Namespaces[0].Type);
    }

    [Fact]
    public void A_pod_without_a_user_namespace_gives_its_containers_none()
    {
        var spec = Spec(Config());
        Assert.DoesNotContain(spec.Linux!.Namespaces, n => n.Type == "user");
        Assert.Empty(spec.Linux.UidMappings);
    }

    [Fact]
    public void Userns_options_that_are_not_the_pods_are_refused_naming_the_field()
    {
        var context = UserNamespacedPod();
        var sandbox = PodWithOwnUserNamespace();
        Refused(() => Spec(Config(s => s.NamespaceOptions.UsernsOptions = new UserNamespace { Mode = NamespaceMode.Node }), context: context,
            sandbox: sandbox), "namespace_options.userns_options.mode", "NODE");
        Refused(() => Spec(Config(s => s.NamespaceOptions.UsernsOptions = PodOptions(131072)), context: context, sandbox: sandbox),
            "namespace_options.userns_options.uids", "differ");
        Refused(() => Spec(Config(s => s.NamespaceOptions.UsernsOptions = new UserNamespace { Mode = NamespaceMode.Container }),
            context: context, sandbox: sandbox), "namespace_options.userns_options.mode", "CONTAINER");
        var overlapping = PodOptions();
        overlapping.Uids.Add(new IDMapping { ContainerId = 100, HostId = 70000, Length = 10 });
        Refused(() => Spec(Config(s => s.NamespaceOptions.UsernsOptions = overlapping), context: context, sandbox: sandbox),
            "namespace_options.userns_options.uids[1]", "overlap");
        Refused(() => Spec(KubeletConfig(), context: Context() with { PodUserNamespace = context.PodUserNamespace }, sandbox: sandbox),
            "userns_options", "pinned");
    }

    [Fact]
    public void Volumes_carry_the_pods_mappings_and_other_mappings_are_refused()
    {
        var config = KubeletConfig();
        config.Mounts.Add(Volume("/data"));
        config.Mounts.Add(Volume("/plain", mappedTo: null));
        var spec = UserNamespacedSpec(config);
        var data = Mount(spec, "/data");
        Assert.Equal(65536u, Assert.Single(data.UidMappings!).HostId);
        Assert.Equal(65536u, Assert.Single(data.GidMappings!).HostId);
        Assert.Null(Mount(spec, "/plain").UidMappings);
        SpecValidator.Validate(spec);

        var wrong = KubeletConfig();
        wrong.Mounts.Add(Volume("/data", mappedTo: 131072));
        Refused(() => UserNamespacedSpec(wrong), "mounts[0].uidMappings", "differ");
    }

    [Fact]
    public void Bidirectional_propagation_is_refused_in_a_user_namespace()
    {
        var config = KubeletConfig();
        config.Mounts.Add(Volume("/data", MountPropagation.PropagationBidirectional));
        Refused(() => UserNamespacedSpec(config), "mounts[0].propagation", "PROPAGATION_BIDIRECTIONAL");
    }

    [Fact]
    public void Procmount_unmasked_is_honoured_in_a_user_namespace_only()
    {
        // kubelet's Unmasked: both lists empty. In the pod's own user namespace nothing is masked or read-only.
        var unmasked = UserNamespacedSpec(Config(s => s.NamespaceOptions.UsernsOptions = PodOptions()));
        Assert.Empty(unmasked.Linux!.MaskedPaths);
        Assert.Empty(unmasked.Linux.ReadonlyPaths);

        // Default in the same pod: the lists kubelet sends.
        var masked = UserNamespacedSpec();
        Assert.Equal([LinuxDefaultsMasked], masked.Linux!.MaskedPaths);
        Assert.Equal(["/proc/sys"], masked.Linux.ReadonlyPaths);

        // Elsewhere Unmasked cannot have been asked for: two empty lists get runc's defaults.
        var hostUsers = Spec(Config());
        Assert.Contains("/proc/kcore", hostUsers.Linux!.MaskedPaths);
        Assert.Contains("/proc/sys", hostUsers.Linux.ReadonlyPaths);
    }
}

/// <summary>Propagation modes hold what they promise or are refused (FailedPrecondition naming the mount).</summary>
public sealed class PropagationTranslationTests
{
    private static ContainerConfig WithMount(MountPropagation propagation)
    {
        var config = Config();
        config.Mounts.Add(new Mount { ContainerPath = "/data", HostPath = "/srv/data", Propagation = propagation });
        return config;
    }

    [Fact]
    public void Bidirectional_needs_the_host_path_on_a_shared_mount()
    {
        var slave = new FakeHost { HostMount = new MountEntry(9, "/srv", Shared: false, Slave: true) };
        var error = Refused(ErrorKind.FailedPrecondition, () => Spec(WithMount(MountPropagation.PropagationBidirectional), host: slave),
            "mounts[0]", "/srv/data", "'/srv'", "shared mount");
        Assert.Contains("PROPAGATION_BIDIRECTIONAL", error.Message, StringComparison.Ordinal);
        Assert.Equal(["rbind", "rslave", "rw"], Mount(Spec(WithMount(MountPropagation.PropagationHostToContainer), host: slave), "/data").Options);
    }

    [Fact]
    public void Host_to_container_needs_a_shared_or_slave_mount()
    {
        var isolated = new FakeHost { HostMount = new MountEntry(9, "/srv", Shared: false, Slave: false) };
        Refused(ErrorKind.FailedPrecondition, () => Spec(WithMount(MountPropagation.PropagationHostToContainer), host: isolated),
            "mounts[0]", "/srv/data", "shared or slave");
        Assert.Equal(["rbind", "rprivate", "rw"], Mount(Spec(WithMount(MountPropagation.PropagationPrivate), host: isolated), "/data").Options);
    }
}
