using Nacelle.Common;
using Nacelle.ContainerCore.Mounts;
using Nacelle.ContainerCore.Spec;
using Nacelle.Sandbox.Store;

namespace Nacelle.Sandbox.Containers.Spec;

/// <summary>The spec's mounts: the runtime's defaults, the pod's files (/etc/hostname, hosts, resolv.conf, /dev/shm) and the requested mounts, parents before children.</summary>
public sealed partial class ContainerSpecBuilder
{
    private List<SpecMount> Mounts(IReadOnlyList<MountRequest> requestedMounts, SecurityRequest sc, NamespaceOptions ns, bool privileged,
        ContainerSpecContext context, UserNamespaceOption? userNamespace)
    {
        var requested = new List<SpecMount>();
        var destinations = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < requestedMounts.Count; i++)
        {
            var mount = UserMount(requestedMounts[i], $"mounts[{i}]", userNamespace);
            if (!destinations.Add(mount.Destination))
            {
                throw Invalid($"mounts[{i}].container_path", $"'{mount.Destination}' is mounted twice");
            }

            requested.Add(mount);
        }

        // The pod's files, unless the container mounts something there itself (containerd: read-only with the rootfs).
        var extra = new List<SpecMount>();
        void PodFile(string destination, string? source, bool readOnly)
        {
            if (!string.IsNullOrEmpty(source) && !destinations.Contains(destination))
            {
                extra.Add(Bind(destination, source, "rprivate", readOnly, recursiveReadOnly: false));
            }
        }

        PodFile("/etc/hostname", context.HostnamePath, sc.ReadonlyRootfs);
        PodFile("/etc/hosts", context.HostsPath, sc.ReadonlyRootfs);
        PodFile("/etc/resolv.conf", context.ResolvConfPath, sc.ReadonlyRootfs);
        if (!destinations.Contains("/dev/shm") && !destinations.Contains("/dev"))
        {
            var shm = ns.Ipc switch
            {
                PodNamespaceMode.Node => "/dev/shm",
                PodNamespaceMode.Pod => context.ShmPath,
                _ => null,
            };
            extra.Add(string.IsNullOrEmpty(shm) ? LinuxDefaults.CreateShmTmpfs() : Bind("/dev/shm", shm, "rprivate", false, false));
        }

