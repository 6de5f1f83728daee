using System.Text;
using Nacelle.Common;
using Nacelle.Monitor.Exits;

namespace Nacelle.Tests.Unit.Monitor.Exits;

/// <summary>The monitor's durable exit records: round trip across store instances, atomic replacement, bad files and ids.</summary>
public sealed class ExitRecordStoreTests : IDisposable
{
    private readonly string _dir = Path.Combine(Directory.CreateTempSubdirectory("nacelle-exits-").FullName, "exits");

    public void Dispose() => Directory.Delete(Path.GetDirectoryName(_dir)!, recursive: true);

    private static ExitRecord Record(string id, int exitCode = 0, int? signal = null, bool oom = false, int exitedSecond = 10) => new()
    {
        Id = id,
        Pid = 4242,
        ExitCode = exitCode,
        Signal = signal,
        OomKilled = oom,
        StartedAt = new DateTimeOffset(2026, 11, 23, 12, 0, 0, TimeSpan.Zero).AddTicks(1_234_567),
        ExitedAt = new DateTimeOffset(2026, 11, 23, 12, 0, exitedSecond, TimeSpan.Zero).AddTicks(7),
    };

    [Fact]
    public void ARecordSurvivesIntoANewStoreInstance()
    {
        var id = new string('a', 64);
        var saved = Record(id, exitCode: 137, signal: 9, oom: true);
        new ExitRecordStore(_dir).Save(saved);

        var reopened = new ExitRecordStore(_dir); // as after a monitor restart
        var read = reopened.TryGet(id);
        Assert.Equal(saved, read);
        Assert.Equal(saved.StartedAt.Ticks, read!.StartedAt.Ticks);
        Assert.Equal([saved], reopened.List());
    }

