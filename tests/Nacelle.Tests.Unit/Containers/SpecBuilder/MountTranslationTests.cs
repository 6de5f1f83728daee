using Nacelle.Common;
using Runtime.V1;
using static Nacelle.Tests.Unit.Containers.SpecBuilder.Fx;

namespace Nacelle.Tests.Unit.Containers.SpecBuilder;

public sealed class MountTranslationTests
{
    private static ContainerConfig WithMounts(params Mount[] mounts)
    {
        var config = Config();
        config.Mounts.AddRange(mounts);
        return config;
    }

    [Fact]
    public void TheStandardMountsArePresentWithTheirOptions()
    {
        var spec = Spec();

        Assert.Equal(
            ["/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys", "/sys/fs/cgroup"],
            spec.Mounts.Take(6).Select(m => m.Destination));
        Assert.Equal("proc", Mount(spec, "/proc").Type);
        var dev = Mount(spec, "/dev");
        Assert.Equal("tmpfs", dev.Type);
        Assert.Contains("mode=755", dev.Options);
        Assert.Contains("size=65536k", dev.Options);
        var pts = Mount(spec, "/dev/pts");
        Assert.Equal("devpts", pts.Type);
        Assert.Equal(["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"], pts.Options);
        Assert.Equal("mqueue", Mount(spec, "/dev/mqueue").Type);
        var sys = Mount(spec, "/sys");
        Assert.Equal("sysfs", sys.Type);
        Assert.Contains("ro", sys.Options);
        var cgroup = Mount(spec, "/sys/fs/cgroup");
        Assert.Equal("cgroup2", cgroup.Type);
        Assert.Contains("ro", cgroup.Options);
    }

    [Fact]
    public void CgroupV1NodesGetACgroupMount()
    {
        var spec = Spec(context: Context() with { CgroupV2 = false });
        Assert.Equal("cgroup", Mount(spec, "/sys/fs/cgroup").Type);
    }

    [Fact]
    public void PrivilegedContainersGetWritableSysfsAndCgroupfs()
    {
        var spec = Spec(Config(s => s.Privileged = true), sandbox: PodConfig(privileged: true));
        Assert.Contains("rw", Mount(spec, "/sys").Options);
        Assert.DoesNotContain("ro", Mount(spec, "/sys").Options);
        Assert.Contains("rw", Mount(spec, "/sys/fs/cgroup").Options);
        Assert.DoesNotContain("ro", Mount(spec, "/sys/fs/cgroup").Options);
    }

    [Fact]
    public void ThePodFilesAreBoundFromThePod()
    {
        var spec = Spec();
        Assert.Equal("/run/nacelle/pods/pod1/hosts", Mount(spec, "/etc/hosts").Source);
        Assert.Equal("/run/nacelle/pods/pod1/resolv.conf", Mount(spec, "/etc/resolv.conf").Source);
        Assert.Equal("/run/nacelle/pods/pod1/hostname", Mount(spec, "/etc/hostname").Source);
        var shm = Mount(spec, "/dev/shm");
        Assert.Equal("/run/nacelle/pods/pod1/shm", shm.Source);
        Assert.Equal("bind", shm.Type);
        Assert.Contains("rw", shm.Options);
        Assert.Contains("rw", Mount(spec, "/etc/hosts").Options);
    }

    [Fact]
    public void ThePodFilesAreReadOnlyWithAReadOnlyRootfs()
    {
        var spec = Spec(Config(s => s.ReadonlyRootfs = true));
        Assert.Contains("ro", Mount(spec, "/etc/hosts").Options);
        Assert.Contains("ro", Mount(spec, "/etc/resolv.conf").Options);
        Assert.Contains("ro", Mount(spec, "/etc/hostname").Options);
        Assert.Contains("rw", Mount(spec, "/dev/shm").Options);
    }

    [Fact]
    public void MissingPodFilesAreSkipped()
    {
        var spec = Spec(context: Context() with { HostnamePath = null });
        Assert.DoesNotContain(spec.Mounts, m => m.Destination == "/etc/hostname");
    }

    [Fact]
    public void UserMountsOverrideDefaultsAtTheSameDestination()
    {
        var spec = Spec(WithMounts(
            new Mount { ContainerPath = "/etc/hosts", HostPath = "/var/lib/kubelet/pods/x/etc-hosts" },
            new Mount { ContainerPath = "/dev/shm", HostPath = "/big/shm" },
            new Mount { ContainerPath = "/sys", HostPath = "/host/sys", Readonly = true }));

        Assert.Equal("/var/lib/kubelet/pods/x/etc-hosts", Mount(spec, "/etc/hosts").Source);
        Assert.Equal("/big/shm", Mount(spec, "/dev/shm").Source);
        Assert.Equal("/host/sys", Mount(spec, "/sys").Source);
        Assert.Equal("bind", Mount(spec, "/sys").Type);
    }