        // Parents before children: stable order by depth (containerd's orderedMounts).
        var ordered = extra.Concat(requested).OrderBy(m => Depth(m.Destination)).ToList();
        var all = new HashSet<string>(ordered.Select(m => m.Destination), StringComparer.Ordinal);
        var mounts = LinuxDefaults.CreateMounts(privileged, context.CgroupV2)
            .Where(m => !all.Contains(m.Destination) && !(all.Contains("/dev") && m.Destination.StartsWith("/dev/", StringComparison.Ordinal)))
            .ToList();
        mounts.AddRange(ordered);
        return mounts;
    }

    private SpecMount UserMount(MountRequest mount, string at, UserNamespaceOption? userNamespace)
    {
        if (!string.IsNullOrEmpty(mount.ImageVolume))
        {
            throw NacelleException.Unimplemented($"{at}.image: image volumes are not supported (\"{mount.ImageVolume}\")");
        }

        var idmapped = IdmappedMount(mount, at, userNamespace);

        var destination = CleanAbsolute(mount.ContainerPath, $"{at}.container_path");
        if (destination == "/")
        {
            throw Invalid($"{at}.container_path", "must not be /");
        }

        if (destination == "/dev/null")
        {
            // Masked paths that are files are hidden by binding the container's /dev/null over them: a volume in its
            // place (a directory, say) failed the container's setup half way (ENOTDIR).
            throw Invalid($"{at}.container_path", "'/dev/null' must stay the null device: masked paths are hidden by binding it over them");
        }

        if ((destination == "/proc" || destination.StartsWith("/proc/", StringComparison.Ordinal)) && !ProcFilesVolumesMayCover.Contains(destination))
        {
            // As runc: a volume in place of the kernel's /proc could feed the container's setup a fake one (security
            // labels and masks are written through /proc). lxcfs-style setups cover only the files listed.
            throw Invalid($"{at}.container_path",
                $"'{destination}' is in the container's /proc, which only the kernel's procfs fills; a volume may cover only {string.Join(", ", ProcFilesVolumesMayCover)}");
        }

        if (string.IsNullOrEmpty(mount.HostPath))
        {
            throw Invalid($"{at}.host_path", "must not be empty");
        }

        if (!mount.HostPath.StartsWith('/'))
        {
            throw Invalid($"{at}.host_path", $"'{mount.HostPath}' must be absolute");
        }

        var propagation = mount.Propagation switch
        {
            MountPropagation.Private => "rprivate",
            MountPropagation.HostToContainer => "rslave",
            MountPropagation.Bidirectional => "rshared",
            _ => throw Invalid($"{at}.propagation", $"unknown propagation {(int)mount.Propagation}"),
        };

        if (mount.RecursiveReadOnly)
        {
            if (!mount.Readonly)
            {
                throw Invalid($"{at}.recursive_read_only", $"'{destination}' asks for a recursive read-only mount without readonly");
            }

            if (mount.Propagation != MountPropagation.Private)
            {
                throw Invalid($"{at}.recursive_read_only", $"'{destination}' asks for a recursive read-only mount with propagation {propagation}; it needs PROPAGATION_PRIVATE");
            }
        }

        CheckPropagation(mount, at, userNamespace);

        // selinux_relabel is ignored: nacelle does not run with SELinux labels.
        var bind = Bind(destination, mount.HostPath, propagation, mount.Readonly, mount.RecursiveReadOnly);
        if (idmapped)
        {
            bind.UidMappings = userNamespace!.UidSpec();
            bind.GidMappings = userNamespace.GidSpec();
        }

        return bind;
    }

    /// <summary>
    /// uid/gid mappings on a mount: kubelet sends its pod's own, for the volumes of a pod in a user namespace of its own,
    /// and the mount is then idmapped with that namespace (files keep on disk the ids the container sees). Anything else
    /// is refused. True when the mount is idmapped.
    /// </summary>
    private static bool IdmappedMount(MountRequest mount, string at, UserNamespaceOption? userNamespace)
    {
        if (mount.UidMappings.Count == 0 && mount.GidMappings.Count == 0)
        {
            return false;
        }

        if (userNamespace is null)
        {
            throw Invalid($"{at}.uidMappings", "an idmapped mount needs a pod in a user namespace of its own (hostUsers: false)");
        }

        if (!mount.UidMappings.SequenceEqual(userNamespace.Uids) || !mount.GidMappings.SequenceEqual(userNamespace.Gids))
        {
            var which = mount.UidMappings.SequenceEqual(userNamespace.Uids) ? "gidMappings" : "uidMappings";
            throw Invalid($"{at}.{which}", "differ from the pod's user namespace mappings, which nacelle idmaps a volume with");
        }

        return true;
    }

    /// <summary>
    /// What a propagation mode promises must hold, or the mount is refused rather than quietly private: BIDIRECTIONAL
    /// needs the host path on a shared mount (its mounts and the container's then reach each other) and never goes
    /// with a user namespace of the pod's own; HOST_TO_CONTAINER needs a shared or slave one (containerd's rules).
    /// A host path that does not exist is left to the core, which refuses it naming the mount.
    /// </summary>
    private void CheckPropagation(MountRequest mount, string at, UserNamespaceOption? userNamespace)
    {
        if (mount.Propagation == MountPropagation.Private)
        {
            return;
        }

        if (mount.Propagation == MountPropagation.Bidirectional && userNamespace is not null)
        {
            throw Invalid($"{at}.propagation",
                "PROPAGATION_BIDIRECTIONAL cannot be used in a pod of its own user namespace: mounts made there must not reach the node");
        }

        if (host.MountOf(mount.HostPath) is not { } on)
        {
            return;
        }

        if (mount.Propagation == MountPropagation.Bidirectional && !on.Shared)
        {
            throw NacelleException.FailedPrecondition(
                $"{at}: host path '{mount.HostPath}' is on the mount at '{on.MountPoint}', which is not a shared mount; " +
                "PROPAGATION_BIDIRECTIONAL needs the host path on a shared mount (mount --make-shared or --make-rshared)");
        }

        if (mount.Propagation == MountPropagation.HostToContainer && !on.Shared && !on.Slave)
        {
            throw NacelleException.FailedPrecondition(
                $"{at}: host path '{mount.HostPath}' is on the mount at '{on.MountPoint}', which is private; " +
                "PROPAGATION_HOST_TO_CONTAINER needs the host path on a shared or slave mount");
        }
    }

    private static SpecMount Bind(string destination, string source, string propagation, bool readOnly, bool recursiveReadOnly)
    {
        var options = new List<string> { "rbind", propagation, readOnly ? "ro" : "rw" };
        if (recursiveReadOnly)
        {
            options.Add("rro");
        }

        return new SpecMount { Destination = destination, Type = "bind", Source = source, Options = options };
    }

    /// <summary>The /proc files a volume may cover (what lxcfs provides, the same list runc accepts).</summary>
    private static readonly string[] ProcFilesVolumesMayCover =
    [
        "/proc/cpuinfo", "/proc/diskstats", "/proc/loadavg", "/proc/meminfo", "/proc/slabinfo", "/proc/stat", "/proc/swaps", "/proc/uptime",
    ];

    private static int Depth(string path) => path.Split('/', StringSplitOptions.RemoveEmptyEntries).Length;

    /// <summary>An absolute path without empty or "." components; ".." is refused.</summary>
    private static string CleanAbsolute(string path, string field)
    {
        if (string.IsNullOrEmpty(path))
        {
            throw Invalid(field, "must not be empty");
        }

        if (!path.StartsWith('/'))
        {
            throw Invalid(field, $"'{path}' must be absolute");
        }

        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".").ToList();
        if (parts.Contains(".."))
        {
            throw Invalid(field, $"'{path}' must not contain '..'");
        }

        var clean = "/" + string.Join('/', parts);
        return PathLimits.Exceeded(clean) is { } why ? throw Invalid(field, why) : clean;
    }
}
