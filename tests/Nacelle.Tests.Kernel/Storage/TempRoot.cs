namespace Nacelle.Tests.Kernel.Storage;

/// <summary>A temporary nacelle root under /var/tmp (ext4: overlay, xattrs and devices work), removed afterwards.</summary>
public sealed class TempRoot : IDisposable
{
    public TempRoot() => Path = Directory.CreateTempSubdirectory("nacelle-kernel-").FullName;

    public string Path { get; }

    public void Dispose()
    {
        // Unmount anything a failed test left mounted below the root before deleting it.
        foreach (var line in File.ReadAllLines("/proc/self/mountinfo").Reverse())
        {
            var mountPoint = line.Split(' ')[4];
            if (mountPoint.StartsWith(Path + "/", StringComparison.Ordinal))
            {
                Nacelle.ContainerCore.Interop.Mounts.Unmount(mountPoint);
            }
        }

        Directory.Delete(Path, recursive: true);
    }
}
