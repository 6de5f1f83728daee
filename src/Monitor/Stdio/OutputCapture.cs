using Microsoft.Win32.SafeHandles;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Reactor;
using Nacelle.Monitor.Memory;

namespace Nacelle.Monitor.Stdio;

/// <summary>exec-sync's output: a non-blocking pipe read to its end, keeping a bounded prefix.</summary>
internal static class OutputCapture
{
    /// <summary>
    /// Reads a pipe to its end (or until <paramref name="stop"/>), keeping the first <paramref name="limit"/> bytes; the
    /// rest is read and dropped, so the writer never blocks. Reads wait on the fd reactor, never in read(2).
    /// </summary>
    public static async Task<(byte[] Data, bool Truncated)> CaptureAsync(SafeFileHandle source, int limit, CancellationToken stop)
    {
        byte[] kept = [];
        var length = 0;
        var truncated = false;
        try
        {
            while (true)
            {
                int n;
                using (var lease = ScratchMemory.Read.Rent())
                {
                    n = DescriptorCalls.Read(source, lease.Span);
                    if (n > 0)
                    {
                        var keep = Math.Min(n, limit - length);
                        if (keep > 0)
                        {
                            if (kept.Length < length + keep)
                            {
                                Array.Resize(ref kept, (int)Math.Min(Math.Max((long)length + keep, kept.Length * 2L), limit));
                            }

                            lease.Span[..keep].CopyTo(kept.AsSpan(length));
                            length += keep;
                        }

                        truncated |= keep < n;
                    }
                }

                if (n == 0)
                {
                    break;
                }

                if (n < 0)
                {
                    await FdReactor.WaitReadableAsync(source, stop).ConfigureAwait(false);
                }
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

        return (length == kept.Length ? kept : kept[..length], truncated);
    }
}
