using System.Collections.Concurrent;
using Microsoft.Data.Sqlite;
using Nacelle.Common;
using Nacelle.ContainerCore.Interop;
using Nacelle.Storage;

namespace Nacelle.ImageService.Snapshots;

/// <summary>One unpacked layer, usable as an overlayfs lowerdir.</summary>
/// <param name="Usage">Disk usage of the unpacked directory (blocks, inodes), measured once; null until measured
/// (snapshots unpacked before the numbers were kept are measured once in the background).</param>
public sealed record Snapshot(long Id, string ChainId, string? ParentChainId, string DiffId, long Size, string Path, UsageNumbers? Usage = null);

/// <summary>
/// Unpacked layers, one per chain id, under &lt;root&gt;/snapshots/&lt;n&gt; where n is a small integer, so that an
/// overlay mount of many layers stays within the kernel's mount-option size. A layer is unpacked into a temp
/// directory, checked and measured (its disk usage, kept with its row: layers never change), made durable (syncfs),
/// then renamed into place and recorded in the same step; leftovers of an interrupted unpack are removed at start.
/// The total usage of all snapshots is kept in memory, so asking for it costs nothing.
/// </summary>
public sealed class SnapshotStore
{
    private const string Columns = "id, chain_id, parent_chain_id, diff_id, size, disk_bytes, inodes";

    private readonly MetadataDatabase _database;
    private readonly string _directory;
    private readonly ConcurrentDictionary<string, Lazy<Task<Snapshot>>> _inFlight = new(StringComparer.Ordinal);
    private readonly Lock _usageLock = new();
    private readonly Dictionary<long, UsageNumbers> _usage = [];
    private UsageNumbers _total;
    private int _unmeasured;

    public SnapshotStore(MetadataDatabase database, string root)
    {
        _database = database;
        _directory = System.IO.Path.Combine(root, "snapshots");
        Directory.CreateDirectory(_directory);
        SpreadLayersOverTheDisk(_directory);
        RemoveLeftovers();
        foreach (var snapshot in List())
        {
            if (snapshot.Usage is { } usage)
            {
                AddUsage(snapshot.Id, usage);
            }
            else
            {
                _unmeasured++;
            }
        }
    }

    /// <summary>Where the snapshots live (the image file system's mount point as CRI reports it).</summary>
    public string Location => _directory;

    public Snapshot? Find(string chainId)
    {
        using var connection = _database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {Columns} FROM snapshots WHERE chain_id = $c";
        command.Parameters.AddWithValue("$c", chainId);
        using var reader = command.ExecuteReader();
        return reader.Read() ? Read(reader) : null;
    }

    public IReadOnlyList<Snapshot> List()
    {
        using var connection = _database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {Columns} FROM snapshots ORDER BY id";
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
    /// the same chain share one unpack. The unpacked diff id must equal <paramref name="diffId"/>. The unpack may run
    /// before the parent layer's snapshot exists; the commit waits for <paramref name="parentCommitted"/>, so a
    /// snapshot is never recorded before its parent.
    /// </summary>
    public async Task<Snapshot> EnsureAsync(
        string chainId, string? parentChainId, string diffId,
        Func<string, CancellationToken, Task<(string DiffId, long Size)>> unpack, CancellationToken cancellationToken,
        Task? parentCommitted = null)
    {
        if (Find(chainId) is { } existing)
        {
            return existing;
        }

        var work = _inFlight.GetOrAdd(chainId, c => new Lazy<Task<Snapshot>>(() =>
            UnpackAsync(c, parentChainId, diffId, unpack, parentCommitted, cancellationToken)));
        try
        {
            return await work.Value.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _inFlight.TryRemove(new KeyValuePair<string, Lazy<Task<Snapshot>>>(chainId, work));
        }
    }

    /// <summary>
    /// The disk usage of all snapshots, from the numbers kept with them (no walk), and how many snapshots have no
    /// numbers yet (unpacked by a version that did not keep them; <see cref="MeasureMissingAsync"/> fills them in).
    /// </summary>
    public (UsageNumbers Total, int Unmeasured) Usage()
    {
        lock (_usageLock)
        {
            return (_total, _unmeasured);
        }
    }

    /// <summary>
    /// Measures, one at a time, the snapshots recorded without usage numbers, and keeps the numbers with them. Run
    /// once in the background at start; each snapshot is walked once in its life.
    /// </summary>
    public async Task MeasureMissingAsync(CancellationToken cancellationToken)
    {
        foreach (var snapshot in List().Where(s => s.Usage is null))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var usage = await Task.Run(() => DiskUsage.Measure(snapshot.Path), cancellationToken).ConfigureAwait(false);

            // Row and totals change together, so a removal racing with this counts the snapshot exactly once.
            lock (_usageLock)
            {
                using var connection = _database.Open();
                using var update = connection.CreateCommand();
                update.CommandText = "UPDATE snapshots SET disk_bytes = $b, inodes = $i WHERE id = $id AND disk_bytes IS NULL";
                update.Parameters.AddWithValue("$b", usage.Bytes);
                update.Parameters.AddWithValue("$i", usage.Inodes);
                update.Parameters.AddWithValue("$id", snapshot.Id);
                if (update.ExecuteNonQuery() == 0)
                {
                    continue; // removed meanwhile (its removal counted it as unmeasured)
                }

                _unmeasured--;
                AddUsage(snapshot.Id, usage);
            }
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

            lock (_usageLock)
            {
                if (_usage.Remove(snapshot.Id, out var usage))
                {
                    _total -= usage;
                }
                else if (snapshot.Usage is null)
                {
                    _unmeasured--;
                }
            }

            DeleteTree(snapshot.Path);
            removed++;
        }

        return removed;
    }

