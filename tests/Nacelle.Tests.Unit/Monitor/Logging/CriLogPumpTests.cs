using System.Net.Sockets;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Nacelle.Monitor.Logging;
using Nacelle.Tests.Support.CriLogs;

namespace Nacelle.Tests.Unit.Monitor.Logging;

/// <summary>Pipes to records: line splitting at the size limit (<see cref="CriLineSplitter"/>, whatever the read sizes),
/// EOF handling, two streams into one file, a non-blocking pipe drained through the fd reactor.</summary>
public sealed class CriLogPumpTests : IDisposable
{
    private const int Max = 8;

    private readonly string _dir = Directory.CreateTempSubdirectory("nacelle-pump-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string LogPath => Path.Combine(_dir, "0.log");

    private CriLogWriter Open(int maxLineSize = Max) =>
        CriLogWriter.Open(LogPath, new CriLogWriterOptions { MaxLineSize = maxLineSize, TimeProvider = new FixedTime(LogAssert.Noon) });

    /// <summary>Splits <paramref name="input"/> delivered in reads of <paramref name="chunk"/> bytes, as the pump does.</summary>
    private string[] Split(string input, int chunk, int maxLineSize = Max)
    {
        File.Delete(LogPath);
        using (var writer = Open(maxLineSize))
        {
            var splitter = new CriLineSplitter(maxLineSize);
            var bytes = Encoding.Latin1.GetBytes(input);
            for (var offset = 0; offset < bytes.Length; offset += chunk)
            {
                splitter.Append(bytes.AsSpan(offset, Math.Min(chunk, bytes.Length - offset)), writer, CriLogStream.Stdout);
                Assert.True(splitter.Held <= maxLineSize);
            }

            splitter.Flush(writer, CriLogStream.Stdout);
        }

        return LogAssert.Records(LogPath);
    }

    /// <summary>Pumps <paramref name="input"/> through a real pipe, written in pieces of <paramref name="chunk"/> bytes.</summary>
    private async Task<string[]> PumpAsync(string input, int chunk, int maxLineSize = Max)
    {
        File.Delete(LogPath);
        using (var writer = Open(maxLineSize))
        using (var pipe = new TestPipe())
        {
            var pump = CriLogPump.RunAsync(pipe.Read, writer, CriLogStream.Stdout);
            await pipe.WriteAndCloseAsync(Encoding.Latin1.GetBytes(input), chunk);
            await pump.WaitAsync(TimeSpan.FromSeconds(30));
        }

        return LogAssert.Records(LogPath);
    }

    public static TheoryData<string, string[]> Cases => new()
    {
        { "a\nb\n", ["stdout F a", "stdout F b"] },
        { "\n", ["stdout F "] },
        { "\n\n", ["stdout F ", "stdout F "] },
        { "", [] },
        { "12345678\n", ["stdout F 12345678"] },                                   // exactly max: one F
        { "123456789\n", ["stdout P 12345678", "stdout F 9"] },                    // max + 1: P then F
        { "1234567812345678\n", ["stdout P 12345678", "stdout F 12345678"] },      // 2 * max: no empty F at the end
        { "12345678123456781234\n", ["stdout P 12345678", "stdout P 12345678", "stdout F 1234"] },
        { "abc\ndef", ["stdout F abc", "stdout P def"] },                          // EOF without newline: P
        { "12345678", ["stdout P 12345678"] },                                     // EOF right at max
        { "123456789", ["stdout P 12345678", "stdout P 9"] },
        { "a\r\nb\r\n", ["stdout F a\r", "stdout F b\r"] },                        // CRLF: only the \n is the delimiter
        { "x\0\u00ff\u00fe y\n", ["stdout F x\0\u00ff\u00fe y"] },                 // any byte, not UTF-8 aware
        { "1234567\n12345678\n123456789\n", ["stdout F 1234567", "stdout F 12345678", "stdout P 12345678", "stdout F 9"] },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task SplitsLinesTheSameWhateverTheReadSizes(string input, string[] expected)
    {
        foreach (var chunk in new[] { 1, 2, 3, 7, 8, 9, 4096 })
        {
            Assert.Equal(expected, Split(input, chunk));
        }

        Assert.Equal(expected, await PumpAsync(input, chunk: 3));
    }

    [Fact]
    public async Task DefaultLimitIs16KiB()
    {
        var line = new string('x', 16 * 1024);
        var records = await PumpAsync(line + "\n" + line + "y\n", chunk: 65536, maxLineSize: CriLogWriterOptions.DefaultMaxLineSize);
        Assert.Equal(["stdout F " + line, "stdout P " + line, "stdout F y"], records);
    }

    [Fact]
    public async Task MemoryStaysBoundedForAHugeLine()
    {
        var data = new byte[1 << 20];
        data.AsSpan().Fill((byte)'z');
        using (var writer = Open(maxLineSize: 1024))
        using (var pipe = new TestPipe())
        {
            var pump = CriLogPump.RunAsync(pipe.Read, writer, CriLogStream.Stdout);
            await pipe.WriteAndCloseAsync(data);
            await pump.WaitAsync(TimeSpan.FromSeconds(30));
        }

        var records = CriLogReader.ReadAllRecords(LogPath);
        Assert.Equal(1024, records.Count);
        Assert.All(records, r => Assert.True(r.IsPartial && r.Content.Length == 1024));

        // What is held between reads never exceeds the line limit, however long the line.
        var splitter = new CriLineSplitter(1024);
        using var other = CriLogWriter.Open(Path.Combine(_dir, "1.log"), new CriLogWriterOptions { MaxLineSize = 1024 });
        splitter.Append(data, other, CriLogStream.Stdout);
        Assert.Equal(1024, splitter.Held); // the last 1024 bytes: a full record, written as F if a newline comes next
        splitter.Append(data.AsSpan(0, 1000), other, CriLogStream.Stdout);
        Assert.Equal(1000, splitter.Held);
    }

    [Fact]
    public async Task AReadErrorEndsTheStream()
    {
        // read(2) on a socket never connected fails (ENOTCONN), as a pty master fails with EIO once its container side is gone.
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        using var source = new SafeFileHandle(socket.Handle, ownsHandle: false);
        using (var writer = Open())
        {
            await CriLogPump.RunAsync(source, writer, CriLogStream.Stdout).WaitAsync(TimeSpan.FromSeconds(30));
        }

        Assert.Empty(LogAssert.Records(LogPath));
    }

    [Fact]
    public async Task InterleavedStdoutAndStderrFromTwoPipesStayWholePerLine()
    {
        using var stdoutPipe = new TestPipe();
        using var stderrPipe = new TestPipe();
        static string Line(string name, int i) => $"{name}-{i}:" + new string(name[0], i % 40); // up to 50 bytes: some split at 32

        using (var writer = Open(maxLineSize: 32))
        {
            var pump = CriLogPump.RunContainerAsync(writer, stdoutPipe.Read, stderrPipe.Read);
            Task Produce(TestPipe pipe, string name) => Task.Run(() =>
                // Odd-sized writes so that lines straddle reads.
                pipe.WriteAndCloseAsync(Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(0, 3000).Select(i => Line(name, i) + "\n"))), chunk: 997));

            await Task.WhenAll(Produce(stdoutPipe, "out"), Produce(stderrPipe, "err"));
            await pump.WaitAsync(TimeSpan.FromSeconds(30));
        }

        var records = CriLogReader.ReadAllRecords(LogPath);
        Assert.All(records, r => Assert.True(r.Content.Length <= 32));
        Assert.Contains(records, r => r.IsPartial);
        var lines = CriLogReader.ReadAllLines(LogPath);
        Assert.All(lines, l => Assert.True(l.IsComplete));
        Assert.Equal(Enumerable.Range(0, 3000).Select(i => Line("out", i)), lines.Where(l => l.Stream == CriLogStream.Stdout).Select(l => l.Text));
        Assert.Equal(Enumerable.Range(0, 3000).Select(i => Line("err", i)), lines.Where(l => l.Stream == CriLogStream.Stderr).Select(l => l.Text));
    }

