using Microsoft.Data.Sqlite;
using Nacelle.Storage;

namespace Nacelle.Tests.Unit.Storage;

// Alone: it counts the process's open descriptors of a database file, and other tests' SqliteConnection.ClearAllPools (a
// process-wide pool) closed its pooled connections under it.
[Collection(MetadataDatabaseCollection.Name)]
public sealed class MetadataDatabaseTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("nacelle-metadata-").FullName;

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_root, recursive: true);
    }

    private static long Synchronous(SqliteConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA synchronous";
        return (long)command.ExecuteScalar()!;
    }

    [Fact]
    public void DurableConnectionsSyncEveryCommitAndBufferedOnesLeaveItToSyncToDisk()
    {
        var database = new MetadataDatabase(Path.Combine(_root, "metadata.db"));
        using (var durable = database.Open())
        {
            Assert.Equal(2, Synchronous(durable)); // FULL
        }

        // A pooled connection gets its level again on every open, whichever it had before.
        using var buffered = database.OpenBuffered();
        Assert.Equal(1, Synchronous(buffered)); // NORMAL
        MetadataDatabase.Execute(buffered, "CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1);");
        Assert.True(File.Exists(database.FilePath + "-wal"));
        database.SyncToDisk();

        using var again = database.Open();
        Assert.Equal(2, Synchronous(again));
        Assert.Equal(["1"], database.QueryStrings("SELECT CAST(v AS TEXT) FROM t"));
    }

    [Fact]
    public void SyncToDiskWithoutAWalIsNothingToDo()
    {
        var database = new MetadataDatabase(Path.Combine(_root, "metadata.db"));
        SqliteConnection.ClearAllPools(); // the last connection closed: SQLite checkpoints and deletes the WAL
        Assert.False(File.Exists(database.FilePath + "-wal"));
        database.SyncToDisk();
    }

    [Fact]
    public void EveryConnectionHasTheSmallPageCache()
    {
        var database = new MetadataDatabase(Path.Combine(_root, "metadata.db"));
        using var durable = database.Open();
        using var buffered = database.OpenBuffered();
        foreach (var connection in new[] { durable, buffered })
        {
            using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA cache_size";
            Assert.Equal(-MetadataDatabase.CacheKibibytes, (long)command.ExecuteScalar()!);
        }
    }

    [Fact]
    public void IdleConnectionsAreClosed()
    {
        var database = new MetadataDatabase(Path.Combine(_root, "metadata.db"));
        SqliteConnection.ClearAllPools();
        Assert.Equal(0, OpenDescriptors(database.FilePath));

        // Three calls at once leave three pooled connections, each holding the file open (and its page cache).
        var held = Enumerable.Range(0, 3).Select(_ => database.Open()).ToList();
        held.ForEach(connection => connection.Dispose());
        Assert.Equal(3, OpenDescriptors(database.FilePath));

        database.ReleaseIdleConnections();
        Assert.Equal(0, OpenDescriptors(database.FilePath));

        // The database still works: the next call opens a new connection.
        Assert.Empty(database.QueryStrings("SELECT name FROM sqlite_master WHERE name = 'none'"));
    }

    /// <summary>This process's descriptors open on the database file itself (not its WAL or shared memory).</summary>
    private static int OpenDescriptors(string path) =>
        new DirectoryInfo("/proc/self/fd").EnumerateFileSystemInfos()
            .Count(fd => fd.LinkTarget is { } target && target == path);
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MetadataDatabaseCollection
{
    public const string Name = "SQLite's connection pool is process-wide";
}
