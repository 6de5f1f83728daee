using Microsoft.Data.Sqlite;
using Nacelle.Storage;

namespace Nacelle.Tests.Unit.Storage;

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
}
