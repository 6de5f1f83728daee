using Nacelle.Monitor.Logging;

namespace Nacelle.Tests.Support.CriLogs;

/// <summary>
/// Reads a CRI log file back: its records one by one, or its lines with <c>P</c> records joined to the <c>F</c> record
/// that completes them (per stream: the records of stdout and stderr may interleave).
/// </summary>
public static class CriLogReader
{
    /// <summary>
    /// The records of <paramref name="source"/>, read lazily. A malformed line, or a last line without its newline (a
    /// torn write), throws <see cref="FormatException"/> naming the 1-based line number.
    /// </summary>
    public static IEnumerable<CriLogRecord> ReadRecords(Stream source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var buffer = new byte[64 * 1024];
        var length = 0;
        var lineNumber = 0;
        while (true)
        {
            if (length == buffer.Length)
            {
                Array.Resize(ref buffer, buffer.Length * 2);
            }

            var read = source.Read(buffer, length, buffer.Length - length);
            if (read == 0)
            {
                if (length > 0)
                {
                    throw new FormatException($"line {lineNumber + 1}: the file ends without a newline after {length} bytes (torn write?)");
                }

                yield break;
            }

            var scanFrom = length;
            length += read;
            var start = 0;
            int newline;
            while ((newline = buffer.AsSpan(scanFrom, length - scanFrom).IndexOf((byte)'\n')) >= 0)
            {
                var end = scanFrom + newline;
                lineNumber++;
                yield return ParseLine(buffer.AsSpan(start, end - start), lineNumber);
                start = end + 1;
                scanFrom = start;
            }

            buffer.AsSpan(start, length - start).CopyTo(buffer);
            length -= start;
        }
    }

    /// <summary>
    /// The lines of <paramref name="source"/>: each stream's <c>P</c> records joined with the <c>F</c> record that
    /// completes them, in the order their <c>F</c> records appear. Lines left incomplete at the end (only <c>P</c>
    /// records) come last with <see cref="CriLogLine.IsComplete"/> false.
    /// </summary>
    public static IEnumerable<CriLogLine> ReadLines(Stream source)
    {
        var pending = new Dictionary<CriLogStream, (CriTimestamp First, MemoryStream Bytes, int Records, long Order)>();
        long order = 0;
        foreach (var record in ReadRecords(source))
        {
            if (!pending.TryGetValue(record.Stream, out var line))
            {
                line = (record.Timestamp, new MemoryStream(), 0, order++);
            }

            line.Bytes.Write(record.Content);
            line.Records++;
            if (record.IsPartial)
            {
                pending[record.Stream] = line;
                continue;
            }

            pending.Remove(record.Stream);
            yield return new CriLogLine(line.First, record.Stream, line.Bytes.ToArray(), IsComplete: true, line.Records);
        }

        foreach (var (stream, line) in pending.OrderBy(p => p.Value.Order))
        {
            yield return new CriLogLine(line.First, stream, line.Bytes.ToArray(), IsComplete: false, line.Records);
        }
    }

    /// <summary>All records of the file at <paramref name="path"/>.</summary>
    public static IReadOnlyList<CriLogRecord> ReadAllRecords(string path)
    {
        using var file = File.OpenRead(path);
        return ReadRecords(file).ToList();
    }

    /// <summary>All reassembled lines of the file at <paramref name="path"/>.</summary>
    public static IReadOnlyList<CriLogLine> ReadAllLines(string path)
    {
        using var file = File.OpenRead(path);
        return ReadLines(file).ToList();
    }

    private static CriLogRecord ParseLine(ReadOnlySpan<byte> line, int lineNumber) =>
        CriLogParser.TryParse(line, out var record, out var error) ? record : throw new FormatException($"line {lineNumber}: {error}");
}
