using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Nacelle.ContainerCore.Interop;

/// <summary>What statx reports about one inode for disk-usage accounting.</summary>
/// <param name="Mode">st_mode: file type and permission bits.</param>
/// <param name="Blocks">st_blocks: 512-byte units allocated on disk (what du counts).</param>
public readonly record struct InodeUsage(uint Mode, ulong Inode, uint LinkCount, ulong Blocks, uint DeviceMajor, uint DeviceMinor)
{
    public bool IsDirectory => (Mode & 0xF000) == 0x4000;
}

/// <summary>
/// Walking a directory tree by file descriptor, so that nothing on the way can be swapped for a symlink: open a
/// directory (never through a symlink), list its entries (getdents64: raw name bytes, no decoding), statx an entry
/// relative to its directory without following it, open a child directory relative to its parent. Plus syncfs(2), a
/// directory's fsync(2) and its inode flags (FS_IOC_GETFLAGS/SETFLAGS, chattr's flags).
/// Policy (what to count, where to stop) is the caller's.
/// </summary>
public static partial class DirectoryCalls
{
    private const int O_RDONLY = 0;
    private const int O_CLOEXEC = 0x80000;
    private const int AtSymlinkNoFollow = 0x100;
    private const int AtEmptyPath = 0x1000;
    private const uint StatxBasicStats = 0x7FF;
    private const int StatxSize = 256;
    private const int EINTR = 4;

    private static int ODirectory => OpenFlags.Directory;

    private static int O_NOFOLLOW => OpenFlags.NoFollow;

    /// <summary>Opens the directory <paramref name="path"/> for reading; its last component must not be a symlink.</summary>
    public static SafeFileHandle OpenDirectory(string path)
    {
        var fd = open(path, O_RDONLY | ODirectory | O_NOFOLLOW | O_CLOEXEC, 0);
        return fd >= 0 ? new SafeFileHandle(fd, ownsHandle: true) : throw Error("open", path, Marshal.GetLastPInvokeError());
    }

    /// <summary>
    /// Opens the child directory <paramref name="name"/> (NUL-terminated name bytes) of <paramref name="parent"/>;
    /// null when it is gone or is no longer a directory (ENOENT, ENOTDIR, ELOOP: replaced by a symlink).
    /// </summary>
    public static unsafe SafeFileHandle? OpenDirectoryAt(SafeFileHandle parent, ReadOnlySpan<byte> name)
    {
        fixed (byte* n = name)
        {
            var fd = openat((int)parent.DangerousGetHandle(), n, O_RDONLY | ODirectory | O_NOFOLLOW | O_CLOEXEC, 0);
            if (fd >= 0)
            {
                return new SafeFileHandle(fd, ownsHandle: true);
            }

            var errno = Marshal.GetLastPInvokeError();
            return errno is 2 or 20 or 40 ? null : throw Error("openat", System.Text.Encoding.UTF8.GetString(name.TrimEnd((byte)0)), errno);
        }
    }

    /// <summary>statx of the entry <paramref name="name"/> (NUL-terminated) of <paramref name="directory"/>, not followed; null when gone.</summary>
    public static unsafe InodeUsage? StatusAt(SafeFileHandle directory, ReadOnlySpan<byte> name)
    {
        var buffer = stackalloc byte[StatxSize];
        fixed (byte* n = name)
        {
            if (statx((int)directory.DangerousGetHandle(), n, AtSymlinkNoFollow, StatxBasicStats, buffer) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                return errno is 2 or 20 ? null : throw Error("statx", System.Text.Encoding.UTF8.GetString(name.TrimEnd((byte)0)), errno);
            }
        }

        return Read(buffer);
    }

    /// <summary>statx of <paramref name="path"/> itself (a symlink is not followed); null when it does not exist.</summary>
    public static unsafe InodeUsage? Status(string path)
    {
        var buffer = stackalloc byte[StatxSize];
        var bytes = System.Text.Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = bytes)
        {
            if (statx(-100 /* AT_FDCWD */, p, AtSymlinkNoFollow, StatxBasicStats, buffer) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                return errno is 2 or 20 ? null : throw Error("statx", path, errno);
            }
        }

