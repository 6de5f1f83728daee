using Nacelle.ContainerCore.Interop;

namespace Nacelle.ContainerCore;

/// <summary>
/// Kernel pseudo-files (cgroup control files, /proc) read whole into one buffer per thread, for parsers that take
/// bytes: the stats of a hundred containers read about five hundred such files, and none of their text is kept.
/// </summary>
public static class PseudoFiles
{
    // Control files and /proc/PID/net/dev are a few KB at most (v1 memory.stat about 1.5 KB).
    private const int MaxBytes = 1 << 20;

    // 4 KB per thread at first, doubled for a longer file and kept.
    [ThreadStatic]
    private static byte[]? t_buffer;

    /// <summary>
    /// The bytes of <paramref name="path"/> in this thread's buffer, valid until this thread's next read (parse them at
    /// once, before any await); false when the file does not exist. Other failures throw IOException naming the file,
    /// with the errno as its HResult.
    /// </summary>
    public static bool TryRead(string path, out ReadOnlySpan<byte> text)
    {
        var buffer = t_buffer ??= new byte[4096];
        while (true)
        {
            var length = PseudoFileCalls.ReadFile(path, buffer);
            if (length is -PseudoFileCalls.ENOENT or -PseudoFileCalls.ENOTDIR)
            {
                text = default;
                return false;
            }

            if (length < 0)
            {
                throw new IOException($"read {path}: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(-length)} (errno {-length})", -length);
            }

            if (length < buffer.Length)
            {
                text = buffer.AsSpan(0, length);
                return true;
            }

            if (buffer.Length >= MaxBytes)
            {
                throw new IOException($"read {path}: longer than {MaxBytes} bytes, not a pseudo-file of a known shape");
            }

            buffer = t_buffer = new byte[buffer.Length * 2];
        }
    }
}
