using Nacelle.Common;
using Nacelle.ContainerCore.Spec;

namespace Nacelle.ContainerCore.Runtime.Oci;

/// <summary>
/// The bundle an external OCI runtime gets: a directory holding config.json, nacelle's runtime spec of the container
/// with the rootfs nacelle prepared (already mounted) named by absolute path and the cgroup nacelle chose named
/// explicitly, so the runtime creates the very cgroup nacelle then reads stats from, freezes and updates.
/// The pod's namespaces are joined by path as the spec says (network, ipc, uts, pid when shared, the pod's user
/// namespace), exactly as the built-in core joins them.
/// </summary>
public static class OciBundle
{
    /// <summary>
    /// The spec as written to the runtime's config.json: a copy of <paramref name="spec"/> with root.path made absolute
    /// against <paramref name="specBundle"/> (where relative paths of the original spec resolve) and linux.cgroupsPath
    /// set to <paramref name="cgroupsPath"/>.
    /// </summary>
    public static RuntimeSpec Prepare(RuntimeSpec spec, string specBundle, string cgroupsPath)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var root = RootPath(spec, specBundle);
        var copy = RuntimeSpecFile.Parse(RuntimeSpecFile.Serialize(spec), "bundle spec");
        copy.Root!.Path = root;
        copy.Linux ??= new SpecLinux();
        copy.Linux.CgroupsPath = cgroupsPath;
        return copy;
    }

    /// <summary>The container's root file system as the bundle names it: root.path made absolute against
    /// <paramref name="specBundle"/>; a spec without one is InvalidArgument.</summary>
    public static string RootPath(RuntimeSpec spec, string specBundle)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var root = spec.Root?.Path;
        if (string.IsNullOrEmpty(root))
        {
            throw NacelleException.InvalidArgument("root.path: an external runtime needs the container's root file system");
        }

        return Path.IsPathRooted(root) ? root : Path.GetFullPath(Path.Combine(specBundle, root));
    }

    /// <summary>Writes <paramref name="directory"/>/config.json for <paramref name="spec"/> (see <see cref="Prepare"/>);
    /// returns the bundle directory.</summary>
    public static string Write(string directory, RuntimeSpec spec, string specBundle, string cgroupsPath)
    {
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, "config.json");
        var temp = path + ".tmp";
        File.WriteAllText(temp, RuntimeSpecFile.Serialize(Prepare(spec, specBundle, cgroupsPath)));
        File.Move(temp, path, overwrite: true);
        return directory;
    }
}
