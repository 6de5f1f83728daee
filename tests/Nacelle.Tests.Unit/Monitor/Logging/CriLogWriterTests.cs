using System.Text;
using Nacelle.Common;
using Nacelle.Monitor.Logging;
using Nacelle.Tests.Support.CriLogs;

namespace Nacelle.Tests.Unit.Monitor.Logging;

/// <summary>The log file itself: record format, file mode, reopen after rotation, failures that drop and count.</summary>
public sealed class CriLogWriterTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("nacelle-log-").FullName;
    private readonly FixedTime _time = new(LogAssert.Noon);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string LogPath => Path.Combine(_dir, "0.log");

    private CriLogWriter Open(string? path = null, int maxLineSize = CriLogWriterOptions.DefaultMaxLineSize) =>
        CriLogWriter.Open(path ?? LogPath, new CriLogWriterOptions { TimeProvider = _time, MaxLineSize = maxLineSize });

    [Fact]
    public void WritesRecordsInTheExactCriFormat()
    {
        using (var writer = Open())
        {
            writer.Write(CriLogStream.Stdout, partial: false, "hello world"u8);
            _time.Now = new DateTimeOffset(2026, 11, 23, 12, 0, 1, TimeSpan.Zero);
            writer.Write(CriLogStream.Stderr, partial: true, "part"u8);
            writer.Write(CriLogStream.Stderr, partial: false, ""u8);
            Assert.Equal(3, writer.WrittenRecords);
            Assert.Equal(0, writer.DroppedRecords);
        }

        Assert.Equal(
            $"{LogAssert.NoonText} stdout F hello world\n" +
            "2026-11-23T12:00:01Z stderr P part\n" +
            "2026-11-23T12:00:01Z stderr F \n",
            File.ReadAllText(LogPath));
    }

    [Fact]
    public void ContentIsWrittenByteForByte()
    {
        byte[] content = [0xff, 0xfe, (byte)'\r', 0, (byte)' ', 0xe2, 0x82, 0xac, 0x1b, (byte)'['];
        using (var writer = Open())
        {
            writer.Write(CriLogStream.Stdout, partial: false, content);
        }

        var expected = Encoding.ASCII.GetBytes($"{LogAssert.NoonText} stdout F ").Concat(content).Append((byte)'\n');
        Assert.Equal(expected, File.ReadAllBytes(LogPath));
    }

    [Fact]
    public void ARecordCannotContainANewline()
    {
        using var writer = Open();
        Assert.Throws<ArgumentException>(() => writer.Write(CriLogStream.Stdout, false, "a\nb"u8));
        Assert.Equal(0, new FileInfo(LogPath).Length);
    }

    [Fact]
    public void NewFileGetsMode0640()
    {
        using var writer = Open();
        var mode = File.GetUnixFileMode(LogPath);
        const UnixFileMode Allowed = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead;
        Assert.Equal((UnixFileMode)0, mode & ~Allowed); // never wider than 0640, whatever the umask
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, mode & (UnixFileMode.UserRead | UnixFileMode.UserWrite));
    }

    [Fact]
    public void AppendsToAnExistingFile()
    {
        File.WriteAllText(LogPath, $"{LogAssert.NoonText} stdout F before\n");
        using (var writer = Open())
        {
            writer.Write(CriLogStream.Stdout, false, "after"u8);
        }

        Assert.Equal(["stdout F before", "stdout F after"], LogAssert.Records(LogPath));
    }

    [Fact]
    public void ATornLastRecordIsTerminatedBeforeTheNextOne()
    {
        // A monitor killed in the middle of a write (or a write that failed half way) leaves a record without newline.
        File.WriteAllText(LogPath, $"{LogAssert.NoonText} stdout F whole\n{LogAssert.NoonText} stderr F tor");
        using (var writer = Open())
        {
            writer.Write(CriLogStream.Stdout, false, "next"u8);
        }

        Assert.Equal(["stdout F whole", "stderr F tor", "stdout F next"], LogAssert.Records(LogPath));
    }

    [Fact]
    public void MissingLogDirectoryIsAClearFailedPrecondition()
    {
        var path = Path.Combine(_dir, "no-such-pod", "ctr", "0.log");
        var error = Assert.Throws<NacelleException>(() => Open(path));
        Assert.Equal(ErrorKind.FailedPrecondition, error.Kind);
        Assert.Contains(Path.Combine(_dir, "no-such-pod", "ctr"), error.Message);
        Assert.Contains("does not exist", error.Message);
        Assert.False(Directory.Exists(Path.Combine(_dir, "no-such-pod")));
    }

    [Fact]
    public void ReopenAfterRenameStartsANewFileAndTheOldKeepsItsLines()
    {
        var rotated = LogPath + ".20261123-120000";
        using var writer = Open();
        writer.Write(CriLogStream.Stdout, false, "old 1"u8);
        writer.Write(CriLogStream.Stderr, false, "old 2"u8);

        File.Move(LogPath, rotated); // what kubelet's container log manager does before ReopenContainerLog
        writer.Write(CriLogStream.Stdout, false, "between"u8); // still goes to the renamed file (same inode)
        writer.Reopen();
        writer.Write(CriLogStream.Stdout, false, "new 1"u8);
        writer.Write(CriLogStream.Stderr, false, "new 2"u8);

        Assert.Equal(["stdout F old 1", "stderr F old 2", "stdout F between"], LogAssert.Records(rotated));
        Assert.Equal(["stdout F new 1", "stderr F new 2"], LogAssert.Records(LogPath));
    }

    [Fact]
    public void ReopenWithoutTheDirectoryThrowsThenDropsAndRetriesOnEveryRecord()
    {
        var podDir = Path.Combine(_dir, "pod");
        Directory.CreateDirectory(podDir);
        var path = Path.Combine(podDir, "0.log");
        using var writer = Open(path);
        writer.Write(CriLogStream.Stdout, false, "one"u8);

        Directory.Delete(podDir, recursive: true);
        var error = Assert.Throws<NacelleException>(writer.Reopen);
        Assert.Equal(ErrorKind.FailedPrecondition, error.Kind);

        writer.Write(CriLogStream.Stdout, false, "lost"u8);
        writer.Write(CriLogStream.Stderr, false, "lost too"u8);
        Assert.Equal(2, writer.DroppedRecords);
        Assert.Equal(12, writer.DroppedBytes);
        Assert.IsType<DirectoryNotFoundException>(writer.LastError);

        Directory.CreateDirectory(podDir); // the next record opens the file again
        writer.Write(CriLogStream.Stdout, false, "back"u8);
        Assert.Equal(["stdout F back"], LogAssert.Records(path));
        Assert.Equal(2, writer.DroppedRecords);
    }

    [Fact]
    public void WriteFailuresDropAndCountBytesWithoutThrowing()
    {
        // /dev/full fails every write with ENOSPC: a full disk.
        var path = Path.Combine(_dir, "full.log");
        File.CreateSymbolicLink(path, "/dev/full");
        using var writer = Open(path);

        writer.Write(CriLogStream.Stdout, false, "12345"u8);
        writer.Write(CriLogStream.Stderr, true, "123"u8);
        writer.Write(CriLogStream.Stderr, false, ""u8);

        Assert.Equal(8, writer.DroppedBytes);
        Assert.Equal(3, writer.DroppedRecords);
        Assert.Equal(0, writer.WrittenRecords);
        Assert.IsAssignableFrom<IOException>(writer.LastError);

        // Space is back (here: the path is a regular file again): the next record opens the file again by itself.
        File.Delete(path);
        writer.Write(CriLogStream.Stdout, false, "ok"u8);
        Assert.Equal(["stdout F ok"], LogAssert.Records(path));
        Assert.Equal(3, writer.DroppedRecords);
    }

    [Fact]
    public void RecordsAfterDisposeAreDroppedNotThrown()
    {
        var writer = Open();
        writer.Dispose();
        writer.Write(CriLogStream.Stdout, false, "late"u8);
        Assert.Equal(4, writer.DroppedBytes);
        Assert.Throws<ObjectDisposedException>(writer.Reopen);
    }

    [Fact]
    public void ConcurrentWritersNeverInterleaveWithinARecord()
    {
        using (var writer = Open(maxLineSize: 4096))
        {
            Parallel.For(0, 8, worker =>
            {
                var stream = worker % 2 == 0 ? CriLogStream.Stdout : CriLogStream.Stderr;
                for (var i = 0; i < 500; i++)
                {
                    var content = Encoding.ASCII.GetBytes($"w{worker}-{i}-" + new string((char)('a' + worker), i % 300));
                    writer.Write(stream, false, content);
                }
            });
        }

        var records = CriLogReader.ReadAllRecords(LogPath);
        Assert.Equal(4000, records.Count);
        foreach (var worker in Enumerable.Range(0, 8))
        {
            var mine = records.Where(r => r.Text.StartsWith($"w{worker}-", StringComparison.Ordinal)).ToList();
            Assert.Equal(500, mine.Count);
            for (var i = 0; i < 500; i++)
            {
                Assert.Equal($"w{worker}-{i}-" + new string((char)('a' + worker), i % 300), mine[i].Text);
                Assert.Equal(worker % 2 == 0 ? CriLogStream.Stdout : CriLogStream.Stderr, mine[i].Stream);
            }
        }
    }

    [Fact]
    public void RejectsANonPositiveMaxLineSize()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Open(maxLineSize: 0));
    }
}
