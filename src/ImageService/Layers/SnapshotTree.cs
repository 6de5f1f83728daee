using System.Formats.Tar;
using System.Text;
using Nacelle.Common;
using Nacelle.ContainerCore.Interop;

namespace Nacelle.ImageService.Layers;

/// <summary>
/// The snapshot directory being filled from one layer. Every path it touches is built from lexically
/// normalised components and walked from the root with lstat, so no symlink (whether it came from this layer
/// or was there before) is ever followed: a symlink in the middle of a path is refused, a symlink at the end
/// is the entry itself (replaced, never written through).
/// </summary>
internal sealed class SnapshotTree
{
    private const string OpaqueXattr = "trusted.overlay.opaque";
    private const string XattrRecordPrefix = "SCHILY.xattr.";
    private const string OverlayXattrPrefix = "trusted.overlay.";
    private const uint DefaultDirectoryMode = 0x1ED; // 0755

    private readonly string _root;

    // Directory mtimes are set after the last entry (children change them); keyed by relative path.
    private readonly Dictionary<string, DirectoryTime> _directoryTimes = new(StringComparer.Ordinal);

    // Absolute paths of the directories this tree created or found to be real directories (lstat, no symlink), so
    // that each entry's parents are not lstat'ed again. Only this tree changes the snapshot while it unpacks (a fresh
    // private directory), and every removal goes through RemoveExisting, which forgets what it removed.
    private readonly HashSet<string> _knownDirectories = new(StringComparer.Ordinal);

