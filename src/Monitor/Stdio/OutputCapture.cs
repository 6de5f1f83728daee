using Microsoft.Win32.SafeHandles;
using Nacelle.ContainerCore.Interop;

namespace Nacelle.Monitor.Stdio;

/// <summary>exec-sync's output: a pipe read to its end, keeping a bounded prefix.</summary>
internal static class OutputCapture
{
    /// <summary>
    /// Reads a pipe to its end (or until <paramref name="stop"/>), keeping the first <paramref name="limit"/> bytes.
    /// Each read waits for readability on the fd reactor first, so a stop never leaves a thread blocked in read(2).
    /// </summary>
    public static async Task<(byte[] Data, bool Truncated)> CaptureAsync(SafeFileHandle source, int limit, CancellationToken stop)
    {
        var kept = new MemoryStream();
        var truncated = false;
        var chunk = new byte[64 * 1024];
        // Not disposed: the handle belongs to the pipe stream (ownsHandle false anyway).
        var reader = new FileStream(source, FileAccess.Read, bufferSize: 0);
        try
        {
            while (true)
            {
                await FdReactor.WaitReadableAsync(source, stop).ConfigureAwait(false);
                var n = reader.Read(chunk);
                if (n == 0)
                {
                    break;
                }

                var keep = (int)Math.Min(n, limit - kept.Length);
                if (keep > 0)
                {
                    kept.Write(chunk, 0, keep);
                }

                truncated |= keep < n;
            }
        }
        catch (OperationCanceledException)
        {
            // stopped: what was read is the result
        }
        catch (IOException)
        {
            // the pipe broke: what was read is the result
        }

        return (kept.ToArray(), truncated);
    }
}
