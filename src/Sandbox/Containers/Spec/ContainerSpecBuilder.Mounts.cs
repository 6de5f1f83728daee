using Nacelle.Common;
using Nacelle.ContainerCore.Spec;
using Nacelle.Sandbox.Store;

namespace Nacelle.Sandbox.Containers.Spec;

/// <summary>The spec's mounts: the runtime's defaults, the pod's files (/etc/hostname, hosts, resolv.conf, /dev/shm) and the requested mounts, parents before children.</summary>
public sealed partial class ContainerSpecBuilder
{
    private static List<SpecMount> Mounts(
        IReadOnlyList<MountRequest> requestedMounts, SecurityRequest sc, NamespaceOptions ns, bool privileged, ContainerSpecContext context)
    {
        var requested = new List<SpecMount>();
        var destinations = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < requestedMounts.Count; i++)
        {
            var mount = UserMount(requestedMounts[i], $"mounts[{i}]");
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

    private static SpecMount UserMount(MountRequest mount, string at)
    {
        if (!string.IsNullOrEmpty(mount.ImageVolume))
        {
            throw NacelleException.Unimplemented($"{at}.image: image volumes are not supported (\"{mount.ImageVolume}\")");
        }

        if (mount.IdMapped)
        {
            throw NacelleException.Unimplemented($"{at}.uidMappings: id-mapped mounts are not supported");
        }

        var destination = CleanAbsolute(mount.ContainerPath, $"{at}.container_path");
        if (destination == "/")
        {
            throw Invalid($"{at}.container_path", "must not be /");
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

        // selinux_relabel is ignored: nacelle does not run with SELinux labels.
        return Bind(destination, mount.HostPath, propagation, mount.Readonly, mount.RecursiveReadOnly);
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
