using System.Text;

using Nacelle.Monitor.Logging;

namespace Nacelle.Tests.Support.CriLogs;

/// <summary>
/// Parses CRI log records (<c>&lt;RFC3339Nano&gt; &lt;stdout|stderr&gt; &lt;tag&gt; &lt;content&gt;</c>) as kubelet does,
/// but strictly: the tag's first <c>:</c>-separated part must be <c>P</c> or <c>F</c> (kubelet treats anything but
/// <c>P</c> as full; further parts, kubelet's forward-compatible extension, are accepted and ignored).
/// </summary>
public static class CriLogParser
{
    /// <summary>Parses one record (without its newline); throws <see cref="FormatException"/> saying what is wrong.</summary>
    public static CriLogRecord Parse(ReadOnlySpan<byte> line) =>
        TryParse(line, out var record, out var error) ? record : throw new FormatException(error);

    /// <summary>Parses one record given as text (tests).</summary>
    public static CriLogRecord Parse(string line) => Parse(Encoding.UTF8.GetBytes(line));

    /// <summary>Parses one record (without its newline); on failure <paramref name="error"/> says what is wrong.</summary>
    public static bool TryParse(ReadOnlySpan<byte> line, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out CriLogRecord? record, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? error)
    {
        record = null;
        if (line.Contains((byte)'\n'))
        {
            error = "a CRI log record cannot contain a newline";
            return false;
        }

        var space = line.IndexOf((byte)' ');
        if (space < 0)
        {
            error = $"timestamp is not found in {Quote(line)}";
            return false;
        }

        if (!CriTimestampParser.TryParse(line[..space], out var timestamp))
        {
            error = $"timestamp {Quote(line[..space])} is not RFC3339Nano (2006-01-02T15:04:05.999999999Z07:00)";
            return false;
        }

        line = line[(space + 1)..];
        space = line.IndexOf((byte)' ');
        if (space < 0)
        {
            error = "stream type is not found";
            return false;
        }

        CriLogStream stream;
        if (line[..space].SequenceEqual("stdout"u8))
        {
            stream = CriLogStream.Stdout;
        }
        else if (line[..space].SequenceEqual("stderr"u8))
        {
            stream = CriLogStream.Stderr;
        }
        else
        {
            error = $"unexpected stream type {Quote(line[..space])} (stdout or stderr)";
            return false;
        }

        line = line[(space + 1)..];
        space = line.IndexOf((byte)' ');
        if (space < 0)
        {
            error = "log tag is not found (a tag and a space must follow the stream)";
            return false;
        }

        var tag = line[..space];
        var colon = tag.IndexOf((byte)':');
        var first = colon < 0 ? tag : tag[..colon];
        bool partial;
        if (first.SequenceEqual("P"u8))
        {
            partial = true;
        }
        else if (first.SequenceEqual("F"u8))
        {
            partial = false;
        }
        else
        {
            error = $"unexpected log tag {Quote(tag)} (P or F)";
            return false;
        }

        record = new CriLogRecord(timestamp, stream, partial, line[(space + 1)..].ToArray());
        error = null;
        return true;
    }

    private static string Quote(ReadOnlySpan<byte> text)
    {
        const int Limit = 80;
        var shown = Encoding.UTF8.GetString(text.Length > Limit ? text[..Limit] : text);
        return text.Length > Limit ? $"\"{shown}...\"" : $"\"{shown}\"";
    }
}