        return Read(buffer);
    }

    /// <summary>statx of an open file itself (AT_EMPTY_PATH).</summary>
    public static unsafe InodeUsage Status(SafeFileHandle file)
    {
        var buffer = stackalloc byte[StatxSize];
        byte empty = 0;
        if (statx((int)file.DangerousGetHandle(), &empty, AtEmptyPath | AtSymlinkNoFollow, StatxBasicStats, buffer) != 0)
        {
            throw Error("statx", "(fd)", Marshal.GetLastPInvokeError());
        }

        return Read(buffer);
    }

    /// <summary>
    /// Reads the next batch of entries of <paramref name="directory"/> into <paramref name="buffer"/> (getdents64);
    /// returns the bytes filled, 0 at the end. Parse them with <see cref="NextEntry"/>.
    /// </summary>
    public static unsafe int ReadEntries(SafeFileHandle directory, Span<byte> buffer)
    {
        fixed (byte* b = buffer)
        {
            while (true)
            {
                var n = getdents64((int)directory.DangerousGetHandle(), b, (nuint)buffer.Length);
                if (n >= 0)
                {
                    return (int)n;
                }

                var errno = Marshal.GetLastPInvokeError();
                if (errno != EINTR)
                {
                    throw Error("getdents64", "(directory fd)", errno);
                }
            }
        }
    }

    /// <summary>
    /// The entry at <paramref name="offset"/> of a getdents64 batch: its name with the terminating NUL (pass it on to
    /// <see cref="StatusAt"/>), and the offset of the next entry. "." and ".." are returned like any other name.
    /// </summary>
    public static ReadOnlySpan<byte> NextEntry(ReadOnlySpan<byte> batch, ref int offset)
    {
        // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
        var record = batch[offset..];
        var length = record[16] | (record[17] << 8);
        var name = record[19..length];
        offset += length;
        return name[..(name.IndexOf((byte)0) + 1)];
    }

    /// <summary>Flushes every dirty page and inode of the file system holding <paramref name="path"/> (syncfs(2)).</summary>
    public static void SyncFileSystem(string path)
    {
        using var directory = OpenDirectory(path);
        if (syncfs((int)directory.DangerousGetHandle()) != 0)
        {
            throw Error("syncfs", path, Marshal.GetLastPInvokeError());
        }
    }

    /// <summary>fsync(2) of the directory <paramref name="path"/>: its entries (a rename into it) reach the disk.</summary>
    public static void SyncDirectory(string path)
    {
        using var directory = OpenDirectory(path);
        if (fsync((int)directory.DangerousGetHandle()) != 0)
        {
            throw Error("fsync", path, Marshal.GetLastPInvokeError());
        }
    }

    /// <summary>FS_TOPDIR_FL (chattr +T): ext2/3/4's Orlov allocator treats the directory as the top of a hierarchy.</summary>
    public const int TopDirectoryFlag = 0x00020000;

    /// <summary>
    /// The inode flags of the directory <paramref name="path"/> (FS_IOC_GETFLAGS); null when its file system has
    /// none (ENOTTY, EOPNOTSUPP, EINVAL).
    /// </summary>
    public static unsafe int? GetInodeFlags(string path)
    {
        using var directory = OpenDirectory(path);
        int flags;
        if (ioctl((int)directory.DangerousGetHandle(), FsIocGetFlags, &flags) == 0)
        {
            return flags;
        }

        var errno = Marshal.GetLastPInvokeError();
        return IsUnsupported(errno) ? null : throw Error("ioctl(FS_IOC_GETFLAGS)", path, errno);
    }

    /// <summary>Sets the inode flags of the directory <paramref name="path"/> (FS_IOC_SETFLAGS); false when its file system refuses them as unsupported.</summary>
    public static unsafe bool SetInodeFlags(string path, int flags)
    {
        using var directory = OpenDirectory(path);
        if (ioctl((int)directory.DangerousGetHandle(), FsIocSetFlags, &flags) == 0)
        {
            return true;
        }

        var errno = Marshal.GetLastPInvokeError();
        return IsUnsupported(errno) ? false : throw Error("ioctl(FS_IOC_SETFLAGS)", path, errno);
    }

    // _IOR('f', 1, long) and _IOW('f', 2, long); the kernel reads and writes an int through the pointer.
    private const ulong FsIocGetFlags = 0x80086601;
    private const ulong FsIocSetFlags = 0x40086602;

    private static bool IsUnsupported(int errno) => errno is 25 /* ENOTTY */ or 95 /* EOPNOTSUPP */ or 22 /* EINVAL */;

    private static unsafe InodeUsage Read(byte* buffer) =>
        // struct statx: nlink 16, mode 28 (u16), ino 32, blocks 48, dev_major 136, dev_minor 140.
        new(*(ushort*)(buffer + 28), *(ulong*)(buffer + 32), *(uint*)(buffer + 16), *(ulong*)(buffer + 48), *(uint*)(buffer + 136), *(uint*)(buffer + 140));

    private static IOException Error(string call, string what, int errno) =>
        new($"{call} {what}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string pathname, int flags, uint mode);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int openat(int dirfd, byte* pathname, int flags, uint mode);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int statx(int dirfd, byte* pathname, int flags, uint mask, byte* statxbuf);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint getdents64(int fd, byte* dirp, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int syncfs(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int ioctl(int fd, ulong request, int* argument);
}
