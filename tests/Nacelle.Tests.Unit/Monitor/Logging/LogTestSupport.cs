using System.Text;
using Nacelle.Monitor.Logging;
using Nacelle.Tests.Support.CriLogs;

namespace Nacelle.Tests.Unit.Monitor.Logging;

/// <summary>A clock that stands still unless moved (records get predictable timestamps).</summary>
internal sealed class FixedTime(DateTimeOffset now) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = now;

    public override DateTimeOffset GetUtcNow() => Now;
}

/// <summary>A read-only stream that hands out its bytes in reads of at most <c>chunk</c> bytes, then EOF or an error.</summary>
internal sealed class ChunkedStream(byte[] data, int chunk, Exception? failAtEnd = null) : Stream
{
    private int _position;

    /// <summary>The largest count a caller asked for in one read.</summary>
    public int LargestRequest { get; private set; }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        LargestRequest = Math.Max(LargestRequest, buffer.Length);
        var n = Math.Min(Math.Min(chunk, buffer.Length), data.Length - _position);
        if (n == 0 && failAtEnd is not null)
        {
            throw failAtEnd;
        }

        data.AsSpan(_position, n).CopyTo(buffer);
        _position += n;
        return n;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Read(buffer.Span));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        Task.FromResult(Read(buffer.AsSpan(offset, count)));

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

internal static class LogAssert
{
    public static readonly DateTimeOffset Noon = new DateTimeOffset(2026, 11, 23, 12, 0, 0, TimeSpan.Zero).AddTicks(1_234_567);

    public const string NoonText = "2026-11-23T12:00:00.1234567Z";

    /// <summary>The records of a file as "stream tag content" strings (content decoded as Latin-1 to keep every byte visible).</summary>
    public static string[] Records(string path) =>
        CriLogReader.ReadAllRecords(path)
            .Select(r => $"{(r.Stream == CriLogStream.Stdout ? "stdout" : "stderr")} {(r.IsPartial ? 'P' : 'F')} {Encoding.Latin1.GetString(r.Content)}")
            .ToArray();
}