    [Fact]
    public async Task TtyModeLogsTheSingleStreamAsStdout()
    {
        using (var writer = Open())
        using (var pipe = new TestPipe())
        {
            var pump = CriLogPump.RunContainerAsync(writer, pipe.Read, stderr: null);
            await pipe.WriteAndCloseAsync("$ ls\r\nbin\r\n"u8.ToArray());
            await pump.WaitAsync(TimeSpan.FromSeconds(30));
        }

        Assert.Equal(["stdout F $ ls\r", "stdout F bin\r"], LogAssert.Records(LogPath));
    }

    [Fact]
    public async Task PumpsAFileHandle()
    {
        var input = Path.Combine(_dir, "input");
        File.WriteAllText(input, "from a handle\nrest");
        using (var handle = File.OpenHandle(input))
        using (var writer = Open(maxLineSize: 64))
        {
            await CriLogPump.RunAsync(handle, writer, CriLogStream.Stderr);
            Assert.False(handle.IsClosed); // the caller still owns it
        }

        Assert.Equal(["stderr F from a handle", "stderr P rest"], LogAssert.Records(LogPath));
    }

    [Fact]
    public async Task CancellationFlushesWhatWasReadAndEndsThePump()
    {
        using var pipe = new TestPipe();
        using var cancel = new CancellationTokenSource();
        using (var writer = Open(maxLineSize: 64))
        {
            var pump = CriLogPump.RunAsync(pipe.Read, writer, CriLogStream.Stdout, cancellationToken: cancel.Token);
            await pipe.Writer.WriteAsync("whole\nhalf"u8.ToArray());
            await WaitUntil(() => File.ReadAllText(LogPath).Contains("whole", StringComparison.Ordinal));
            await Task.Delay(100); // let the pump take "half" and wait for more
            cancel.Cancel();
            await pump.WaitAsync(TimeSpan.FromSeconds(10)); // stopped, not failed
        }

        Assert.Equal(["stdout F whole", "stdout P half"], LogAssert.Records(LogPath));
    }

    [Fact]
    public async Task AFullDiskNeverStopsThePipeFromDraining()
    {
        var full = Path.Combine(_dir, "full.log");
        File.CreateSymbolicLink(full, "/dev/full");
        using var pipe = new TestPipe();
        using var writer = CriLogWriter.Open(full, new CriLogWriterOptions { MaxLineSize = 100 });
        var pump = CriLogPump.RunAsync(pipe.Read, writer, CriLogStream.Stdout);

        // 2000 lines of 100 bytes: 200 KB, more than a pipe buffer holds, so the writes below only finish if the pump drains.
        var line = new string('d', 99) + "\n";
        var bytes = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat(line, 2000)));
        await Task.Run(() => pipe.WriteAndCloseAsync(bytes)).WaitAsync(TimeSpan.FromSeconds(30));
        await pump.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(2000, writer.DroppedRecords);
        Assert.Equal(2000 * 99, writer.DroppedBytes);
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met within 10 s");
            await Task.Delay(10);
        }
    }
}
