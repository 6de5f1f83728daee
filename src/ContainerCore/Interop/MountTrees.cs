using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Nacelle.ContainerCore.Interop;

/// <summary>
/// The new mount API on detached trees: open_tree(2) copies, mount_setattr(2) (idmapping, read-only, propagation),
/// an overlay whose layers are given as descriptors (fsconfig FSCONFIG_SET_FD, Linux 6.13), move_mount(2) and the
/// mount id statx reports. Thin: callers decide what to copy, map and attach.
/// </summary>
public static partial class MountTrees
{
    public const ulong MOUNT_ATTR_RDONLY = 0x1;
    public const ulong MOUNT_ATTR_NOSUID = 0x2;
    public const ulong MOUNT_ATTR_NODEV = 0x4;
    public const ulong MOUNT_ATTR_NOEXEC = 0x8;
    public const ulong MOUNT_ATTR_IDMAP = 0x100000;
    public const ulong MS_PRIVATE = 0x40000;

    private const int AT_FDCWD = -100;
    private const uint AT_EMPTY_PATH = 0x1000;
    private const uint AT_RECURSIVE = 0x8000;
    private const uint OPEN_TREE_CLONE = 1;
    private const uint O_CLOEXEC = 0x80000;
    private const int O_RDONLY = 0;
    private const uint FSOPEN_CLOEXEC = 0x1;
    private const uint FSCONFIG_SET_STRING = 1;
    private const uint FSCONFIG_SET_FD = 5;
    private const uint FSCONFIG_CMD_CREATE = 6;
    private const uint FSMOUNT_CLOEXEC = 0x1;
    private const uint MOVE_MOUNT_F_EMPTY_PATH = 0x4;
    private const uint StatxMntId = 0x1000;
    private const int StatxSize = 256;
    private const int StatxMntIdOffset = 144;

    [StructLayout(LayoutKind.Sequential)]
    private struct MountAttr
    {
        public ulong AttrSet;
        public ulong AttrClr;
        public ulong Propagation;
        public ulong UsernsFd;
    }

    /// <summary>A detached copy of the mount at <paramref name="path"/> (OPEN_TREE_CLONE; with every submount when
    /// <paramref name="recursive"/>), close-on-exec.</summary>
    public static SafeFileHandle OpenTree(string path, bool recursive)
    {
        var fd = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | O_CLOEXEC | (recursive ? AT_RECURSIVE : 0));
        return fd >= 0 ? new SafeFileHandle(fd, ownsHandle: true) : throw Error("open_tree", path);
    }

    /// <summary>mount_setattr(2) on a tree's root (or every mount of it): attributes to set and clear, a propagation
    /// (MS_PRIVATE, MS_SLAVE, MS_SHARED, MS_UNBINDABLE or 0), and the user namespace of MOUNT_ATTR_IDMAP.</summary>
    public static unsafe void SetAttributes(SafeFileHandle tree, bool recursive, ulong set, ulong clear = 0, ulong propagation = 0,
        SafeHandle? userNamespace = null)
    {
        ArgumentNullException.ThrowIfNull(tree);
        var attr = new MountAttr
        {
            AttrSet = set, AttrClr = clear, Propagation = propagation,
            UsernsFd = userNamespace is null ? 0 : (ulong)userNamespace.DangerousGetHandle(),
        };
        if (mount_setattr((int)tree.DangerousGetHandle(), "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr, (nuint)sizeof(MountAttr)) != 0)
        {
            throw Error("mount_setattr", "(tree)");
        }
    }

    /// <summary>
    /// A detached overlay mount (not attached anywhere) over <paramref name="lowerLayers"/> (top layer first, each a
    /// descriptor: a directory, or the root of a detached, e.g. idmapped, tree), with <paramref name="upperDir"/> and
    /// <paramref name="workDir"/> given as paths. Needs overlayfs layers by descriptor (Linux 6.13).
    /// </summary>
    public static SafeFileHandle CreateOverlay(IReadOnlyList<SafeFileHandle> lowerLayers, string? upperDir, string? workDir, ulong attributes)
    {
        ArgumentNullException.ThrowIfNull(lowerLayers);
        var context = fsopen("overlay", FSOPEN_CLOEXEC);
        if (context < 0)
        {
            throw Error("fsopen", "overlay");
        }

        using var contextHandle = new SafeFileHandle(context, ownsHandle: true);
        for (var i = 0; i < lowerLayers.Count; i++)
        {
            if (fsconfig(context, FSCONFIG_SET_FD, "lowerdir+", null, (int)lowerLayers[i].DangerousGetHandle()) != 0)
            {
                throw Error("overlay lowerdir+ (by descriptor)", $"layer {i}");
            }
        }

        if (upperDir is not null)
        {
            SetString(context, "upperdir", upperDir);
            SetString(context, "workdir", workDir ?? throw new ArgumentNullException(nameof(workDir)));
        }

        // index=off keeps upper dirs usable after their lower dirs are remounted elsewhere (as MountOverlay).
        SetString(context, "index", "off");
        if (fsconfig(context, FSCONFIG_CMD_CREATE, null, null, 0) != 0)
        {
            throw Error("create overlay", upperDir ?? "(read-only)");
        }

        var mount = fsmount(context, FSMOUNT_CLOEXEC, (uint)attributes);
        return mount >= 0 ? new SafeFileHandle(mount, ownsHandle: true) : throw Error("fsmount overlay", upperDir ?? "(read-only)");
    }

    /// <summary>Opens a namespace file (/proc/PID/ns/*, or a bind mount of one) for MOUNT_ATTR_IDMAP or setns.</summary>
    public static SafeFileHandle OpenNamespace(string path)
    {
        var fd = open(path, (uint)O_RDONLY | O_CLOEXEC);
        return fd >= 0 ? new SafeFileHandle(fd, ownsHandle: true) : throw Error("open", path);
    }

    /// <summary>Attaches a detached tree at <paramref name="target"/>.</summary>
    public static void Attach(SafeFileHandle tree, string target)
    {
        ArgumentNullException.ThrowIfNull(tree);
        if (move_mount((int)tree.DangerousGetHandle(), "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) != 0)
        {
            throw Error("move_mount", target);
        }
    }

    /// <summary>The id of the mount <paramref name="path"/> is on (symlinks followed), as /proc/self/mountinfo numbers it.</summary>
    public static unsafe ulong MountIdOf(string path)
    {
        var buffer = stackalloc byte[StatxSize];
        if (statx(AT_FDCWD, path, 0, StatxMntId, buffer) != 0)
        {
            throw Error("statx", path);
        }

        return *(ulong*)(buffer + StatxMntIdOffset);
    }

    private static void SetString(int context, string key, string value)
    {
        if (fsconfig(context, FSCONFIG_SET_STRING, key, value, 0) != 0)
        {
            throw Error($"overlay {key}", value);
        }
    }

    private static IOException Error(string what, string subject)
    {
        var errno = Marshal.GetLastPInvokeError();
        return new IOException($"{what} {subject}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, uint flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open_tree(int dirfd, string path, uint flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int mount_setattr(int dirfd, string path, uint flags, MountAttr* attr, nuint size);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int fsopen(string fsname, uint flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int fsconfig(int fd, uint cmd, string? key, string? value, int aux);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsmount(int fd, uint flags, uint attrFlags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int move_mount(int fromDirFd, string fromPath, int toDirFd, string toPath, uint flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int statx(int dirfd, string pathname, int flags, uint mask, byte* statxbuf);
}
