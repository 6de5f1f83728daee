using Microsoft.Data.Sqlite;

namespace Nacelle.Storage;

/// <summary>
/// The node's metadata database: one SQLite file under the root dir (WAL mode), shared by the image store now and
/// by the pod and container stores later. Each domain owns its tables and brings its schema as numbered migrations;
/// every state change is committed before the RPC that caused it answers.
/// </summary>
public sealed class MetadataDatabase
{
    /// <summary>
    /// Each connection's page cache, KiB (SQLite's default is 2 MiB). Connections are pooled, one per call in flight, so
    /// a burst of calls left as many full caches behind: rows with 10,000 annotations fill one. The database is small and
    /// the hot rpcs are served from memory, not from here; a page not cached is read again from the kernel's page cache.
    /// </summary>
    public const int CacheKibibytes = 512;

    private readonly string _connectionString;

    public MetadataDatabase(string path)
    {
        FilePath = path;
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();

        using var connection = Open();
        Execute(connection, "PRAGMA journal_mode=WAL;");
        Execute(connection, "CREATE TABLE IF NOT EXISTS schema_migrations (domain TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (domain, version));");
    }

    public string FilePath { get; }

    /// <summary>An open connection with foreign keys on and synchronous=FULL: every commit is on disk (the WAL fsynced)
    /// before it returns, so it survives a machine crash. For records of what outlives a reboot (images, layers).</summary>
    public SqliteConnection Open() => Open("FULL");

    /// <summary>
    /// An open connection with foreign keys on and synchronous=NORMAL: a commit is in the WAL (the kernel's page cache)
    /// when it returns, so it survives the daemon's crash at once, but only a later fsync of the WAL (a FULL commit on any
    /// connection, a checkpoint or <see cref="SyncToDisk"/>) makes it survive a machine crash, which takes back the newest
    /// buffered commits as a whole (the database stays consistent). For records whose loss in a machine crash recovery
    /// handles (pods and containers die with the machine); call <see cref="SyncToDisk"/> before acquiring what outlives a
    /// reboot on their strength, or before deleting files whose rows such a commit removed.
    /// </summary>
    public SqliteConnection OpenBuffered() => Open("NORMAL");

    /// <summary>Makes every commit so far durable against a machine crash: fsyncs the WAL, which holds every commit not
    /// yet checkpointed (a checkpoint syncs the database file before the WAL is reused).</summary>
    public void SyncToDisk()
    {
        var wal = FilePath + "-wal";
        try
        {
            using var handle = File.OpenHandle(wal, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
            RandomAccess.FlushToDisk(handle);
        }
        catch (FileNotFoundException)
        {
            // no WAL: every commit was checkpointed into the database file, which the checkpoint synced
        }
    }

    /// <summary>
    /// Closes the pooled connections no call is using, with their page caches and prepared statements (native memory);
    /// connections in use are closed when they come back. The next call opens a new one (a file open and a schema read).
    /// </summary>
    public void ReleaseIdleConnections()
    {
        // ClearPool finds the pool through a connection that has been opened (that is when one joins its pool); this one
        // is closed with the rest.
        using var connection = new SqliteConnection(_connectionString);
        connection.Open();
        SqliteConnection.ClearPool(connection);
    }

    private SqliteConnection Open(string synchronous)
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        Execute(connection, $"PRAGMA foreign_keys=ON; PRAGMA synchronous={synchronous}; PRAGMA cache_size=-{CacheKibibytes};");
        return connection;
    }

    /// <summary>Applies the domain's migrations not applied yet, each in its own transaction, in order.</summary>
    public void Migrate(string domain, IReadOnlyList<string> migrations)
    {
        using var connection = Open();
        for (var version = 1; version <= migrations.Count; version++)
        {
            using var check = connection.CreateCommand();
            check.CommandText = "SELECT COUNT(*) FROM schema_migrations WHERE domain = $d AND version = $v";
            check.Parameters.AddWithValue("$d", domain);
            check.Parameters.AddWithValue("$v", version);
            if ((long)check.ExecuteScalar()! > 0)
            {
                continue;
            }

            using var transaction = connection.BeginTransaction();
            Execute(connection, migrations[version - 1], transaction);
            using var record = connection.CreateCommand();
            record.Transaction = transaction;
            record.CommandText = "INSERT INTO schema_migrations (domain, version) VALUES ($d, $v)";
            record.Parameters.AddWithValue("$d", domain);
            record.Parameters.AddWithValue("$v", version);
            record.ExecuteNonQuery();
            transaction.Commit();
        }
    }

    /// <summary>The first column of every row of a query, as strings.</summary>
    public IReadOnlyList<string> QueryStrings(string sql, params (string Name, object Value)[] parameters)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        using var reader = command.ExecuteReader();
        var values = new List<string>();
        while (reader.Read())
        {
            values.Add(reader.GetString(0));
        }

        return values;
    }

    public static void Execute(SqliteConnection connection, string sql, SqliteTransaction? transaction = null)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