    private async Task<Snapshot> UnpackAsync(
        string chainId, string? parentChainId, string diffId,
        Func<string, CancellationToken, Task<(string DiffId, long Size)>> unpack, Task? parentCommitted, CancellationToken cancellationToken)
    {
        var temp = System.IO.Path.Combine(_directory, $"tmp-{Guid.NewGuid():N}");
        System.IO.Directory.CreateDirectory(temp);
        try
        {
            var (actualDiffId, size) = await unpack(temp, cancellationToken).ConfigureAwait(false);
            if (actualDiffId != diffId)
            {
                throw NacelleException.InvalidArgument(
                    $"layer {chainId}: unpacked content has diff id {actualDiffId}, but the image config lists {diffId}");
            }

            // Layers never change once unpacked: measured here once, the numbers live with the row.
            var usage = DiskUsage.Measure(temp);

            // Everything the layer wrote reaches the disk before its row says it exists: one syncfs instead of an
            // fsync per file, outside the transaction (the database stays free for others meanwhile), while the
            // parent layer may still be unpacking.
            await Task.Run(() => DirectoryCalls.SyncFileSystem(temp), cancellationToken).ConfigureAwait(false);
            if (parentCommitted is not null)
            {
                await parentCommitted.WaitAsync(cancellationToken).ConfigureAwait(false);
            }

            using var connection = _database.Open();
            using var transaction = connection.BeginTransaction();
            using var insert = connection.CreateCommand();
            insert.Transaction = transaction;
            insert.CommandText = """
                INSERT INTO snapshots (chain_id, parent_chain_id, diff_id, size, disk_bytes, inodes) VALUES ($c, $p, $d, $s, $b, $i);
                SELECT last_insert_rowid();
                """;
            insert.Parameters.AddWithValue("$c", chainId);
            insert.Parameters.AddWithValue("$p", (object?)parentChainId ?? DBNull.Value);
            insert.Parameters.AddWithValue("$d", diffId);
            insert.Parameters.AddWithValue("$s", size);
            insert.Parameters.AddWithValue("$b", usage.Bytes);
            insert.Parameters.AddWithValue("$i", usage.Inodes);
            var id = (long)insert.ExecuteScalar()!;
            var path = PathOf(id);
            System.IO.Directory.Move(temp, path);

            // The rename too (a crash before the commit leaves a directory without a row, removed at start).
            DirectoryCalls.SyncDirectory(_directory);
            transaction.Commit();
            lock (_usageLock)
            {
                AddUsage(id, usage);
            }

            return new Snapshot(id, chainId, parentChainId, diffId, size, path, usage);
        }
        catch
        {
            DeleteTree(temp);
            throw;
        }
    }

    /// <summary>
    /// Marks <paramref name="directory"/> as the top of directory hierarchies (chattr +T) where the file system has the
    /// flag: ext4's Orlov allocator then puts each new layer directory, and the files unpacked into it, in a block group
    /// of its own choosing with more free inodes than average, instead of next to its siblings. Without it every layer
    /// lands in the group of snapshots/, where the inodes of the layers removed in the last minutes sit: ext4 without
    /// a journal refuses to reuse an inode deleted less than 60 s (dirty: 6 min) ago and scans past each of them, from
    /// the start of the group, for every file it creates, so unpacking after a removal cost up to 4x the CPU (measured:
    /// 1.2 s against 0.27 s for the 173 MB of bench/pull.sh's image). Other file systems have no such flag or ignore it.
    /// A hint, not a guarantee: a file system or mount that refuses it (ENOTTY, EOPNOTSUPP, EPERM) changes nothing else.
    /// </summary>
    private static void SpreadLayersOverTheDisk(string directory)
    {
        try
        {
            if (DirectoryCalls.GetInodeFlags(directory) is { } flags && (flags & DirectoryCalls.TopDirectoryFlag) == 0)
            {
                DirectoryCalls.SetInodeFlags(directory, flags | DirectoryCalls.TopDirectoryFlag);
            }
        }
        catch (IOException)
        {
            // Only the allocation of new inodes is at stake.
        }
    }

    private void AddUsage(long id, UsageNumbers usage)
    {
        _usage[id] = usage;
        _total += usage;
    }

    private Snapshot Read(SqliteDataReader reader)
    {
        var id = reader.GetInt64(0);
        UsageNumbers? usage = reader.IsDBNull(5) ? null : new UsageNumbers(reader.GetInt64(5), reader.GetInt64(6));
        return new Snapshot(id, reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetString(3), reader.GetInt64(4), PathOf(id), usage);
    }

    private string PathOf(long id) => System.IO.Path.Combine(_directory, id.ToString(System.Globalization.CultureInfo.InvariantCulture));

    // Temp dirs of interrupted unpacks, and directories whose row never committed.
    private void RemoveLeftovers()
    {
        var known = List().Select(s => s.Path).ToHashSet(StringComparer.Ordinal);
        foreach (var dir in System.IO.Directory.EnumerateDirectories(_directory))
        {
            if (!known.Contains(dir))
            {
                DeleteTree(dir);
            }
        }
    }

    internal static void DeleteTree(string path)
    {
        if (System.IO.Directory.Exists(path))
        {
            // Layers can contain read-only directories; make them writable so their entries can go.
            foreach (var dir in System.IO.Directory.EnumerateDirectories(path, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint }))
            {
                File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }

            System.IO.Directory.Delete(path, recursive: true);
        }
    }
}
