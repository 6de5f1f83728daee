using System.Text;
using Microsoft.Win32.SafeHandles;
using Nacelle.ContainerCore.Interop;
using Nacelle.Monitor.Logging;
using Nacelle.Tests.Support.CriLogs;

namespace Nacelle.Tests.Unit.Monitor.Logging;

/// <summary>A clock that stands still unless moved (records get predictable timestamps).</summary>
internal sealed class FixedTime(DateTimeOffset now) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = now;

    public override DateTimeOffset GetUtcNow() => Now;
}

/// <summary>
/// A pipe as the monitor's pump reads it: a non-blocking read end (the pump's source) and a blocking write end the test
/// writes through (a container's side).
/// </summary>
internal sealed class TestPipe : IDisposable
{
    public TestPipe()
    {
        var (read, write) = DescriptorCalls.CreatePipe(nonBlockingRead: true, nonBlockingWrite: false);
        Read = read;
        Writer = new FileStream(write, FileAccess.Write, bufferSize: 0);
    }

    public SafeFileHandle Read { get; }

    public FileStream Writer { get; }

    /// <summary>Writes everything (blocking while the pipe is full) and closes the write end: end of file for the pump.</summary>
    public async Task WriteAndCloseAsync(byte[] data, int chunk = 65536)
    {
        for (var offset = 0; offset < data.Length; offset += chunk)
        {
            await Writer.WriteAsync(data.AsMemory(offset, Math.Min(chunk, data.Length - offset)));
        }

        Writer.Dispose();
    }

    public void Dispose()
    {
        Writer.Dispose();
        Read.Dispose();
    }
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
