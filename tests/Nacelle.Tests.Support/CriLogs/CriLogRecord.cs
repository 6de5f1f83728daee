using System.Text;

using Nacelle.Monitor.Logging;

namespace Nacelle.Tests.Support.CriLogs;

/// <summary>One line of a CRI log file: a record as the writer wrote it.</summary>
/// <param name="Timestamp">When the record was written.</param>
/// <param name="Stream">stdout or stderr.</param>
/// <param name="IsPartial">Tag <c>P</c>: the line continues in the next record of the same stream.</param>
/// <param name="Content">The content bytes (no newline).</param>
public sealed record CriLogRecord(CriTimestamp Timestamp, CriLogStream Stream, bool IsPartial, byte[] Content)
{
    /// <summary>The content decoded as UTF-8 (invalid sequences become U+FFFD).</summary>
    public string Text => Encoding.UTF8.GetString(Content);
}

/// <summary>A container output line reassembled from its <c>P</c> records and the closing <c>F</c> record.</summary>
/// <param name="Timestamp">The timestamp of the line's first record.</param>
/// <param name="Stream">stdout or stderr.</param>
/// <param name="Content">The line's bytes, without the newline.</param>
/// <param name="IsComplete">
/// False for a line that ended with <c>P</c> records only: the container's output ended (or the file was rotated)
/// before a newline.
/// </param>
/// <param name="RecordCount">How many records the line was written as.</param>
public sealed record CriLogLine(CriTimestamp Timestamp, CriLogStream Stream, byte[] Content, bool IsComplete, int RecordCount)
{
    /// <summary>The content decoded as UTF-8 (invalid sequences become U+FFFD).</summary>
    public string Text => Encoding.UTF8.GetString(Content);
}
