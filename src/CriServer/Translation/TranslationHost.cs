using Nacelle.ContainerCore.Interop;

namespace Nacelle.CriServer.Translation;

/// <summary>The real host: reads profile files and stats device nodes (through ContainerCore's interop).</summary>
public sealed class TranslationHost : ITranslationHost
{
    public static TranslationHost Instance { get; } = new();

    public string ReadSeccompProfile(string path) => File.ReadAllText(path);

    public HostDevice? StatDevice(string hostPath)
    {
        string resolved;
        try
        {
            resolved = File.ResolveLinkTarget(hostPath, returnFinalTarget: true)?.FullName ?? hostPath;
        }
        catch (IOException)
        {
            return null;
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
