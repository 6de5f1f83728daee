using System.Text;
using Nacelle.Monitor.Logging;
using Nacelle.Tests.Support.CriLogs;

namespace Nacelle.Tests.Unit.Monitor.Logging;

/// <summary>Reading CRI log files back: records, malformed lines, P+F reassembly, and the round trip through the writer.</summary>
public sealed class CriLogParserTests
{
    private static IReadOnlyList<CriLogLine> Lines(string file) => CriLogReader.ReadLines(new MemoryStream(Encoding.UTF8.GetBytes(file))).ToList();

    [Fact]
    public void ParsesARecord()
    {
        var record = CriLogParser.Parse("2026-11-23T11:23:35.123456789Z stderr F hello  world ");
        Assert.Equal(new CriTimestamp(new DateTimeOffset(2026, 11, 23, 11, 23, 35, TimeSpan.Zero).ToUnixTimeSeconds(), 123_456_789), record.Timestamp);
        Assert.Equal(CriLogStream.Stderr, record.Stream);
        Assert.False(record.IsPartial);
        Assert.Equal("hello  world ", record.Text); // spaces in the content are content
    }

    [Fact]
    public void ParsesPartialEmptyAndExtendedTags()
    {
        Assert.True(CriLogParser.Parse("2026-11-23T11:23:35Z stdout P abc").IsPartial);
        Assert.Empty(CriLogParser.Parse("2026-11-23T11:23:35Z stdout F ").Content);
        Assert.False(CriLogParser.Parse("2026-11-23T11:23:35Z stdout F:future x").IsPartial); // kubelet's forward-compatible tag list
        Assert.True(CriLogParser.Parse("2026-11-23T11:23:35Z stdout P:x:y x").IsPartial);
    }

    [Theory]
    [InlineData("", "timestamp is not found")]
    [InlineData("2026-11-23T11:23:35Z", "timestamp is not found")]
    [InlineData("yesterday stdout F x", "timestamp \"yesterday\" is not RFC3339Nano")]
    [InlineData("2026-11-23T11:23:35 stdout F x", "is not RFC3339Nano")]
    [InlineData("2026-11-23T11:23:35Z stdout", "stream type is not found")]
    [InlineData("2026-11-23T11:23:35Z stdin F x", "unexpected stream type \"stdin\"")]
    [InlineData("2026-11-23T11:23:35Z STDOUT F x", "unexpected stream type")]
    [InlineData("2026-11-23T11:23:35Z stdout F", "log tag is not found")]
    [InlineData("2026-11-23T11:23:35Z stdout X x", "unexpected log tag \"X\"")]
    [InlineData("2026-11-23T11:23:35Z stdout  x", "unexpected log tag \"\"")]
    [InlineData("2026-11-23T11:23:35Z stdout p x", "unexpected log tag \"p\"")]
    public void RejectsMalformedRecordsSayingWhy(string line, string reason)
    {
        var error = Assert.Throws<FormatException>(() => CriLogParser.Parse(line));
        Assert.Contains(reason, error.Message);
        Assert.False(CriLogParser.TryParse(Encoding.UTF8.GetBytes(line), out _, out var message));
        Assert.Equal(error.Message, message);
    }

    [Fact]
    public void ReaderNamesTheLineOfAMalformedRecord()
    {
        var file = "2026-11-23T11:23:35Z stdout F ok\n2026-11-23T11:23:35Z stdout F ok\n2026-11-23T11:23:35Z bogus F x\n";
        var error = Assert.Throws<FormatException>(() => Lines(file));
        Assert.StartsWith("line 3: unexpected stream type \"bogus\"", error.Message);
    }

    [Fact]
    public void ReaderRejectsATornLastRecord()
    {
        var error = Assert.Throws<FormatException>(() => Lines("2026-11-23T11:23:35Z stdout F ok\n2026-11-23T11:23:3"));
        Assert.StartsWith("line 2: the file ends without a newline", error.Message);
    }

