using System.Runtime.InteropServices;

namespace Nacelle.ContainerCore.Interop;

/// <summary>
/// Reading a kernel pseudo-file (a cgroup control file, /proc/PID/net/dev) whole into a caller's buffer with open,
/// read and close: no stream, no fstat, no lock, no string. Stats read several such files for every container and
/// pod each time kubelet asks.
/// </summary>
public static partial class PseudoFileCalls
{
    public const int ENOENT = 2;
    public const int ENOTDIR = 20;

    /// <summary>A cgroup file read after its cgroup was removed (opened just before the rmdir).</summary>
    public const int ENODEV = 19;

    private const int EINTR = 4;
    private const int O_RDONLY = 0x0;
    private const int O_CLOEXEC = 0x80000;

    /// <summary>
    /// Reads <paramref name="path"/> from its start into <paramref name="buffer"/>, read(2) after read(2) until end of
    /// file or a full buffer; returns the bytes read, or minus the errno. A result equal to the buffer's length means
    /// the file may be longer: read it again into a larger buffer (a pseudo-file's text is made anew by each open).
    /// </summary>
    public static unsafe int ReadFile(string path, Span<byte> buffer)
    {
        var fd = open(path, O_RDONLY | O_CLOEXEC, 0);
        if (fd < 0)
        {
            return -Marshal.GetLastPInvokeError();
        }

        try
        {
            fixed (byte* start = buffer)
            {
                var length = 0;
                while (length < buffer.Length)
                {
                    var n = read(fd, start + length, (nuint)(buffer.Length - length));
                    if (n == 0)
                    {
                        break;
                    }

                    if (n < 0)
                    {
                        var errno = Marshal.GetLastPInvokeError();
                        if (errno == EINTR)
                        {
                            continue;
                        }

                        return -errno;
                    }

                    length += (int)n;
                }

                return length;
            }
        }
        finally
        {
            _ = close(fd);
        }
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string pathname, int flags, uint mode);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint read(int fd, byte* buf, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);
}
