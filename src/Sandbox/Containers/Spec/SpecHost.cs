using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Mounts;

namespace Nacelle.Sandbox.Containers.Spec;

/// <summary>
/// The only host I/O the spec builder does, injectable for tests: reading a Localhost seccomp profile, looking at the
/// device nodes a container asks for (their numbers are part of the spec), for privileged containers listing the
/// host's devices, and the propagation of the mount a volume's host path is on.
/// </summary>
public interface ISpecHost
{
    /// <summary>The text of the profile file at <paramref name="path"/>; throws (any exception) when it cannot be read.</summary>
    string ReadSeccompProfile(string path);

    /// <summary>The device node at <paramref name="hostPath"/> (symlinks followed), or null when it is missing or not a
    /// character/block device.</summary>
    HostDevice? StatDevice(string hostPath);

    /// <summary>Every device node under the host's /dev (privileged containers get them all).</summary>
    IReadOnlyList<HostDevice> ListHostDevices();

    /// <summary>The host mount <paramref name="path"/> is on (its propagation), or null when the path does not exist.</summary>
    MountEntry? MountOf(string path);
}

/// <summary>The real host: reads profile files and stats device nodes (through ContainerCore's interop).</summary>
public sealed class SpecHost : ISpecHost
{
    public static SpecHost Instance { get; } = new();

    public string ReadSeccompProfile(string path) => File.ReadAllText(path);

    public MountEntry? MountOf(string path) => MountTable.MountOf(path);

    public HostDevice? StatDevice(string hostPath)
    {
        string resolved;
        try
        {
            resolved = File.ResolveLinkTarget(hostPath, returnFinalTarget: true)?.FullName ?? hostPath;
        }
        catch (Exception e) when (e is IOException or ArgumentException)
        {
            return null; // missing, unreadable, or not a path at all (a NUL in it)
        }

        return Describe(resolved, resolved);
    }

    public IReadOnlyList<HostDevice> ListHostDevices()
    {
        var devices = new List<HostDevice>();
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = 0 };
        foreach (var path in Directory.EnumerateFiles("/dev", "*", options))
        {
            // Like containerd: skip the pty slaves and the shm/mqueue file systems, which the container has its own of.
            if (path.StartsWith("/dev/pts/", StringComparison.Ordinal) || path.StartsWith("/dev/shm/", StringComparison.Ordinal)
                || path.StartsWith("/dev/mqueue/", StringComparison.Ordinal) || path == "/dev/console" || path == "/dev/ptmx")
            {
                continue;
            }

            try
            {
                if (Describe(path, path) is { } device)
                {
                    devices.Add(device);
                }
            }
            catch (IOException)
            {
                // vanished or unreadable: not offered
            }
        }

        return devices;
    }

    private static HostDevice? Describe(string statPath, string reportedPath)
    {
        if (FileSystemCalls.Status(statPath) is not { } status)
        {
            return null;
        }

        var type = (status.Mode & 0xF000) switch
        {
            0x2000 => 'c',
            0x6000 => 'b',
            _ => '\0',
        };
        return type == '\0'
            ? null
            : new HostDevice(reportedPath, type, status.RdevMajor, status.RdevMinor, status.Mode & 0x1FF, status.Uid, status.Gid);
    }
}
