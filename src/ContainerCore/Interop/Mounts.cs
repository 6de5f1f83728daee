using System.Runtime.InteropServices;

namespace Nacelle.ContainerCore.Interop;

/// <summary>mount(2) and umount2(2).</summary>
public static partial class Mounts
{
    public const ulong MS_RDONLY = 0x1;
    public const ulong MS_NOSUID = 0x2;
    public const ulong MS_NODEV = 0x4;
    public const ulong MS_NOEXEC = 0x8;

    private const int MNT_DETACH = 0x2;
    private const int UMOUNT_NOFOLLOW = 0x8;
    private const int EINVAL = 22;
    private const int ENOENT = 2;
    private const int ENOTDIR = 20;

    // statx: the basic fields, AT_SYMLINK_NOFOLLOW, and where stx_attributes and stx_attributes_mask are in the struct.
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxBasicStats = 0x7FF;
    private const int StatxSize = 256;
    private const int StatxAttributesOffset = 8;
    private const int StatxAttributesMaskOffset = 56;
    private const ulong StatxAttrMountRoot = 0x2000;

    // The kernel copies mount(2) options into one page.
    private const int MountOptionsLimit = 4096 - 1;

    /// <summary>
    /// Mounts an overlay at <paramref name="target"/> from lower (top layer first), upper and work directories.
    /// With the new mount API each layer is passed on its own ("lowerdir+", Linux 6.8+), so the number of layers is
    /// not bound by the one-page limit of mount(2) options; older kernels use mount(2) while the options fit a page.
    /// </summary>
    public static void MountOverlay(string target, IReadOnlyList<string> lowerDirs, string upperDir, string workDir)
    {
        if (TryMountOverlayPerLayer(target, lowerDirs, upperDir, workDir))
        {
            return;
        }

        // index=off keeps upper dirs usable after their lower dirs are remounted elsewhere.
        var options = $"lowerdir={string.Join(':', lowerDirs)},upperdir={upperDir},workdir={workDir},index=off";
        if (System.Text.Encoding.UTF8.GetByteCount(options) > MountOptionsLimit)
        {
            throw new IOException(
                $"mount overlay at {target}: {lowerDirs.Count} layers need {options.Length} bytes of mount options, more than a page; " +
                "this kernel lacks overlayfs \"lowerdir+\" (Linux 6.8) that lifts the limit");
        }

        if (mount("overlay", target, "overlay", MS_NODEV, options) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"mount overlay at {target} ({lowerDirs.Count} layers): {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }
    }

    // fsopen -> fsconfig (one "lowerdir+" per layer) -> fsmount -> move_mount. False when the kernel cannot do it this way.
    private static bool TryMountOverlayPerLayer(string target, IReadOnlyList<string> lowerDirs, string upperDir, string workDir)
    {
        var context = fsopen("overlay", FSOPEN_CLOEXEC);
        if (context < 0)
        {
            return false; // no new mount API (Linux < 5.2) or overlay unknown: let mount(2) report it
        }

        using var contextHandle = new Microsoft.Win32.SafeHandles.SafeFileHandle(context, ownsHandle: true);
        foreach (var lower in lowerDirs)
        {
            if (fsconfig(context, FSCONFIG_SET_STRING, "lowerdir+", lower, 0) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == EINVAL && lower == lowerDirs[0])
                {
                    return false; // "lowerdir+" unknown: a kernel before 6.8
                }

                throw new IOException($"overlay at {target}: lower layer {lower}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
            }
        }

        SetString(context, target, "upperdir", upperDir);
        SetString(context, target, "workdir", workDir);
        SetString(context, target, "index", "off");
        if (fsconfig(context, FSCONFIG_CMD_CREATE, null, null, 0) != 0)
        {
            Fail($"create overlay for {target}");
        }

        var mountFd = fsmount(context, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV);
        if (mountFd < 0)
        {
            Fail($"fsmount overlay for {target}");
        }

        using var mountHandle = new Microsoft.Win32.SafeHandles.SafeFileHandle(mountFd, ownsHandle: true);
        if (move_mount(mountFd, string.Empty, AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) != 0)
        {
            Fail($"attach overlay at {target}");
        }

        return true;
    }

    private static void SetString(int context, string target, string key, string value)
    {
        if (fsconfig(context, FSCONFIG_SET_STRING, key, value, 0) != 0)
        {
            Fail($"overlay at {target}: {key}={value}");
        }
    }

    private static void Fail(string what)
    {
        var errno = Marshal.GetLastPInvokeError();
        throw new IOException($"{what}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
    }

    private const int AT_FDCWD = -100;
    private const uint FSOPEN_CLOEXEC = 0x1;
    private const uint FSCONFIG_SET_STRING = 1;
    private const uint FSCONFIG_CMD_CREATE = 6;
    private const uint FSMOUNT_CLOEXEC = 0x1;
    private const uint MOUNT_ATTR_NODEV = 0x4;
    private const uint MOVE_MOUNT_F_EMPTY_PATH = 0x4;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int fsopen(string fsname, uint flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int fsconfig(int fd, uint cmd, string? key, string? value, int aux);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsmount(int fd, uint flags, uint attrFlags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int move_mount(int fromDirFd, string fromPath, int toDirFd, string toPath, uint flags);

    /// <summary>Bind-mounts <paramref name="source"/> onto <paramref name="target"/> (e.g. an nsfs file to pin a namespace).</summary>
    public static void Bind(string source, string target)
    {
        if (mount(source, target, null, MS_BIND_FLAG, null) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"bind mount {source} on {target}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }
    }

    private const ulong MS_BIND_FLAG = 0x1000;

    /// <summary>Mounts a tmpfs (nosuid, nodev, noexec) with <paramref name="options"/> (e.g. "mode=1777,size=65536k").</summary>
    public static void MountTmpfs(string target, string options)
    {
        if (mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"mount tmpfs on {target}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }
    }

    /// <summary>Lazily detaches the mount at <paramref name="target"/>; false when nothing is mounted there.</summary>
    public static bool Unmount(string target)
    {
        if (umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
        {
            return true;
        }

        var errno = Marshal.GetLastPInvokeError();
        if (errno is EINVAL or ENOENT)
        {
            return false; // not a mount point (or already gone)
        }

        throw new IOException($"umount {target}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
    }

    /// <summary>
    /// Whether <paramref name="path"/> (not followed if a symlink) is a mount point: one statx, whose STATX_ATTR_MOUNT_ROOT
    /// (Linux 5.8) says it; /proc/self/mountinfo only on a kernel without it. Reading mountinfo costs milliseconds on a
    /// node with hundreds of mounts (the kernel formats every line), which CreateContainer paid on every rootfs mount.
    /// </summary>
    public static unsafe bool IsMountPoint(string path)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        var buffer = stackalloc byte[StatxSize];
        if (statx(AtFdCwd, full, AtSymlinkNoFollow, StatxBasicStats, buffer) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno is ENOENT or ENOTDIR)
            {
                return false;
            }

            throw new IOException($"statx {full}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }

        if ((*(ulong*)(buffer + StatxAttributesMaskOffset) & StatxAttrMountRoot) != 0)
        {
            return (*(ulong*)(buffer + StatxAttributesOffset) & StatxAttrMountRoot) != 0;
        }

        return IsMountPointInMountInfo(full);
    }

    private static bool IsMountPointInMountInfo(string full)
    {
        foreach (var line in File.ReadLines("/proc/self/mountinfo"))
        {
            var fields = line.Split(' ');
            if (fields.Length > 4 && fields[4].Replace("\\040", " ", StringComparison.Ordinal) == full)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Mount points at or below <paramref name="directory"/>, from /proc/self/mountinfo, in mount order.</summary>
    public static IReadOnlyList<string> MountPointsUnder(string directory)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        var points = new List<string>();
        foreach (var line in File.ReadLines("/proc/self/mountinfo"))
        {
            var fields = line.Split(' ');
            if (fields.Length > 4)
            {
                var point = fields[4].Replace("\\040", " ", StringComparison.Ordinal);
                if (point == full || point.StartsWith(full + "/", StringComparison.Ordinal))
                {
                    points.Add(point);
                }
            }
        }

        return points;
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mount(string source, string target, string? filesystemtype, ulong mountflags, string? data);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int umount2(string target, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int statx(int dirfd, string pathname, int flags, uint mask, byte* statxbuf);
}