    [Fact]
    public void AUserDevMountReplacesEveryDefaultUnderDev()
    {
        var spec = Spec(WithMounts(new Mount { ContainerPath = "/dev", HostPath = "/dev" }));
        Assert.Equal("bind", Mount(spec, "/dev").Type);
        Assert.DoesNotContain(spec.Mounts, m => m.Destination.StartsWith("/dev/", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(MountPropagation.PropagationPrivate, "rprivate", null)]
    [InlineData(MountPropagation.PropagationHostToContainer, "rslave", "rslave")]
    [InlineData(MountPropagation.PropagationBidirectional, "rshared", "rshared")]
    public void PropagationMapsToLinuxModes(MountPropagation propagation, string option, string? rootfsPropagation)
    {
        var spec = Spec(WithMounts(new Mount { ContainerPath = "/data", HostPath = "/srv/data", Propagation = propagation }));
        var mount = Mount(spec, "/data");
        Assert.Equal("bind", mount.Type);
        Assert.Equal("/srv/data", mount.Source);
        Assert.Equal(["rbind", option, "rw"], mount.Options);
        Assert.Equal(rootfsPropagation, spec.Linux!.RootfsPropagation);
    }

    [Fact]
    public void ReadonlyAndRecursiveReadOnly()
    {
        var spec = Spec(WithMounts(
            new Mount { ContainerPath = "/ro", HostPath = "/srv/ro", Readonly = true },
            new Mount { ContainerPath = "/rro", HostPath = "/srv/rro", Readonly = true, RecursiveReadOnly = true }));
        Assert.Equal(["rbind", "rprivate", "ro"], Mount(spec, "/ro").Options);
        Assert.Equal(["rbind", "rprivate", "ro", "rro"], Mount(spec, "/rro").Options);
    }

    [Fact]
    public void RecursiveReadOnlyNeedsReadonlyAndPrivatePropagation()
    {
        Refused(() => Spec(WithMounts(
            new Mount { ContainerPath = "/ok", HostPath = "/srv/ok" },
            new Mount { ContainerPath = "/data", HostPath = "/srv/data", RecursiveReadOnly = true })), "mounts[1].recursive_read_only", "/data");
        Refused(() => Spec(WithMounts(new Mount
        {
            ContainerPath = "/data", HostPath = "/srv/data", Readonly = true, RecursiveReadOnly = true,
            Propagation = MountPropagation.PropagationHostToContainer,
        })), "mounts[0].recursive_read_only", "PROPAGATION_PRIVATE");
    }

    [Fact]
    public void SelinuxRelabelIsIgnored()
    {
        var spec = Spec(WithMounts(new Mount { ContainerPath = "/data", HostPath = "/srv/data", SelinuxRelabel = true }));
        Assert.Equal(["rbind", "rprivate", "rw"], Mount(spec, "/data").Options);
    }

    [Theory]
    [InlineData("data", "/srv", "mounts[0].container_path")]
    [InlineData("", "/srv", "mounts[0].container_path")]
    [InlineData("/a/../etc", "/srv", "mounts[0].container_path")]
    [InlineData("/", "/srv", "mounts[0].container_path")]
    [InlineData("/data", "", "mounts[0].host_path")]
    [InlineData("/data", "srv", "mounts[0].host_path")]
    public void BadMountPathsAreRefusedNamingTheField(string containerPath, string hostPath, string field)
    {
        Refused(() => Spec(WithMounts(new Mount { ContainerPath = containerPath, HostPath = hostPath })), field);
    }

    /// <summary>Found by the CRI fuzzer: a container_path over PATH_MAX (or with a component over NAME_MAX) reached the
    /// spawn helper, whose mount point failed with ENAMETOOLONG, and CreateContainer answered Internal.</summary>
    [Fact]
    public void MountPathsOverTheKernelsPathLimitsAreRefusedNamingTheField()
    {
        var deep = "/mnt/" + string.Concat(Enumerable.Repeat("d/", 2100)) + "x";
        Refused(() => Spec(WithMounts(new Mount { ContainerPath = deep, HostPath = "/srv" })), "mounts[0].container_path", "PATH_MAX");
        Refused(() => Spec(WithMounts(new Mount { ContainerPath = "/" + new string('n', 256), HostPath = "/srv" })), "mounts[0].container_path", "NAME_MAX");
    }

    [Fact]
    public void ContainerPathsAreCleanedAndDuplicatesRefused()
    {
        var spec = Spec(WithMounts(new Mount { ContainerPath = "//data/./x/", HostPath = "/srv" }));
        Assert.Equal("/srv", Mount(spec, "/data/x").Source);
        Refused(() => Spec(WithMounts(
            new Mount { ContainerPath = "/data", HostPath = "/a" },
            new Mount { ContainerPath = "/data/", HostPath = "/b" })), "mounts[1].container_path", "twice");
    }

    /// <summary>Found by the CRI fuzzer: a volume at /proc failed the container's setup with Internal (masking a path
    /// of the volume); a volume in place of the kernel's /proc is refused up front, as runc does.</summary>
    [Theory]
    [InlineData("/proc")]
    [InlineData("/proc/")]
    [InlineData("/proc/self")]
    [InlineData("/proc/sys/kernel")]
    public void VolumesInPlaceOfProcAreRefused(string path) =>
        Refused(() => Spec(WithMounts(new Mount { ContainerPath = path, HostPath = "/srv" })), "mounts[0].container_path", "procfs");

    /// <summary>Found by the CRI fuzzer (default seed): a directory volume at /dev/null failed CreateContainer with
    /// Internal when a masked file was bound over with it (ENOTDIR).</summary>
    [Fact]
    public void AVolumeInPlaceOfDevNullIsRefused() =>
        Refused(() => Spec(WithMounts(new Mount { ContainerPath = "/dev/./null", HostPath = "/srv" })), "mounts[0].container_path", "null device");

    [Fact]
    public void LxcfsStyleVolumesOverProcFilesAreAccepted()
    {
        var spec = Spec(WithMounts(new Mount { ContainerPath = "/proc/meminfo", HostPath = "/var/lib/lxcfs/proc/meminfo", Readonly = true }));
        Assert.Equal("/var/lib/lxcfs/proc/meminfo", Mount(spec, "/proc/meminfo").Source);
        Assert.Equal("/srv", Mount(Spec(WithMounts(new Mount { ContainerPath = "/procdata", HostPath = "/srv" })), "/procdata").Source);
    }

    [Fact]
    public void ImageVolumesAreUnsupportedAndIdMappedMountsNeedAUserNamespacedPod()
    {
        Refused(ErrorKind.Unimplemented, () => Spec(WithMounts(new Mount
        {
            ContainerPath = "/models", Image = new ImageSpec { Image = "registry/models:1" },
        })), "mounts[0].image", "image volumes");
        var idmapped = new Mount { ContainerPath = "/data", HostPath = "/srv" };
        idmapped.UidMappings.Add(new IDMapping { ContainerId = 0, HostId = 100000, Length = 65536 });
        idmapped.GidMappings.Add(new IDMapping { ContainerId = 0, HostId = 100000, Length = 65536 });
        Refused(() => Spec(WithMounts(idmapped)), "mounts[0].uidMappings", "hostUsers: false");
    }

    [Fact]
    public void ParentsAreMountedBeforeChildren()
    {
        var spec = Spec(WithMounts(
            new Mount { ContainerPath = "/a/b/c", HostPath = "/x/c" },
            new Mount { ContainerPath = "/a", HostPath = "/x/a" },
            new Mount { ContainerPath = "/a/b", HostPath = "/x/b" }));
        var order = spec.Mounts.Select(m => m.Destination).Where(d => d.StartsWith("/a", StringComparison.Ordinal)).ToList();
        Assert.Equal(["/a", "/a/b", "/a/b/c"], order);
    }

    [Fact]
    public void HostIpcUsesTheHostsShmAndAPrivateIpcGetsItsOwn()
    {
        var host = Spec(Config(s => s.NamespaceOptions.Ipc = NamespaceMode.Node));
        Assert.Equal("/dev/shm", Mount(host, "/dev/shm").Source);
        Assert.Equal("bind", Mount(host, "/dev/shm").Type);

        var own = Spec(Config(s => s.NamespaceOptions.Ipc = NamespaceMode.Container));
        Assert.Equal("tmpfs", Mount(own, "/dev/shm").Type);
        Assert.Contains("mode=1777", Mount(own, "/dev/shm").Options);
    }
}
