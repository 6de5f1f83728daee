using Microsoft.Win32.SafeHandles;
using Nacelle.ContainerCore.Interop;

namespace Nacelle.ImageService.Snapshots;

/// <summary>Disk used by a directory tree: bytes of allocated blocks and number of distinct inodes.</summary>
public readonly record struct UsageNumbers(long Bytes, long Inodes)
{
    public static UsageNumbers operator +(UsageNumbers a, UsageNumbers b) => new(a.Bytes + b.Bytes, a.Inodes + b.Inodes);

    public static UsageNumbers operator -(UsageNumbers a, UsageNumbers b) => new(a.Bytes - b.Bytes, a.Inodes - b.Inodes);
}

/// <summary>
/// Measures a directory tree the way <c>du --one-file-system</c> does and CRI's FilesystemUsage means it: used bytes
/// are allocated blocks × 512, inodes are distinct inodes (a hard link counts once), the root included. The walk goes
/// by file descriptor (openat with O_NOFOLLOW from the parent's fd), so it never follows a symlink, not even one
/// swapped in for a directory while it walks (a container can write its upper directory at any time); an entry on
/// another device (a mount point) is neither counted nor entered. Directories nested deeper than
/// <see cref="MaxDepth"/> are not entered (a bound on open descriptors; such a tree is undercounted).
/// </summary>
public static class DiskUsage
{
    public const int MaxDepth = 1024;

    /// <summary>The usage of <paramref name="root"/>; zero when it does not exist or is not a directory.</summary>
    public static UsageNumbers Measure(string root)
    {
        SafeFileHandle top;
        try
        {
            top = DirectoryCalls.OpenDirectory(root);
        }
        catch (IOException e) when (e.HResult is 2 or 20 or 40)
        {
            return default; // missing, not a directory, or a symlink
        }

        using (top)
        {
            var rootStatus = DirectoryCalls.Status(top);
            var walk = new Walk(rootStatus.DeviceMajor, rootStatus.DeviceMinor);
            walk.Count(rootStatus);
            walk.Directory(top, 1);
            return new UsageNumbers(walk.Bytes, walk.Inodes);
        }
    }

    private sealed class Walk(uint deviceMajor, uint deviceMinor)
    {
        private readonly HashSet<ulong> _linked = [];
        private readonly byte[] _buffer = new byte[32 * 1024];

        public long Bytes { get; private set; }

        public long Inodes { get; private set; }

        public void Count(InodeUsage inode)
        {
            // A hard-linked inode counts once however many names it has (as du); one device, so the inode number suffices.
            if (inode.LinkCount > 1 && !inode.IsDirectory && !_linked.Add(inode.Inode))
            {
                return;
            }

            Inodes++;
            Bytes += (long)inode.Blocks * 512;
        }

        public void Directory(SafeFileHandle directory, int depth)
        {
            // Names of child directories are collected per batch and entered after it: the buffer is reused below.
            List<byte[]>? children = null;
            while (true)
            {
                var filled = DirectoryCalls.ReadEntries(directory, _buffer);
                if (filled == 0)
                {
                    break;
                }

                for (var offset = 0; offset < filled;)
                {
                    var name = DirectoryCalls.NextEntry(_buffer.AsSpan(0, filled), ref offset);
                    if (name is [(byte)'.', 0] or [(byte)'.', (byte)'.', 0])
                    {
                        continue;
                    }

                    if (DirectoryCalls.StatusAt(directory, name) is not { } inode
                        || inode.DeviceMajor != deviceMajor || inode.DeviceMinor != deviceMinor)
                    {
                        continue; // gone meanwhile, or a mount point: du --one-file-system skips it
                    }

                    Count(inode);
                    if (inode.IsDirectory && depth < MaxDepth)
                    {
                        (children ??= []).Add(name.ToArray());
                    }
                }

                if (children is not null)
                {
                    foreach (var child in children)
                    {
                        using var handle = DirectoryCalls.OpenDirectoryAt(directory, child);
                        if (handle is not null && SameDevice(handle))
                        {
                            Directory(handle, depth + 1);
                        }
                    }

                    children.Clear();
                }
            }
        }

        // A directory that became a mount point between statx and open is not entered.
        private bool SameDevice(SafeFileHandle handle)
        {
            var status = DirectoryCalls.Status(handle);
            return status.DeviceMajor == deviceMajor && status.DeviceMinor == deviceMinor;
        }
    }
}
