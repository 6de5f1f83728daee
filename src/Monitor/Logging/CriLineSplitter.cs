namespace Nacelle.Monitor.Logging;

/// <summary>
/// Splits one stream's bytes into CRI log records, one per line, whatever the sizes of the reads that deliver them.
/// </summary>
/// <remarks>
/// <para>Bytes, not characters: content is copied byte for byte (invalid UTF-8, <c>\r</c> of a CRLF, NUL, escape
/// sequences all stay); only the <c>\n</c> that ends a line is consumed. (containerd additionally strips a <c>\r</c>
/// before the <c>\n</c>; nacelle keeps it, as CRI-O's conmon does.)</para>
/// <para>A line longer than <see cref="CriLogWriter.MaxLineSize"/> is written as <c>P</c> records of exactly that size
/// followed by an <c>F</c> record with the rest; a line of exactly that size is one <c>F</c> record, an empty line an
/// <c>F</c> record with empty content (as containerd does).</para>
/// <para>When the stream ends with bytes after the last newline (<see cref="Flush"/>), they are written as a <c>P</c>
/// record, as containerd and CRI-O do: kubelet prints a <c>P</c> record's content without adding a newline, so
/// <c>kubectl logs</c> reproduces exactly what the container wrote.</para>
/// <para>Memory is bounded: the bytes of an unfinished line are the only thing held between reads, never more than
/// <see cref="CriLogWriter.MaxLineSize"/>, and nothing at all between complete lines. There is no time-based flush
/// (as containerd).</para>
/// </remarks>
public sealed class CriLineSplitter(int maxLineSize)
{
    // Small holds keep their array; a large one is given back once the line it held is written.
    private const int KeptCapacity = 256;

    private byte[]? _held;

    /// <summary>Bytes of an unfinished line waiting for the rest (at most the line limit, and no newline among them).</summary>
    public int Held { get; private set; }

    /// <summary>Writes every record <paramref name="data"/> completes; keeps the start of an unfinished line.</summary>
    public void Append(ReadOnlySpan<byte> data, CriLogWriter writer, CriLogStream stream)
    {
        ArgumentNullException.ThrowIfNull(writer);
        while (!data.IsEmpty)
        {
            var held = _held.AsSpan(0, Held);
            var room = maxLineSize - Held;
            var newline = data.IndexOf((byte)'\n');
            if (newline >= 0 && newline <= room)
            {
                writer.Write(stream, partial: false, held, data[..newline]);
                data = data[(newline + 1)..];
                Release();
            }
            else if (data.Length > room)
            {
                // No newline within the limit: the line goes on past it.
                writer.Write(stream, partial: true, held, data[..room]);
                data = data[room..];
                Release();
            }
            else
            {
                Hold(data);
                return;
            }
        }
    }

    /// <summary>The stream ended: an unfinished line is written as a <c>P</c> record.</summary>
    public void Flush(CriLogWriter writer, CriLogStream stream)
    {
        ArgumentNullException.ThrowIfNull(writer);
        if (Held > 0)
        {
            writer.Write(stream, partial: true, _held.AsSpan(0, Held));
            Release();
        }
    }

    private void Hold(ReadOnlySpan<byte> data)
    {
        var needed = Held + data.Length;
        if (_held is null || _held.Length < needed)
        {
            var grown = new byte[Math.Min(Math.Max(needed, Math.Max(KeptCapacity, (_held?.Length ?? 0) * 2)), maxLineSize)];
            _held.AsSpan(0, Held).CopyTo(grown);
            _held = grown;
        }

        data.CopyTo(_held.AsSpan(Held));
        Held = needed;
    }

    private void Release()
    {
        Held = 0;
        if (_held is { Length: > KeptCapacity })
        {
            _held = null;
        }
    }
}
