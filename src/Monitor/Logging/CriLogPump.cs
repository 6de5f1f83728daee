using Microsoft.Win32.SafeHandles;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Reactor;
using Nacelle.Monitor.Memory;

namespace Nacelle.Monitor.Logging;

/// <summary>Where a container's output goes besides its log: the pipes of attached clients (see Stdio/AttachFanout).</summary>
public interface IOutputTap
{
    /// <summary>A chunk of the container's output, as read. Must not block (the log must never wait).</summary>
    void Write(CriLogStream stream, ReadOnlySpan<byte> data);

    /// <summary>The stream ended.</summary>
    void End(CriLogStream stream);
}

/// <summary>
/// Copies a container's output (its pipes, or a tty container's pty master) into its <see cref="CriLogWriter"/>, one
/// record per line (<see cref="CriLineSplitter"/>), and hands every chunk to the attached clients. Driven by the fd
/// reactor: a descriptor is read, without blocking, until it has nothing more, then waited on; no thread is parked in a
/// read. Each read goes to the monitor's lent read buffer and its records leave in one batched write, so a pump holds
/// no memory of its own between reads (only an unfinished line).
/// </summary>
public static class CriLogPump
{
    /// <summary>Reads in a row before letting the loop serve other descriptors.</summary>
    private const int ReadsPerTurn = 16;

    /// <summary>
    /// Pumps a tty container's single stream (logged as <c>stdout</c>) or a container's two pipes (<paramref name="stderr"/>
    /// non-null) until both end. Sources must be non-blocking; the caller owns them, and the writer.
    /// </summary>
    public static Task RunContainerAsync(CriLogWriter? writer, SafeFileHandle stdout, SafeFileHandle? stderr, IOutputTap? tap = null,
        CancellationToken cancellationToken = default)
    {
        var output = RunAsync(stdout, writer, CriLogStream.Stdout, tap, cancellationToken);
        return stderr is null ? output : Task.WhenAll(output, RunAsync(stderr, writer, CriLogStream.Stderr, tap, cancellationToken));
    }

    /// <summary>
    /// Reads the non-blocking descriptor <paramref name="source"/> until end of file (or a read error such as EIO from a
    /// pty master whose other side closed) and writes each line as a record of <paramref name="stream"/> (nowhere when
    /// <paramref name="writer"/> is null: the output is drained, or the container would block). The task completes after
    /// the final record. Cancelled, it flushes what it read and ends.
    /// </summary>
    public static async Task RunAsync(SafeFileHandle source, CriLogWriter? writer, CriLogStream stream, IOutputTap? tap = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        var splitter = writer is null ? null : new CriLineSplitter(writer.MaxLineSize);
        try
        {
            var reads = 0;
            while (true)
            {
                var n = ReadOnce(source, writer, splitter, stream, tap);
                if (n == 0)
                {
                    return;
                }

                if (n < 0 || ++reads == ReadsPerTurn)
                {
                    reads = 0;
                    await FdReactor.WaitReadableAsync(source, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // stopped: what was read is written below
        }
        finally
        {
            if (splitter is not null)
            {
                splitter.Flush(writer!, stream);
            }

            tap?.End(stream);
        }
    }

    /// <summary>One read into the lent buffer, its lines written and the chunk tapped: the bytes read, 0 at the end, -1
    /// when there is nothing yet.</summary>
    private static int ReadOnce(SafeFileHandle source, CriLogWriter? writer, CriLineSplitter? splitter, CriLogStream stream, IOutputTap? tap)
    {
        using var lease = ScratchMemory.Read.Rent();
        int n;
        try
        {
            n = DescriptorCalls.Read(source, lease.Span);
        }
        catch (IOException)
        {
            return 0; // EIO from a pty master whose container side is gone: the stream has ended
        }

        if (n > 0)
        {
            var chunk = lease.Span[..n];
            if (splitter is not null)
            {
                using (writer!.BeginBatch())
                {
                    splitter.Append(chunk, writer, stream);
                }
            }

            tap?.Write(stream, chunk);
        }

        return n;
    }
}
