using System.Runtime.InteropServices;

namespace Nacelle.ContainerCore.Interop;

/// <summary>The type of an inode, as stat(2) reports it (S_IFMT).</summary>
public enum FileKind
{
    Missing,
    Regular,
    Directory,
    Symlink,
    Socket,
    Fifo,
    CharacterDevice,
    BlockDevice,
}

/// <summary>File-type queries .NET does not offer (it cannot tell a socket or fifo from a regular file).</summary>
public static partial class FileKinds
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxType = 0x1;
    private const int ENOENT = 2;
    private const int ENOTDIR = 20;

    // struct statx is the same on every architecture: stx_mode is the u16 at byte offset 28; the struct is 256 bytes.
    private const int StatxSize = 256;
    private const int StatxModeOffset = 28;

    /// <summary>The kind of <paramref name="path"/> itself (a symlink is reported as <see cref="FileKind.Symlink"/>).</summary>
    public static unsafe FileKind Of(string path)
    {
        var buffer = stackalloc byte[StatxSize];
        if (statx(AtFdCwd, path, AtSymlinkNoFollow, StatxType, buffer) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno is ENOENT or ENOTDIR)
            {
                return FileKind.Missing;
            }

            throw new IOException($"statx {path}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }

        var mode = *(ushort*)(buffer + StatxModeOffset);
        return (mode & 0xF000) switch
        {
            0x8000 => FileKind.Regular,
            0x4000 => FileKind.Directory,
            0xA000 => FileKind.Symlink,
            0xC000 => FileKind.Socket,
            0x1000 => FileKind.Fifo,
            0x2000 => FileKind.CharacterDevice,
            0x6000 => FileKind.BlockDevice,
            _ => throw new IOException($"statx {path}: unknown file type {mode & 0xF000:x}"),
        };
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int statx(int dirfd, string pathname, int flags, uint mask, byte* statxbuf);
}
