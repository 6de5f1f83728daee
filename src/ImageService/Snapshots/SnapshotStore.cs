using System.Collections.Concurrent;
using Microsoft.Data.Sqlite;
using Nacelle.Common;
using Nacelle.Storage;

namespace Nacelle.ImageService.Snapshots;

/// <summary>One unpacked layer, usable as an overlayfs lowerdir.</summary>
public sealed record Snapshot(long Id, string ChainId, string? ParentChainId, string DiffId, long Size, string Path);

/// <summary>
/// Unpacked layers, one per chain id, under &lt;root&gt;/snapshots/&lt;n&gt; where n is a small integer, so that an
/// overlay mount of many layers stays within the kernel's mount-option size. A layer is unpacked into a temp
/// directory, checked, then renamed into place and recorded in the same step; leftovers of an interrupted unpack
/// are removed at start.
/// </summary>
public sealed class SnapshotStore
{
    private readonly MetadataDatabase _database;
    private readonly string _directory;
    private readonly ConcurrentDictionary<string, Lazy<Task<Snapshot>>> _inFlight = new(StringComparer.Ordinal);

    public SnapshotStore(MetadataDatabase database, string root)
    {
        _database = database;
        _directory = System.IO.Path.Combine(root, "snapshots");
        Directory.CreateDirectory(_directory);
        RemoveLeftovers();
    }

    public Snapshot? Find(string chainId)
    {
        using var connection = _database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, chain_id, parent_chain_id, diff_id, size FROM snapshots WHERE chain_id = $c";
        command.Parameters.AddWithValue("$c", chainId);
        using var reader = command.ExecuteReader();
        return reader.Read() ? Read(reader) : null;
    }

    public IReadOnlyList<Snapshot> List()
    {
        using var connection = _database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, chain_id, parent_chain_id, diff_id, size FROM snapshots ORDER BY id";
        using var reader = command.ExecuteReader();
        var result = new List<Snapshot>();
        while (reader.Read())
        {
            result.Add(Read(reader));
        }

        return result;
    }

    /// <summary>
    /// Returns the snapshot of <paramref name="chainId"/>, unpacking it with <paramref name="unpack"/> (given an empty
    /// directory; it returns the diff id and size it unpacked) when it does not exist yet. Concurrent callers for
    /// the same chain share one unpack. The unpacked diff id must equal <paramref name="diffId"/>.
    /// </summary>
    public async Task<Snapshot> EnsureAsync(
        string chainId, string? parentChainId, string diffId,
        Func<string, CancellationToken, Task<(string DiffId, long Size)>> unpack, CancellationToken cancellationToken)
    {
        if (Find(chainId) is { } existing)
        {
            return existing;
        }

        var work = _inFlight.GetOrAdd(chainId, c => new Lazy<Task<Snapshot>>(() => UnpackAsync(c, parentChainId, diffId, unpack, cancellationToken)));
        try
        {
            return await work.Value.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _inFlight.TryRemove(new KeyValuePair<string, Lazy<Task<Snapshot>>>(chainId, work));
        }
    }

    /// <summary>Removes every snapshot whose chain id is not in <paramref name="live"/>; returns how many went.</summary>
    public int RemoveUnreferenced(IReadOnlySet<string> live)
    {
        var removed = 0;
        foreach (var snapshot in List().Where(s => !live.Contains(s.ChainId)))
        {
            using (var connection = _database.Open())
            using (var command = connection.CreateCommand())
            {
                command.CommandText = "DELETE FROM snapshots WHERE id = $id";
                command.Parameters.AddWithValue("$id", snapshot.Id);
                command.ExecuteNonQuery();
            }

            DeleteTree(snapshot.Path);
            removed++;
        }

        return removed;
    }

    /// <summary>Bytes and inodes of all snapshots (walks the trees).</summary>
    public (long Bytes, long Inodes) Usage() => DirectoryUsage.Measure(_directory);

    private async Task<Snapshot> UnpackAsync(
        string chainId, string? parentChainId, string diffId,
        Func<string, CancellationToken, Task<(string DiffId, long Size)>> unpack, CancellationToken cancellationToken)
    {
        var temp = System.IO.Path.Combine(_directory, $"tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            var (actualDiffId, size) = await unpack(temp, cancellationToken).ConfigureAwait(false);
            if (actualDiffId != diffId)
            {
                throw NacelleException.InvalidArgument(
                    $"layer {chainId}: unpacked content has diff id {actualDiffId}, but the image config lists {diffId}");
            }

            using var connection = _database.Open();
            using var transaction = connection.BeginTransaction();
            using var insert = connection.CreateCommand();
            insert.Transaction = transaction;
            insert.CommandText = """
                INSERT INTO snapshots (chain_id, parent_chain_id, diff_id, size) VALUES ($c, $p, $d, $s);
                SELECT last_insert_rowid();
                """;
            insert.Parameters.AddWithValue("$c", chainId);
            insert.Parameters.AddWithValue("$p", (object?)parentChainId ?? DBNull.Value);
            insert.Parameters.AddWithValue("$d", diffId);
            insert.Parameters.AddWithValue("$s", size);
            var id = (long)insert.ExecuteScalar()!;
            var path = PathOf(id);
            Directory.Move(temp, path);
            transaction.Commit();
            return new Snapshot(id, chainId, parentChainId, diffId, size, path);
        }
        catch
        {
            DeleteTree(temp);
            throw;
        }
    }

    private Snapshot Read(SqliteDataReader reader)
    {
        var id = reader.GetInt64(0);
        return new Snapshot(id, reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetString(3), reader.GetInt64(4), PathOf(id));
    }

    private string PathOf(long id) => System.IO.Path.Combine(_directory, id.ToString(System.Globalization.CultureInfo.InvariantCulture));

    // Temp dirs of interrupted unpacks, and directories whose row never committed.
    private void RemoveLeftovers()
    {
        var known = List().Select(s => s.Path).ToHashSet(StringComparer.Ordinal);
        foreach (var dir in Directory.EnumerateDirectories(_directory))
        {
            if (!known.Contains(dir))
            {
                DeleteTree(dir);
            }
        }
    }

    internal static void DeleteTree(string path)
    {
        if (Directory.Exists(path))
        {
            // Layers can contain read-only directories; make them writable so their entries can go.
            foreach (var dir in Directory.EnumerateDirectories(path, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint }))
            {
                File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }

            Directory.Delete(path, recursive: true);
        }
    }
}

/// <summary>Disk usage of a directory tree: bytes of regular files and number of inodes, not following symlinks.</summary>
internal static class DirectoryUsage
{
    public static (long Bytes, long Inodes) Measure(string root)
    {
        if (!Directory.Exists(root))
        {
            return (0, 0);
        }

        long bytes = 0, inodes = 0;
        var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = true };
        foreach (var entry in new DirectoryInfo(root).EnumerateFileSystemInfos("*", options))
        {
            inodes++;
            if (entry is FileInfo { LinkTarget: null } file)
            {
                bytes += file.Length;
            }
        }

        return (bytes, inodes);
    }
}
