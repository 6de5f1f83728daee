using Nacelle.Common;
using Nacelle.Storage;
using Microsoft.Win32.SafeHandles;
using Microsoft.Extensions.Logging;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Mounts;

namespace Nacelle.ImageService.Snapshots;

/// <summary>A container's root filesystem: an overlay of its image's layers with a private upper (writable) layer.</summary>
public sealed record Rootfs(string ContainerId, string ImageId, string Path, string UpperDir, IReadOnlyList<string> LowerDirs);

/// <summary>
/// How a container in a user namespace of its own gets its rootfs: every image layer is idmapped with that namespace
/// (<paramref name="UserNamespacePath"/>, a namespace file) under the overlay, and the writable layer's top directory
/// belongs to the container's root on the host (<paramref name="RootUid"/>, <paramref name="RootGid"/>).
/// </summary>
public sealed record RootfsIdmap(string UserNamespacePath, uint RootUid, uint RootGid);

/// <summary>
/// The rootfs API ContainerCore gets its root filesystems from: a writable overlay (upper/work per container under
/// &lt;root&gt;/containers/&lt;id&gt;) over an image's snapshots, with mount, unmount and remove. Which image a rootfs
/// uses is recorded, so the image's snapshots stay while the container exists. The disk usage of the writable layers
/// is kept by <see cref="WritableLayerUsage"/> (measured on the upper directories only, refreshed in the background).
/// </summary>
public sealed class RootfsManager : IDisposable
{
    private readonly MetadataDatabase _database;
    private readonly SnapshotStore _snapshots;
    private readonly string _containers;

    // Mount and Remove of one rootfs run one at a time (a lock per stripe of container ids, so that deleting a big
    // writable layer holds up no other container): a create mounting while a removal is between its unmount and its
    // delete would leave an overlay nobody unmounts.
    private readonly Lock[] _gates = [.. Enumerable.Range(0, 32).Select(_ => new Lock())];

    /// <summary>
    /// Opens the rootfs records under <paramref name="root"/>. What a previous run left half removed is removed in the
    /// background: directories in the trash (a removal whose deletion had not finished) and container directories without
    /// a record (a create cut short before its commit, or a record a machine crash took back: rootfs records are buffered
    /// commits, see <see cref="MetadataDatabase.OpenBuffered"/>), each with whatever is still mounted in it.
    /// </summary>
    public RootfsManager(MetadataDatabase database, SnapshotStore snapshots, string root, ILogger? logger = null)
    {
        _database = database;
        _snapshots = snapshots;
        _containers = System.IO.Path.Combine(root, "containers");
        Directory.CreateDirectory(_containers);
        Trash = new Trash(System.IO.Path.Combine(root, "trash"), logger);
        var recorded = _database.QueryStrings("SELECT container_id FROM rootfs");
        WritableLayers = new WritableLayerUsage(id => System.IO.Path.Combine(_containers, id, "upper"));
        WritableLayers.AddUnmeasured(recorded);
        Trash.DeleteLeftovers();
        var known = recorded.ToHashSet(StringComparer.Ordinal);
        foreach (var dir in Directory.GetDirectories(_containers))
        {
            var name = System.IO.Path.GetFileName(dir);
            if (!name.StartsWith('.') && !known.Contains(name))
            {
                Trash.Discard(dir);
            }
        }
    }

    /// <summary>Where removed writable layers wait for their deletion in the background.</summary>
    public Trash Trash { get; }

    /// <summary>Where the writable layers live (the container file system's mount point as CRI reports it).</summary>
    public string ContainersDirectory => _containers;

    /// <summary>Disk usage of every container's writable layer, kept in memory.</summary>
    public WritableLayerUsage WritableLayers { get; }

    /// <summary>Records and lays out the rootfs of <paramref name="containerId"/> over the given layer chain (base first).</summary>
    public Rootfs Create(string containerId, string imageId, IReadOnlyList<string> chainIds)
    {
        ValidateId(containerId);
        if (chainIds.Count == 0)
        {
            throw NacelleException.InvalidArgument($"image {imageId} has no layers");
        }

        var lowers = LowerDirs(chainIds);
        var dir = System.IO.Path.Combine(_containers, containerId);
        if (Directory.Exists(dir))
        {
            throw NacelleException.AlreadyExists($"a rootfs for container {containerId} exists already");
        }

        // Buffered (see the constructor): a record a machine crash takes back leaves a directory the next start deletes.
        using var connection = _database.OpenBuffered();
        using var transaction = connection.BeginTransaction();
        using (var insert = connection.CreateCommand())
        {
            insert.Transaction = transaction;
            insert.CommandText = "INSERT INTO rootfs (container_id, image_id, top_chain_id) VALUES ($c, $i, $t)";
            insert.Parameters.AddWithValue("$c", containerId);
            insert.Parameters.AddWithValue("$i", imageId);
            insert.Parameters.AddWithValue("$t", chainIds[^1]);
            insert.ExecuteNonQuery();
        }

        foreach (var sub in new[] { "upper", "work", "rootfs" })
        {
            Directory.CreateDirectory(System.IO.Path.Combine(dir, sub));
        }

        transaction.Commit();
        WritableLayers.Add(containerId);
        return Describe(containerId, imageId, lowers);
    }

