using Microsoft.Win32.SafeHandles;

namespace Nacelle.Monitor.Logging;

/// <summary>
/// Copies a container's output pipes into its <see cref="CriLogWriter"/>, one record per line.
/// </summary>
/// <remarks>
/// <para>Bytes, not characters: content is copied byte for byte (invalid UTF-8, <c>\r</c> of a CRLF, NUL, escape
/// sequences all stay); only the <c>\n</c> that ends a line is consumed. (containerd additionally strips a <c>\r</c>
/// before the <c>\n</c>; nacelle keeps it, as CRI-O's conmon does.)</para>
/// <para>A line longer than <see cref="CriLogWriter.MaxLineSize"/> is written as <c>P</c> records of exactly that size
/// followed by an <c>F</c> record with the rest; a line of exactly that size is one <c>F</c> record, an empty line an
/// <c>F</c> record with empty content (as containerd does).</para>
/// <para>When the pipe ends (EOF, or a read error such as EIO from a pty master whose slave side closed) with bytes
/// after the last newline, they are written as a <c>P</c> record, as containerd and CRI-O do: kubelet prints a
/// <c>P</c> record's content without adding a newline, so <c>kubectl logs</c> reproduces exactly what the container
/// wrote; an <c>F</c> record would make it invent a newline the container never wrote.</para>
/// <para>Memory is bounded: bytes not yet written never exceed <see cref="CriLogWriter.MaxLineSize"/> per stream (plus
/// one read chunk of at most 64 KiB). Incomplete lines are held until their newline, the size limit or EOF (as
/// containerd does; there is no time-based flush).</para>
/// </remarks>
public static class CriLogPump
{
    private const int MinReadChunk = 4096;
    private const int MaxReadChunk = 64 * 1024;

    /// <summary>
    /// Pumps a tty container's single stream (the pty master, logged as <c>stdout</c>) or a container's two pipes
    /// (<paramref name="stderr"/> non-null) until both reach EOF. The task completes after the final records are
    /// written; the caller still owns (and disposes) the streams and the writer.
    /// </summary>
    public static Task RunContainerAsync(CriLogWriter writer, Stream stdout, Stream? stderr, CancellationToken cancellationToken = default)
    {
        var output = RunAsync(stdout, writer, CriLogStream.Stdout, cancellationToken);
        return stderr is null ? output : Task.WhenAll(output, RunAsync(stderr, writer, CriLogStream.Stderr, cancellationToken));
    }

    /// <summary>
    /// Pumps the read end of a pipe given as a file handle (ownership stays with the caller). See
    /// <see cref="RunAsync(Stream, CriLogWriter, CriLogStream, CancellationToken)"/>.
    /// </summary>
    public static async Task RunAsync(SafeFileHandle source, CriLogWriter writer, CriLogStream stream, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);

        // bufferSize 0: no FileStream buffer, every read goes straight to the pipe. Deliberately not disposed: that would
        // close the caller's handle, and the wrapper holds nothing else (its finalizer does not close the handle).
        var pipe = new FileStream(source, FileAccess.Read, bufferSize: 0);
        await RunAsync(pipe, writer, stream, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Reads <paramref name="source"/> until EOF and writes each line as a record of <paramref name="stream"/>. The task
    /// completes after the final flush. On cancellation the bytes already read are flushed (as a <c>P</c> record) and the
    /// task is cancelled; a read still blocked in the kernel is abandoned (its data is lost).
    /// </summary>
    public static async Task RunAsync(Stream source, CriLogWriter writer, CriLogStream stream, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(writer);

        var max = writer.MaxLineSize;
        var buffer = new byte[max + Math.Clamp(max, MinReadChunk, MaxReadChunk)];
        var splitter = new LineSplitter(buffer, max);
        try
        {
            while (true)
            {
                int read;
                try
                {
                    var pending = source.ReadAsync(buffer.AsMemory(splitter.Length), cancellationToken);
                    read = cancellationToken.CanBeCanceled && !pending.IsCompleted
                        ? await pending.AsTask().WaitAsync(cancellationToken).ConfigureAwait(false)
                        : await pending.ConfigureAwait(false);
                }
                catch (IOException)
                {
                    // A broken pipe / EIO from a pty whose other side is gone: the stream has ended.
                    read = 0;
                }

                if (read == 0)
                {
                    break;
                }

                splitter.Append(read, writer, stream);
            }
        }
        finally
        {
            // EOF (or cancellation) with bytes after the last newline: an unterminated line, written as P (see remarks).
            splitter.Flush(writer, stream);
        }
    }

    /// <summary>
    /// The line splitting state of one stream: <c>buffer[0..Length)</c> holds bytes read but not yet written, which after
    /// every <see cref="Append"/> are at most <c>max</c> bytes and contain no newline.
    /// </summary>
    internal sealed class LineSplitter(byte[] buffer, int max)
    {
        // How many of the pending bytes are known to contain no newline (not rescanned on the next read).
        private int _scanned;

        public int Length { get; private set; }

        public void Append(int count, CriLogWriter writer, CriLogStream stream)
        {
            Length += count;
            var start = 0;
            while (true)
            {
                var pending = buffer.AsSpan(start, Length - start);
                var newline = pending[_scanned..].IndexOf((byte)'\n');
                if (newline >= 0)
                {
                    newline += _scanned;
                }

                if (newline >= 0 && newline <= max)
                {
                    writer.Write(stream, partial: false, pending[..newline]);
                    start += newline + 1;
                    _scanned = 0;
                }
                else if (pending.Length > max)
                {
                    // More than max bytes and no newline among the first max + 1: the line goes on past the limit.
                    writer.Write(stream, partial: true, pending[..max]);
                    start += max;
                    _scanned = 0;
                }
                else
                {
                    _scanned = pending.Length;
                    break;
                }
            }

            if (start > 0)
            {
                buffer.AsSpan(start, Length - start).CopyTo(buffer);
                Length -= start;
            }
        }

        public void Flush(CriLogWriter writer, CriLogStream stream)
        {
            if (Length > 0)
            {
                writer.Write(stream, partial: true, buffer.AsSpan(0, Length));
                Length = 0;
                _scanned = 0;
            }
        }
    }
}
