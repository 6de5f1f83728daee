using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Nacelle.ContainerCore.Interop;

/// <summary>What lstat (statx with AT_SYMLINK_NOFOLLOW) reports about one inode.</summary>
/// <param name="Mode">The full st_mode: file type bits and permission bits (incl. setuid/setgid/sticky).</param>
public readonly record struct FileStatus(
    uint Mode,
    uint Uid,
    uint Gid,
    ulong Inode,
    uint LinkCount,
    long Size,
    uint RdevMajor,
    uint RdevMinor,
    long MtimeSeconds,
    uint MtimeNanoseconds)
{
    /// <summary>The permission bits including setuid, setgid and sticky (mode &amp; 07777).</summary>
    public uint Permissions => Mode & 0xFFF;
}

/// <summary>
/// The file-system syscalls .NET does not offer, all of which act on a path itself and never follow a
/// symlink in the last component: lchown, mknod, mkdir, link, lsetxattr/lgetxattr, utimensat, lstat; and, for a
/// regular file the caller creates, the same on its descriptor (open O_EXCL, write, fchown, fchmod, futimens) plus
/// sync_file_range's start of writeback. Used by the layer unpacker, which must reproduce owners, devices, xattrs and
/// timestamps exactly.
/// </summary>
public static partial class FileSystemCalls
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const int ENODATA = 61;
    private const int EINTR = 4;
    private const int OWrOnly = 0x1;
    private const int OCreat = 0x40;
    private const int OExcl = 0x80;
    private const int OCloExec = 0x80000;
    private const uint SyncFileRangeWrite = 2;
    private const int ERANGE = 34;

    private const uint SIfChr = 0x2000;
    private const uint SIfBlk = 0x6000;
    private const uint SIfIfo = 0x1000;

    // statx layout (identical on every architecture); the struct is 256 bytes.
    private const uint StatxBasicStats = 0x7FF;
    private const int StatxSize = 256;

    /// <summary>chown without following a symlink (lchown(2)); works on symlinks themselves.</summary>
    public static void ChangeOwner(string path, int uid, int gid)
    {
        Check(lchown(path, uid, gid), "lchown", path);
    }

    /// <summary>chmod(2) with the full 07777 permission bits. Follows symlinks: callers never pass one.</summary>
    public static void ChangeMode(string path, uint permissions)
    {
        Check(chmod(path, permissions & 0xFFF), "chmod", path);
    }

    /// <summary>mkdir(2); the process umask still applies, so callers chmod afterwards when the mode matters.</summary>
    public static void MakeDirectory(string path, uint permissions)
    {
        Check(mkdir(path, permissions & 0xFFF), "mkdir", path);
    }

    /// <summary>Creates a character device node with the given major/minor numbers.</summary>
    public static void MakeCharacterDevice(string path, uint permissions, uint major, uint minor)
    {
        Check(mknod(path, SIfChr | (permissions & 0xFFF), MakeDev(major, minor)), "mknod", path);
    }

    /// <summary>Creates a block device node with the given major/minor numbers.</summary>
    public static void MakeBlockDevice(string path, uint permissions, uint major, uint minor)
    {
        Check(mknod(path, SIfBlk | (permissions & 0xFFF), MakeDev(major, minor)), "mknod", path);
    }

    /// <summary>Creates a fifo (named pipe).</summary>
    public static void MakeFifo(string path, uint permissions)
    {
        Check(mknod(path, SIfIfo | (permissions & 0xFFF), 0), "mknod", path);
    }

    /// <summary>
    /// Creates <paramref name="newPath"/> as another name for the inode at <paramref name="existingPath"/>.
    /// linkat without AT_SYMLINK_FOLLOW: when the existing path is a symlink, the link is to the symlink itself.
    /// </summary>
    public static void MakeHardLink(string existingPath, string newPath)
    {
        Check(linkat(AtFdCwd, existingPath, AtFdCwd, newPath, 0), "link", $"{existingPath} -> {newPath}");
    }

    /// <summary>Sets an extended attribute on the path itself (lsetxattr(2)), creating or replacing it.</summary>
    public static unsafe void SetXattr(string path, string name, ReadOnlySpan<byte> value)
    {
        fixed (byte* data = value)
        {
            Check(lsetxattr(path, name, data, (nuint)value.Length, 0), "lsetxattr", $"{path} {name}");
        }
    }

    /// <summary>The value of an extended attribute of the path itself (lgetxattr(2)); null when it is not set.</summary>
    public static unsafe byte[]? GetXattr(string path, string name)
    {
        while (true)
        {
            var size = lgetxattr(path, name, null, 0);
            if (size < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == ENODATA)
                {
                    return null;
                }

                throw Error("lgetxattr", $"{path} {name}", errno);
            }

            var buffer = new byte[size];
            fixed (byte* data = buffer)
            {
                var read = lgetxattr(path, name, data, (nuint)buffer.Length);
                if (read >= 0)
                {
                    return buffer[..(int)read];
                }

                // ERANGE: the value grew between the two calls; ask for its size again.
                var errno = Marshal.GetLastPInvokeError();
                if (errno != ERANGE)
                {
                    throw Error("lgetxattr", $"{path} {name}", errno);
                }
            }
        }
    }

    /// <summary>
    /// Sets access and modification times with nanosecond precision on the path itself
    /// (utimensat with AT_SYMLINK_NOFOLLOW, so a symlink's own times change, not its target's).
    /// </summary>
    public static unsafe void SetTimes(string path, long atimeSeconds, long atimeNanoseconds, long mtimeSeconds, long mtimeNanoseconds)
    {
        // struct timespec[2] on 64-bit Linux: { long tv_sec; long tv_nsec; } for atime, then mtime.
        var times = stackalloc long[4] { atimeSeconds, atimeNanoseconds, mtimeSeconds, mtimeNanoseconds };
        Check(utimensat(AtFdCwd, path, times, AtSymlinkNoFollow), "utimensat", path);
    }

    /// <summary>lstat: the status of the path itself (a symlink is described, not followed); null when missing.</summary>
    public static unsafe FileStatus? Status(string path)
    {
        var buffer = stackalloc byte[StatxSize];
        if (statx(AtFdCwd, path, AtSymlinkNoFollow, StatxBasicStats, buffer) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno is 2 or 20)
            {
                return null; // ENOENT, ENOTDIR
            }

            throw Error("statx", path, errno);
        }

        // Offsets of struct statx: nlink 16, uid 20, gid 24, mode 28 (u16), ino 32, size 40,
        // mtime 112 (i64 seconds, u32 nanoseconds), rdev_major 128, rdev_minor 132.
        return new FileStatus(
            Mode: *(ushort*)(buffer + 28),
            Uid: *(uint*)(buffer + 20),
            Gid: *(uint*)(buffer + 24),
            Inode: *(ulong*)(buffer + 32),
            LinkCount: *(uint*)(buffer + 16),
            Size: *(long*)(buffer + 40),
            RdevMajor: *(uint*)(buffer + 128),
            RdevMinor: *(uint*)(buffer + 132),
            MtimeSeconds: *(long*)(buffer + 112),
            MtimeNanoseconds: *(uint*)(buffer + 120));
    }

    /// <summary>
    /// Creates the regular file <paramref name="path"/> and opens it for writing: O_CREAT|O_EXCL|O_NOFOLLOW, so it is
    /// always a new inode, never an existing file and never reached through a symlink in the last component. The
    /// process umask applies to <paramref name="permissions"/>. One syscall: no fstat, no flock (FileStream does both).
    /// </summary>
    public static SafeFileHandle CreateNewFile(string path, uint permissions)
    {
        var fd = open(path, OWrOnly | OCreat | OExcl | OpenFlags.NoFollow | OCloExec, permissions & 0xFFF);
        return fd >= 0 ? new SafeFileHandle(fd, ownsHandle: true) : throw Error("open", path, Marshal.GetLastPInvokeError());
    }

    /// <summary>write(2) of all of <paramref name="data"/> at the file's offset (short writes continue, EINTR retries).</summary>
    public static unsafe void WriteAll(SafeFileHandle file, ReadOnlySpan<byte> data, string path)
    {
        fixed (byte* start = data)
        {
            var done = 0;
            while (done < data.Length)
            {
                var n = write((int)file.DangerousGetHandle(), start + done, (nuint)(data.Length - done));
                if (n < 0)
                {
                    var errno = Marshal.GetLastPInvokeError();
                    if (errno == EINTR)
                    {
                        continue;
                    }

                    throw Error("write", path, errno);
                }

                done += (int)n;
            }
        }
    }

    /// <summary>fchown(2) of an open file.</summary>
    public static void ChangeOwner(SafeFileHandle file, int uid, int gid, string path) =>
        Check(fchown((int)file.DangerousGetHandle(), uid, gid), "fchown", path);

    /// <summary>fchmod(2) of an open file, with the full 07777 permission bits.</summary>
    public static void ChangeMode(SafeFileHandle file, uint permissions, string path) =>
        Check(fchmod((int)file.DangerousGetHandle(), permissions & 0xFFF), "fchmod", path);

    /// <summary>Access and modification times of an open file, with nanosecond precision (futimens(3)).</summary>
    public static unsafe void SetTimes(SafeFileHandle file, long atimeSeconds, long atimeNanoseconds, long mtimeSeconds, long mtimeNanoseconds, string path)
    {
        var times = stackalloc long[4] { atimeSeconds, atimeNanoseconds, mtimeSeconds, mtimeNanoseconds };
        Check(futimens((int)file.DangerousGetHandle(), times), "futimens", path);
    }

    /// <summary>
    /// Starts writing the file's dirty pages to the disk and returns without waiting (sync_file_range with
    /// SYNC_FILE_RANGE_WRITE over the whole file). Makes nothing durable by itself (no metadata, no disk cache
    /// flush): a later fsync or syncfs does, and finds less left to wait for.
    /// </summary>
    public static void StartWriteback(SafeFileHandle file, string path) =>
        Check(sync_file_range((int)file.DangerousGetHandle(), 0, 0, SyncFileRangeWrite), "sync_file_range", path);

    /// <summary>glibc's makedev: 12 bits of major and 20 of minor in the classic layout, the rest above bit 32.</summary>
    internal static ulong MakeDev(uint major, uint minor)
    {
        ulong dev = ((ulong)(major & 0xFFFFF000) << 32) | ((ulong)(major & 0x00000FFF) << 8);
        dev |= ((ulong)(minor & 0xFFFFFF00) << 12) | (minor & 0x000000FF);
        return dev;
    }

    private static void Check(int result, string call, string what)
    {
        if (result != 0)
        {
            throw Error(call, what, Marshal.GetLastPInvokeError());
        }
    }

    private static IOException Error(string call, string what, int errno) =>
        new($"{call} {what}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int lchown(string pathname, int owner, int group);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int chmod(string pathname, uint mode);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mkdir(string pathname, uint mode);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mknod(string pathname, uint mode, ulong dev);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int linkat(int olddirfd, string oldpath, int newdirfd, string newpath, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int lsetxattr(string path, string name, byte* value, nuint size, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial nint lgetxattr(string path, string name, byte* value, nuint size);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int utimensat(int dirfd, string pathname, long* times, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int statx(int dirfd, string pathname, int flags, uint mask, byte* statxbuf);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string pathname, int flags, uint mode);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint write(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fchown(int fd, int owner, int group);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fchmod(int fd, uint mode);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int futimens(int fd, long* times);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int sync_file_range(int fd, long offset, long nbytes, uint flags);
}