    /// <summary>Mounts the overlay at <see cref="Rootfs.Path"/> (idempotent); with <paramref name="idmap"/>, over idmapped
    /// layers.</summary>
    public Rootfs Mount(string containerId, RootfsIdmap? idmap = null) =>
        Mount(Get(containerId) ?? throw NacelleException.NotFound($"no rootfs for container {containerId}"), idmap);

    /// <summary>Mounts the overlay of a rootfs the caller has just had from <see cref="Create"/> (its layers known: no
    /// second look in the database); idempotent like the other overload.</summary>
    public Rootfs Mount(Rootfs rootfs, RootfsIdmap? idmap = null)
    {
        ArgumentNullException.ThrowIfNull(rootfs);
        lock (GateOf(rootfs.ContainerId))
        {
            if (!Mounts.IsMountPoint(rootfs.Path))
            {
                var work = System.IO.Path.Combine(_containers, rootfs.ContainerId, "work");
                if (idmap is null)
                {
                    Mounts.MountOverlay(rootfs.Path, rootfs.LowerDirs, rootfs.UpperDir, work);
                }
                else
                {
                    MountIdmapped(rootfs, work, idmap);
                }
            }

            return rootfs;
        }
    }

    /// <summary>
    /// The overlay over idmapped copies of the layers (open_tree + MOUNT_ATTR_IDMAP, passed to overlayfs by descriptor):
    /// seen through them, a file the image gives to uid 0 belongs to the container's root on the host, so nothing is
    /// chowned and the layers stay shared with every other pod, whatever its mappings. The upper layer is a plain
    /// directory (an idmapped one would need the daemon's own ids mapped): its top gets the container's root as owner
    /// (the overlay's root directory takes it), and what the container writes lands there with its host ids.
    /// </summary>
    private static void MountIdmapped(Rootfs rootfs, string work, RootfsIdmap idmap)
    {
        FileSystemCalls.ChangeOwner(rootfs.UpperDir, checked((int)idmap.RootUid), checked((int)idmap.RootGid));
        using var userNamespace = MountTrees.OpenNamespace(idmap.UserNamespacePath);
        var layers = new List<SafeFileHandle>(rootfs.LowerDirs.Count);
        try
        {
            foreach (var lower in rootfs.LowerDirs)
            {
                var layer = MountTrees.OpenTree(lower, recursive: false);
                layers.Add(layer);
                MountTrees.SetAttributes(layer, recursive: false, MountTrees.MOUNT_ATTR_IDMAP, userNamespace: userNamespace);
            }

            using var overlay = MountTrees.CreateOverlay(layers, rootfs.UpperDir, work, MountTrees.MOUNT_ATTR_NODEV);
            MountTrees.Attach(overlay, rootfs.Path);
        }
        finally
        {
            foreach (var layer in layers)
            {
                layer.Dispose();
            }
        }
    }

    /// <summary>Unmounts the overlay and anything stacked on it, if mounted; the writable layer stays.</summary>
    public void Unmount(string containerId)
    {
        ValidateId(containerId);
        UnmountAll(System.IO.Path.Combine(_containers, containerId, "rootfs"));
    }

    /// <summary>
    /// Removes the rootfs and its writable layer (idempotent): the record goes, and the container's directory moves into
    /// the <see cref="Trash"/> at once, so nothing finds it any more; the overlay is unmounted and the directory deleted
    /// in the background (the returned task, which never fails). A crash before that leaves the directory in the trash or,
    /// before the move, without a record: either way the next start deletes it.
    /// </summary>
    public Task Remove(string containerId)
    {
        ValidateId(containerId);
        lock (GateOf(containerId))
        {
            WritableLayers.Remove(containerId);
            // Buffered: a record a machine crash brings back names a rootfs whose removal simply runs again.
            using (var connection = _database.OpenBuffered())
            using (var delete = connection.CreateCommand())
            {
                delete.CommandText = "DELETE FROM rootfs WHERE container_id = $c";
                delete.Parameters.AddWithValue("$c", containerId);
                delete.ExecuteNonQuery();
            }

            return Trash.Discard(System.IO.Path.Combine(_containers, containerId));
        }
    }

    /// <summary>The image a recorded rootfs was made from, or null when there is no such rootfs.</summary>
    public string? ImageOf(string containerId)
    {
        ValidateId(containerId);
        return _database.QueryStrings("SELECT image_id FROM rootfs WHERE container_id = $c", ("$c", containerId)).FirstOrDefault();
    }

