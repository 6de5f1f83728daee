using Nacelle.ContainerCore.Spec;
using Nacelle.Sandbox.Store;

namespace Nacelle.Sandbox.Namespaces;

/// <summary>How a pod shares namespaces with the node (CRI NamespaceOption, in domain terms); <paramref name="User"/> is
/// the pod's own user namespace (null: the node's).</summary>
/// <param name="NetworkPath">A network namespace made before pause-init (<see cref="NamespacePins.PinNewNetwork"/>), which it
/// joins instead of creating one; null: pause-init's own (or the node's).</param>
public sealed record PodNamespaces(bool HostNetwork, bool HostPid, bool HostIpc, bool SharedPid, UserNamespaceOption? User = null,
    string? NetworkPath = null);

/// <summary>
/// The OCI spec of a pod's pause-init: /pause (nacelle-pause) on a read-only root that holds nothing else, in new
/// net/uts/ipc namespaces unless the pod uses the node's (the network namespace may be one made for it before, which it
/// joins), a new pid namespace when the pod shares one (then it reaps
/// as PID 1), its own mount namespace, no capabilities and no_new_privs. The pod's hostname and sysctls are applied
/// in its namespaces. A pod of its own user namespace gets it here, with kubelet's mappings, in the same clone as the
/// others (so they belong to it: sysfs, mqueue and proc can be mounted in its containers), and then pause-init always
/// has a pid namespace of its own (a proc mount needs a pid namespace its user namespace owns).
/// </summary>
public static class PauseSpec
{
    /// <summary>The name of the pause binary beside the daemon, and inside the pause root.</summary>
    public const string Binary = "nacelle-pause";

    private static readonly Lock CopyGate = new();

    /// <summary>Makes (once) the pause root: an empty directory with /pause and the /proc and /dev mount points.</summary>
    public static string PrepareRoot(string directory, string? pauseBinary = null)
    {
        pauseBinary ??= Path.Combine(AppContext.BaseDirectory, Binary);
        var target = Path.Combine(directory, "pause");
        System.IO.Directory.CreateDirectory(Path.Combine(directory, "proc"));
        System.IO.Directory.CreateDirectory(Path.Combine(directory, "dev"));
        // One copy at a time: pods run at once on a fresh node all find no binary, and two copies into the one temporary
        // file collide. The rename puts it in place whole, so a pause-init starting meanwhile sees the old file or the new.
        lock (CopyGate)
        {
            if (!File.Exists(target) || new FileInfo(target).Length != new FileInfo(pauseBinary).Length)
            {
                var temp = target + ".tmp";
                File.Copy(pauseBinary, temp, overwrite: true);
                File.SetUnixFileMode(temp, (UnixFileMode)0b111_101_101);
                File.Move(temp, target, overwrite: true);
            }
        }

        return directory;
    }

    public static RuntimeSpec Create(string root, PodNamespaces namespaces, string? hostname, IReadOnlyDictionary<string, string> sysctls,
        string? cgroupsPath)
    {
        ArgumentNullException.ThrowIfNull(namespaces);
        ArgumentNullException.ThrowIfNull(sysctls);
        var list = new List<SpecNamespace> { new() { Type = "mount" } };
        if (!namespaces.HostNetwork)
        {
            list.Add(new SpecNamespace { Type = "network", Path = namespaces.NetworkPath });
            list.Add(new SpecNamespace { Type = "uts" });
        }

        if (!namespaces.HostIpc)
        {
            list.Add(new SpecNamespace { Type = "ipc" });
        }

        if ((namespaces.SharedPid || namespaces.User is not null) && !namespaces.HostPid)
        {
            list.Add(new SpecNamespace { Type = "pid" });
        }

        if (namespaces.User is not null)
        {
            list.Add(new SpecNamespace { Type = "user" });
        }

        return new RuntimeSpec
        {
            Process = new SpecProcess
            {
                Args = ["/pause"],
                Cwd = "/",
                NoNewPrivileges = true,
                Capabilities = new SpecCapabilities(),
                OomScoreAdj = -998,
            },
            Root = new SpecRoot { Path = root, Readonly = true },
            Hostname = namespaces.HostNetwork ? null : hostname,
            // /proc for the sysctls, a tmpfs /dev for /dev/null (the source that masks files in /proc).
            Mounts =
            [
                new SpecMount { Destination = "/proc", Type = "proc", Source = "proc", Options = ["nosuid", "noexec", "nodev"] },
                new SpecMount { Destination = "/dev", Type = "tmpfs", Source = "tmpfs", Options = ["nosuid", "noexec", "mode=755", "size=64k"] },
            ],
            Linux = new SpecLinux
            {
                Namespaces = list,
                Sysctl = new Dictionary<string, string>(sysctls, StringComparer.Ordinal),
                CgroupsPath = cgroupsPath,
                UidMappings = namespaces.User?.UidSpec() ?? [],
                GidMappings = namespaces.User?.GidSpec() ?? [],
                MaskedPaths = [.. SpecDefaults.MaskedPaths.Where(p => p.StartsWith("/proc", StringComparison.Ordinal))],
                ReadonlyPaths = [.. SpecDefaults.ReadonlyPaths],
            },
        };
    }
}