    public SnapshotTree(string targetDirectory)
    {
        _root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(targetDirectory));
        if (FileKinds.Of(_root) != FileKind.Directory)
        {
            throw NacelleException.InvalidArgument($"layer target {targetDirectory} is not an existing directory");
        }
    }

    /// <summary>Creates, replaces or deletes what one tar entry describes.</summary>
    public void Apply(TarEntry entry, byte[] copyBuffer)
    {
        try
        {
            ApplyCore(entry, copyBuffer);
        }
        catch (Exception e) when (e is (IOException and not EndOfStreamException) or UnauthorizedAccessException)
        {
            // The layer was acceptable but the host refused an operation (disk full, EPERM, ENAMETOOLONG...).
            throw NacelleException.Internal($"layer entry '{entry.Name}': {e.Message}", e);
        }
    }

    /// <summary>Sets the recorded directory mtimes, deepest first, on directories still reachable without symlinks.</summary>
    public void ApplyDirectoryTimes()
    {
        foreach (var (relative, time) in _directoryTimes.OrderByDescending(pair => pair.Value.Components.Length))
        {
            // A later entry may have replaced the directory or one of its parents (e.g. by a symlink pointing
            // out of the tree); a timestamp is not worth walking through it.
            if (ReachableDirectory(time.Components) is { } path)
            {
                try
                {
                    SetTimes(path, time.Mtime);
                }
                catch (IOException e)
                {
                    throw NacelleException.Internal($"layer directory '{relative}': {e.Message}", e);
                }
            }
        }
    }

    private void ApplyCore(TarEntry entry, byte[] copyBuffer)
    {
        var name = entry.Name;

        // A NUL would silently cut the path short when it is handed to the kernel.
        if (name.Contains('\0', StringComparison.Ordinal) || entry.LinkName.Contains('\0', StringComparison.Ordinal))
        {
            throw Refuse(name, "contains a NUL character in its name or link target");
        }

        var components = LayerPaths.Normalize(name) ?? throw Refuse(name, "climbs above the layer root with '..'");
        CheckLength(name, components);
        if (components.Length == 0)
        {
            ApplyToRoot(entry);
            return;
        }

        // aufs keeps its own bookkeeping (e.g. ".wh..wh.plnk/") in layers it exported; it means nothing to overlayfs.
        if (components.Any(component => LayerPaths.Classify(component) == WhiteoutKind.AufsMetadata))
        {
            return;
        }

        switch (LayerPaths.Classify(components[^1]))
        {
            case WhiteoutKind.File:
                WriteWhiteout(name, components);
                return;
            case WhiteoutKind.Opaque:
                var directory = EnsureDirectory(components[..^1], name);
                FileSystemCalls.SetXattr(directory, OpaqueXattr, "y"u8);
                return;
        }

        if (!IsSupported(entry.EntryType))
        {
            throw Refuse(name, $"has unsupported entry type {entry.EntryType}");
        }

        var path = EnsureDirectory(components[..^1], name) + "/" + components[^1];
        switch (entry.EntryType)
        {
            case TarEntryType.Directory:
                CreateDirectory(path);
                ApplyMetadata(path, components, entry, isDirectory: true);
                break;
            case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                WriteFile(path, entry, copyBuffer);
                break;
            case TarEntryType.SymbolicLink:
                CreateSymlink(path, entry);
                ApplyMetadata(path, components, entry, isDirectory: false);
                break;
            case TarEntryType.HardLink:
                // A hard link shares its target's inode, so it has no metadata of its own to apply.
                CreateHardLink(path, name, entry.LinkName);
                break;
            case TarEntryType.CharacterDevice or TarEntryType.BlockDevice or TarEntryType.Fifo:
                CreateSpecialFile(path, name, entry);
                ApplyMetadata(path, components, entry, isDirectory: false);
                break;
            default:
                throw Refuse(name, $"has unsupported entry type {entry.EntryType}");
        }
    }

    private static bool IsSupported(TarEntryType type) => type is TarEntryType.Directory
        or TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile
        or TarEntryType.SymbolicLink or TarEntryType.HardLink
        or TarEntryType.CharacterDevice or TarEntryType.BlockDevice or TarEntryType.Fifo;

    private void ApplyToRoot(TarEntry entry)
    {
        // "./" (or "/") describes the snapshot root itself: only a directory can be that.
        if (entry.EntryType != TarEntryType.Directory)
        {
            throw Refuse(entry.Name, $"names the layer root but is a {entry.EntryType}, not a directory");
        }

        ApplyMetadata(_root, [], entry, isDirectory: true);
    }

    /// <summary><c>dir/.wh.name</c> becomes the overlayfs whiteout for <c>dir/name</c>: a character device 0/0.</summary>
    private void WriteWhiteout(string name, string[] components)
    {
        var hidden = components[^1][LayerPaths.WhiteoutPrefix.Length..];
        if (hidden is "" or "." or "..")
        {
            throw Refuse(name, "is a whiteout that names no file");
        }

        var path = EnsureDirectory(components[..^1], name) + "/" + hidden;
        RemoveExisting(path);
        FileSystemCalls.MakeCharacterDevice(path, 0, 0, 0);
    }

    private void CreateDirectory(string path)
    {
        // Directory over directory keeps the contents (layers add to their lowers); anything else is replaced.
        if (_knownDirectories.Contains(path) || FileKinds.Of(path) == FileKind.Directory)
        {
            _knownDirectories.Add(path);
            return;
        }

        RemoveExisting(path);
        FileSystemCalls.MakeDirectory(path, 0x1C0); // 0700 until the entry's own mode is applied
        _knownDirectories.Add(path);
    }

    private void WriteFile(string path, TarEntry entry, byte[] copyBuffer)
    {
        RemoveExisting(path);

        // O_CREAT|O_EXCL|O_NOFOLLOW: never opens through a symlink that might have appeared in the meantime. Mode
        // 0600 until the entry's mode (possibly setuid) is applied after chown. Everything else goes through this
        // descriptor: no path is walked again for the file's owner, mode and times.
        using var file = FileSystemCalls.CreateNewFile(path, 0x180);
        if (entry.DataStream is { } data)
        {
            // Streamed through one buffer, written straight to the file: a layer's file may be larger than memory.
            int read;
            long written = 0;
            while ((read = data.Read(copyBuffer)) > 0)
            {
                FileSystemCalls.WriteAll(file, copyBuffer.AsSpan(0, read), path);
                written += read;
            }

            // The layer is made durable with one syncfs at its end; starting each file's writeback as soon as it is
            // written lets the disk work while the rest unpacks, so that syncfs has little left to wait for.
            if (written > 0)
            {
                FileSystemCalls.StartWriteback(file, path);
            }
        }

        // Owner, then mode, then xattrs, then times, as ApplyMetadata.
        FileSystemCalls.ChangeOwner(file, entry.Uid, entry.Gid, path);
        FileSystemCalls.ChangeMode(file, (uint)entry.Mode, path);
        ApplyXattrs(path, entry);
        var (seconds, nanoseconds) = UnixTime(entry.ModificationTime);
        FileSystemCalls.SetTimes(file, seconds, nanoseconds, seconds, nanoseconds, path);
    }

    private void CreateSymlink(string path, TarEntry entry)
    {
        if (System.Text.Encoding.UTF8.GetByteCount(entry.LinkName) >= PathMax)
        {
            throw Refuse(entry.Name, $"is a symlink whose target takes {System.Text.Encoding.UTF8.GetByteCount(entry.LinkName)} bytes, over the kernel's PATH_MAX of {PathMax}");
        }

        if (string.IsNullOrEmpty(entry.LinkName))
        {
            throw Refuse(entry.Name, "is a symlink with an empty target");
        }

        // The target is stored as is, absolute or relative: it is only ever resolved inside the container.
        RemoveExisting(path);
        File.CreateSymbolicLink(path, entry.LinkName);
    }

    private void CreateHardLink(string path, string name, string linkName)
    {
        var targetComponents = LayerPaths.Normalize(linkName)
            ?? throw Refuse(name, $"is a hardlink whose target '{linkName}' climbs above the layer root with '..'");
        var target = ExistingLinkTarget(targetComponents, name, linkName);
        if (target == path)
        {
            return; // a link to itself: the name already is that inode
        }

        if (target.StartsWith(path + "/", StringComparison.Ordinal))
        {
            throw Refuse(name, $"is a hardlink to '{linkName}', inside the directory it would replace");
        }

        RemoveExisting(path);
        FileSystemCalls.MakeHardLink(target, path);
    }

    private void CreateSpecialFile(string path, string name, TarEntry entry)
    {
        RemoveExisting(path);
        if (entry.EntryType == TarEntryType.Fifo)
        {
            FileSystemCalls.MakeFifo(path, 0x180);
            return;
        }

        if (entry is not PosixTarEntry device || device.DeviceMajor < 0 || device.DeviceMinor < 0)
        {
            throw Refuse(name, "is a device without valid major/minor numbers");
        }

        // 0600 until the entry's mode is applied after chown, like every other inode.
        if (entry.EntryType == TarEntryType.CharacterDevice)
        {
            FileSystemCalls.MakeCharacterDevice(path, 0x180, (uint)device.DeviceMajor, (uint)device.DeviceMinor);
        }
        else
        {
            FileSystemCalls.MakeBlockDevice(path, 0x180, (uint)device.DeviceMajor, (uint)device.DeviceMinor);
        }
    }

    /// <summary>
    /// Owner, then mode, then xattrs, then times. chown clears setuid/setgid and the security.capability xattr,
    /// so both must come after it; a symlink has no mode of its own (chmod would follow it).
    /// </summary>
    private void ApplyMetadata(string path, string[] components, TarEntry entry, bool isDirectory)
    {
        FileSystemCalls.ChangeOwner(path, entry.Uid, entry.Gid);
        if (entry.EntryType != TarEntryType.SymbolicLink)
        {
            FileSystemCalls.ChangeMode(path, (uint)entry.Mode);
        }

        ApplyXattrs(path, entry);
        if (isDirectory)
        {
            _directoryTimes[LayerPaths.Join(components)] = new DirectoryTime(components, entry.ModificationTime);
        }
        else
        {
            SetTimes(path, entry.ModificationTime);
        }
    }

    private static void ApplyXattrs(string path, TarEntry entry)
    {
        if (entry is not PaxTarEntry pax)
        {
            return;
        }

        foreach (var (key, value) in pax.ExtendedAttributes)
        {
            if (!key.StartsWith(XattrRecordPrefix, StringComparison.Ordinal))
            {
                continue;
            }

            var name = key[XattrRecordPrefix.Length..];
            if (name.Length == 0 || name.Contains('\0', StringComparison.Ordinal))
            {
                throw Refuse(entry.Name, "has an xattr record without a valid name");
            }

            // Overlay's own xattrs (opaque, redirect, metacopy...) steer how the mount resolves paths; only the
            // unpacker sets them, from OCI whiteouts, never a layer directly.
            if (name.StartsWith(OverlayXattrPrefix, StringComparison.Ordinal))
            {
                throw Refuse(entry.Name, $"sets xattr {name}, which is reserved for overlayfs");
            }

            // TarReader decodes PAX values as UTF-8; invalid bytes became U+FFFD and the value is lost.
            // Refuse rather than write a corrupted value (e.g. a wrong security.capability).
            if (value.Contains('\uFFFD', StringComparison.Ordinal))
            {
                throw Refuse(entry.Name, $"has xattr {name} with a value that is not valid UTF-8, which cannot be reproduced");
            }

            FileSystemCalls.SetXattr(path, name, Encoding.UTF8.GetBytes(value));
        }
    }

    /// <summary>
    /// The absolute path of the directory <paramref name="components"/>, creating missing directories (0755,
    /// root-owned) on the way. An existing symlink or non-directory on the way is refused: it is never followed.
    /// </summary>
    private string EnsureDirectory(ReadOnlySpan<string> components, string entryName)
    {
        var path = _root;
        for (var i = 0; i < components.Length; i++)
        {
            path += "/" + components[i];
            if (_knownDirectories.Contains(path))
            {
                continue;
            }

            switch (FileKinds.Of(path))
            {
                case FileKind.Directory:
                    _knownDirectories.Add(path);
                    continue;
                case FileKind.Missing:
                    FileSystemCalls.MakeDirectory(path, DefaultDirectoryMode);
                    FileSystemCalls.ChangeOwner(path, 0, 0);
                    FileSystemCalls.ChangeMode(path, DefaultDirectoryMode); // the umask applied to mkdir
                    _knownDirectories.Add(path);
                    continue;
                case FileKind.Symlink:
                    throw Refuse(entryName, $"traverses symlink '{LayerPaths.Join(components[..(i + 1)].ToArray())}'");
                default:
                    throw Refuse(entryName, $"has parent '{LayerPaths.Join(components[..(i + 1)].ToArray())}' that is not a directory");
            }
        }

        return path;
    }

    /// <summary>The absolute path of an existing hardlink target, reached without any symlink; never a directory.</summary>
    private string ExistingLinkTarget(string[] components, string entryName, string linkName)
    {
        if (components.Length == 0)
        {
            throw Refuse(entryName, $"is a hardlink to '{linkName}', the layer root");
        }

        var path = _root;
        for (var i = 0; i < components.Length; i++)
        {
            path += "/" + components[i];
            var kind = FileKinds.Of(path);
            var last = i == components.Length - 1;
            if (kind == FileKind.Missing)
            {
                throw Refuse(entryName, $"is a hardlink to '{linkName}', which does not exist in the layer");
            }

            if (!last && kind == FileKind.Symlink)
            {
                throw Refuse(entryName, $"is a hardlink to '{linkName}', which traverses symlink '{LayerPaths.Join(components[..(i + 1)])}'");
            }

            if (!last && kind != FileKind.Directory)
            {
                throw Refuse(entryName, $"is a hardlink to '{linkName}', whose parent '{LayerPaths.Join(components[..(i + 1)])}' is not a directory");
            }

            if (last && kind == FileKind.Directory)
            {
                throw Refuse(entryName, $"is a hardlink to '{linkName}', which is a directory");
            }
        }

        return path;
    }

    /// <summary>The path of <paramref name="components"/> if every component is a real directory; otherwise null.</summary>
    private string? ReachableDirectory(string[] components)
    {
        var path = _root;
        foreach (var component in components)
        {
            path += "/" + component;
            if (FileKinds.Of(path) != FileKind.Directory)
            {
                return null;
            }
        }

        return path;
    }

    /// <summary>Removes whatever is at <paramref name="path"/> (its parents are already verified); never follows a symlink.</summary>
    private void RemoveExisting(string path)
    {
        switch (FileKinds.Of(path))
        {
            case FileKind.Missing:
                return;
            case FileKind.Directory:
                RemoveTree(path);
                ForgetDirectoryTimes(path);
                ForgetKnownDirectories(path);
                return;
            default:
                File.Delete(path); // unlink: removes a symlink itself
                return;
        }
    }

    private static void RemoveTree(string directory)
    {
        foreach (var child in Directory.EnumerateFileSystemEntries(directory))
        {
            if (FileKinds.Of(child) == FileKind.Directory)
            {
                RemoveTree(child);
            }
            else
            {
                File.Delete(child);
            }
        }

        Directory.Delete(directory);
    }

    private void ForgetKnownDirectories(string path) =>
        _knownDirectories.RemoveWhere(known => known == path || known.StartsWith(path + "/", StringComparison.Ordinal));

    private void ForgetDirectoryTimes(string path)
    {
        var relative = path[(_root.Length + 1)..];
        foreach (var key in _directoryTimes.Keys.ToArray())
        {
            if (key == relative || key.StartsWith(relative + "/", StringComparison.Ordinal))
            {
                _directoryTimes.Remove(key);
            }
        }
    }

    private static void SetTimes(string path, DateTimeOffset mtime)
    {
        // Tar records no separate atime worth keeping (PAX atime is usually the archiver's read time): use mtime.
        var (seconds, nanoseconds) = UnixTime(mtime);
        FileSystemCalls.SetTimes(path, seconds, nanoseconds, seconds, nanoseconds);
    }

    /// <summary>Seconds and nanoseconds since the Unix epoch (nanoseconds always 0..999,999,999).</summary>
    private static (long Seconds, long Nanoseconds) UnixTime(DateTimeOffset time)
    {
        var ticks = time.UtcTicks - DateTime.UnixEpoch.Ticks;
        var seconds = Math.DivRem(ticks, TimeSpan.TicksPerSecond, out var remainder);
        if (remainder < 0)
        {
            seconds--;
            remainder += TimeSpan.TicksPerSecond;
        }

        return (seconds, remainder * 100);
    }

    /// <summary>The kernel's NAME_MAX (one path component) and PATH_MAX (a whole path, with its NUL), in bytes.</summary>
    private const int NameMax = PathLimits.NameMax;
    private const int PathMax = PathLimits.PathMax;

    /// <summary>Refuses names the kernel cannot hold (each is created under this snapshot's directory, so the whole host
    /// path must fit PATH_MAX) and symlink targets over PATH_MAX, naming the entry, rather than failing half way inside
    /// the file system code.</summary>
    private void CheckLength(string name, string[] components)
    {
        foreach (var component in components)
        {
            if (System.Text.Encoding.UTF8.GetByteCount(component) > NameMax)
            {
                throw Refuse(name, $"has a path component of {System.Text.Encoding.UTF8.GetByteCount(component)} bytes, over the kernel's NAME_MAX of {NameMax}");
            }
        }

        var length = System.Text.Encoding.UTF8.GetByteCount(_root) + 1 + System.Text.Encoding.UTF8.GetByteCount(LayerPaths.Join(components));
        if (length >= PathMax)
        {
            throw Refuse(name, $"is too long: under the snapshot directory its path takes {length} bytes, over the kernel's PATH_MAX of {PathMax}");
        }
    }

    private static NacelleException Refuse(string entryName, string rule) =>
        NacelleException.InvalidArgument($"layer entry '{Shorten(entryName)}' {rule}");

    /// <summary>An entry name as shown in an error: at most 256 characters, then how long it really is.</summary>
    private static string Shorten(string entryName) =>
        entryName.Length <= 256 ? entryName : $"{entryName[..256]}... ({entryName.Length} characters)";

    private readonly record struct DirectoryTime(string[] Components, DateTimeOffset Mtime);
}