    /// <summary>Container ids that have a recorded rootfs.</summary>
    public IReadOnlyList<string> ContainerIds() => _database.QueryStrings("SELECT container_id FROM rootfs");

    /// <summary>
    /// After a restart: unmounts every mount under &lt;root&gt;/containers whose container has no recorded rootfs (a
    /// removal or an undo cut short between its unmount and its delete), so nothing of a forgotten container stays
    /// mounted. Returns the mount points it unmounted.
    /// </summary>
    public IReadOnlyList<string> UnmountOrphans()
    {
        var known = ContainerIds().ToHashSet(StringComparer.Ordinal);
        var prefix = _containers.TrimEnd('/') + "/";
        var orphans = Mounts.MountPointsUnder(_containers)
            .Where(point => point.StartsWith(prefix, StringComparison.Ordinal) && !known.Contains(point[prefix.Length..].Split('/')[0]))
            .Distinct(StringComparer.Ordinal)
            .OrderByDescending(point => point.Length)
            .ToList();
        foreach (var point in orphans)
        {
            UnmountAll(point);
        }

        return orphans;
    }

    private Lock GateOf(string containerId) => _gates[(uint)StringComparer.Ordinal.GetHashCode(containerId) % (uint)_gates.Length];

    // MNT_DETACH takes one mount off a mount point: repeat while something (a mount stacked on the overlay) remains.
    private static void UnmountAll(string point)
    {
        for (var i = 0; i < 64 && Mounts.Unmount(point); i++)
        {
        }
    }

    public Rootfs? Get(string containerId)
    {
        ValidateId(containerId);
        using var connection = _database.Open();
        using var query = connection.CreateCommand();
        query.CommandText = "SELECT image_id, top_chain_id FROM rootfs WHERE container_id = $c";
        query.Parameters.AddWithValue("$c", containerId);
        using var reader = query.ExecuteReader();
        if (!reader.Read())
        {
            return null;
        }

        var imageId = reader.GetString(0);
        return Describe(containerId, imageId, LowerDirs(ChainOf(reader.GetString(1))));
    }

    /// <summary>
    /// Bytes (allocated blocks) and inodes used by the container's writable layer (its upper directory, walked without
    /// crossing a mount point): the last numbers measured, at most <see cref="WritableLayerUsage.MaxAge"/> old when
    /// asked for regularly; older ones are returned and refreshed in the background.
    /// </summary>
    public (long Bytes, long Inodes) WritableUsage(string containerId)
    {
        ValidateId(containerId);
        var (usage, _) = WritableLayers.Get(containerId);
        return (usage.Bytes, usage.Inodes);
    }

    /// <summary>Stops the usage walks and waits (up to 30 s) for the removals under way to be deleted.</summary>
    public void Dispose()
    {
        WritableLayers.Dispose();
        Task.WhenAny(Trash.Emptied, Task.Delay(TimeSpan.FromSeconds(30))).Wait();
    }

    /// <summary>Top chain ids of every recorded rootfs: their snapshots (and parents) must stay.</summary>
    public IReadOnlyList<string> TopChains() => _database.QueryStrings("SELECT top_chain_id FROM rootfs");

    /// <summary>The chain ids from the base layer up to <paramref name="topChainId"/>, following parents.</summary>
    public IReadOnlyList<string> ChainOf(string topChainId)
    {
        var chain = new List<string>();
        for (var current = topChainId; current is not null;)
        {
            var snapshot = _snapshots.Find(current) ?? throw NacelleException.NotFound($"layer snapshot {current} is missing");
            chain.Add(current);
            current = snapshot.ParentChainId;
        }

        chain.Reverse();
        return chain;
    }

    // overlayfs takes the top layer first.
    private IReadOnlyList<string> LowerDirs(IReadOnlyList<string> chainIds) =>
        chainIds.Reverse().Select(c => (_snapshots.Find(c) ?? throw NacelleException.NotFound($"layer snapshot {c} is missing")).Path).ToList();

    private Rootfs Describe(string containerId, string imageId, IReadOnlyList<string> lowers)
    {
        var dir = System.IO.Path.Combine(_containers, containerId);
        return new Rootfs(containerId, imageId, System.IO.Path.Combine(dir, "rootfs"), System.IO.Path.Combine(dir, "upper"), lowers);
    }

    private static void ValidateId(string containerId)
    {
        if (containerId.Length is 0 or > 128 || containerId.AsSpan().IndexOfAnyExcept("abcdefghijklmnopqrstuvwxyz0123456789-_.") >= 0 || containerId.StartsWith('.'))
        {
            throw NacelleException.InvalidArgument($"'{containerId}' is not a valid container id for a rootfs");
        }
    }
}