    [Fact]
    public void ReassemblesPartialsPerStreamEvenWhenInterleaved()
    {
        var lines = Lines(
            "2026-11-23T11:23:35Z stdout P he\n" +
            "2026-11-23T11:23:36Z stderr P wo\n" +
            "2026-11-23T11:23:37Z stdout P ll\n" +
            "2026-11-23T11:23:38Z stderr F rld\n" +
            "2026-11-23T11:23:39Z stdout F o\n" +
            "2026-11-23T11:23:40Z stdout F \n" +
            "2026-11-23T11:23:41Z stderr P no newline\n");

        Assert.Equal(4, lines.Count);
        Assert.Equal((CriLogStream.Stderr, "world", true, 2), (lines[0].Stream, lines[0].Text, lines[0].IsComplete, lines[0].RecordCount));
        Assert.Equal("2026-11-23T11:23:36Z", lines[0].Timestamp.ToString()); // the first record's time
        Assert.Equal((CriLogStream.Stdout, "hello", true, 3), (lines[1].Stream, lines[1].Text, lines[1].IsComplete, lines[1].RecordCount));
        Assert.Equal((CriLogStream.Stdout, "", true, 1), (lines[2].Stream, lines[2].Text, lines[2].IsComplete, lines[2].RecordCount));
        Assert.Equal((CriLogStream.Stderr, "no newline", false, 1), (lines[3].Stream, lines[3].Text, lines[3].IsComplete, lines[3].RecordCount));
    }

    [Fact]
    public void ReadsRecordsLongerThanItsBuffer()
    {
        var big = new string('q', 200_000);
        var lines = Lines($"2026-11-23T11:23:35Z stdout F {big}\n2026-11-23T11:23:35Z stdout F tail\n");
        Assert.Equal([big, "tail"], lines.Select(l => l.Text));
    }

    [Fact]
    public async Task RoundTripsThroughWriterAndPump()
    {
        var dir = Directory.CreateTempSubdirectory("nacelle-roundtrip-").FullName;
        try
        {
            var path = Path.Combine(dir, "0.log");
            var time = new FixedTime(LogAssert.Noon);
            byte[] input = [.. "short\n"u8, .. Encoding.UTF8.GetBytes(new string('L', 100)), (byte)'\n', .. "\n"u8, 0xff, 0x00, (byte)'\r', (byte)'\n', .. "unterminated"u8];
            using (var writer = CriLogWriter.Open(path, new CriLogWriterOptions { MaxLineSize = 30, TimeProvider = time }))
            {
                using var pipe = new TestPipe();
                var pump = CriLogPump.RunAsync(pipe.Read, writer, CriLogStream.Stderr);
                await pipe.WriteAndCloseAsync(input);
                await pump.WaitAsync(TimeSpan.FromSeconds(30));
            }

            var records = CriLogReader.ReadAllRecords(path);
            Assert.All(records, r => Assert.Equal(LogAssert.NoonText, r.Timestamp.ToString()));
            Assert.Equal(8, records.Count); // short, 4 for the long line (30+30+30+10), empty, binary, unterminated P

            var lines = CriLogReader.ReadAllLines(path);
            Assert.Equal(["short"u8.ToArray(), Encoding.UTF8.GetBytes(new string('L', 100)), [], [0xff, 0x00, (byte)'\r'], "unterminated"u8.ToArray()], lines.Select(l => l.Content));
            Assert.Equal([true, true, true, true, false], lines.Select(l => l.IsComplete));
            Assert.All(lines, l => Assert.Equal(CriLogStream.Stderr, l.Stream));

            // Concatenating lines (with a newline after each complete one) gives back the container's exact output.
            var output = lines.SelectMany(l => l.IsComplete ? [.. l.Content, (byte)'\n'] : l.Content).ToArray();
            Assert.Equal(input, output);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