    [Fact]
    public void TheFileIsCamelCaseJsonNamedAfterTheId()
    {
        var store = new ExitRecordStore(_dir);
        store.Save(Record("exec-1", exitCode: 3));
        var json = File.ReadAllText(Path.Combine(_dir, "exec-1.json"));
        Assert.Contains("\"id\":\"exec-1\"", json);
        Assert.Contains("\"exitCode\":3", json);
        Assert.Contains("\"signal\":null", json);
        Assert.Contains("\"oomKilled\":false", json);
        Assert.Contains("\"exitedAt\":\"2026-11-23T12:00:10.0000007+00:00\"", json);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(_dir));
    }

    [Fact]
    public void ListIsOrderedByExitTimeAndDeleteRemoves()
    {
        var store = new ExitRecordStore(_dir);
        store.Save(Record("late", exitedSecond: 30));
        store.Save(Record("early", exitedSecond: 5));
        store.Save(Record("middle", exitedSecond: 20));
        Assert.Equal(["early", "middle", "late"], store.List().Select(r => r.Id));

        Assert.True(store.Delete("middle"));
        Assert.False(store.Delete("middle"));
        Assert.Null(store.TryGet("middle"));
        Assert.Equal(["early", "late"], store.List().Select(r => r.Id));
    }

    [Fact]
    public void SavingAgainReplacesTheRecordAndLeavesNoTemporaryFiles()
    {
        var store = new ExitRecordStore(_dir);
        store.Save(Record("c1", exitCode: 1));
        store.Save(Record("c1", exitCode: 2));
        Assert.Equal(2, store.TryGet("c1")!.ExitCode);
        Assert.Equal(["c1.json"], Directory.GetFiles(_dir).Select(Path.GetFileName));
    }

    [Fact]
    public async Task ReadersNeverSeeAHalfWrittenRecord()
    {
        var store = new ExitRecordStore(_dir);
        var big = new string('x', 180);
        store.Save(Record(big, exitCode: 0));
        using var stop = new CancellationTokenSource();
        var reads = 0;
        var reader = Task.Run(() =>
        {
            var other = new ExitRecordStore(_dir);
            while (!stop.IsCancellationRequested)
            {
                var record = other.TryGet(big); // throws on a torn or empty file
                Assert.NotNull(record);
                Assert.InRange(record.ExitCode, 0, 300);
                Assert.Single(other.List());
                Interlocked.Increment(ref reads);
            }
        });

        // Keep replacing the record until the reader has read it many times (at least 300 replacements).
        var deadline = DateTime.UtcNow.AddSeconds(20);
        for (var i = 0; !reader.IsCompleted && (i <= 300 || (Volatile.Read(ref reads) < 200 && DateTime.UtcNow < deadline)); i++)
        {
            store.Save(Record(big, exitCode: i % 300, signal: i % 2 == 0 ? null : 15));
        }

        store.Save(Record(big, exitCode: 300));

        stop.Cancel();
        await reader.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(reads >= 200, $"only {reads} reads");
        Assert.Equal(300, store.TryGet(big)!.ExitCode);
    }

    [Fact]
    public void StaleTemporaryFilesAreIgnoredAndRemovedByTheWriterAtStart()
    {
        var store = new ExitRecordStore(_dir);
        store.Save(Record("c1"));
        var stale = Path.Combine(_dir, ".c2.0123456789abcdef.tmp"); // a crash between write and rename
        File.WriteAllText(stale, "{\"id\":\"c2\",\"exitC");
        Assert.Equal(["c1"], store.List().Select(r => r.Id));
        Assert.Null(store.TryGet("c2"));
        _ = new ExitRecordStore(_dir);

        Assert.True(File.Exists(stale)); // opening a store (a reader) never touches temporary files
        Assert.Equal(1, new ExitRecordStore(_dir).RemoveTemporaryFiles());
        Assert.False(File.Exists(stale));
        Assert.True(File.Exists(Path.Combine(_dir, "c1.json")));
    }

    [Fact]
    public void CorruptFilesAreReportedNotReturned()
    {
        var store = new ExitRecordStore(_dir);
        store.Save(Record("good"));
        File.WriteAllText(Path.Combine(_dir, "torn.json"), "{\"id\":\"torn\",\"pid\":");
        File.WriteAllText(Path.Combine(_dir, "renamed.json"), Encoding.UTF8.GetString(File.ReadAllBytes(Path.Combine(_dir, "good.json"))));
        File.WriteAllText(Path.Combine(_dir, "bad id!.json"), "{}");

        var unreadable = new List<string>();
        Assert.Equal(["good"], store.List(unreadable).Select(r => r.Id));
        Assert.Equal(["bad id!.json", "renamed.json", "torn.json"], unreadable.Select(Path.GetFileName).Order(StringComparer.Ordinal));

        var error = Assert.Throws<NacelleException>(() => store.TryGet("torn"));
        Assert.Equal(ErrorKind.Internal, error.Kind);
        Assert.Contains("torn.json", error.Message);
        Assert.Contains("expected \"renamed\"", Assert.Throws<NacelleException>(() => store.TryGet("renamed")).Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("../escape")]
    [InlineData("a/b")]
    [InlineData(".hidden")]
    [InlineData("spa ce")]
    [InlineData("ünïcode")]
    public void InvalidIdsAreRejected(string id)
    {
        var store = new ExitRecordStore(_dir);
        Assert.Equal(ErrorKind.InvalidArgument, Assert.Throws<NacelleException>(() => store.Save(Record(id))).Kind);
        Assert.Equal(ErrorKind.InvalidArgument, Assert.Throws<NacelleException>(() => store.TryGet(id)).Kind);
        Assert.Equal(ErrorKind.InvalidArgument, Assert.Throws<NacelleException>(() => store.Delete(id)).Kind);
        Assert.Empty(Directory.GetFiles(_dir, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public void TooLongIdsAreRejected()
    {
        Assert.False(ExitRecordStore.IsValidId(new string('a', 201)));
        Assert.True(ExitRecordStore.IsValidId(new string('a', 200)));
    }
}
