using System.Collections.Immutable;
using Microsoft.Data.Sqlite;
using Nacelle.Storage;

namespace Nacelle.ImageService.Store;

/// <summary>
/// Images in the metadata database: id (config digest), repo tags and digests, layers with their chain ids, the
/// blobs each image keeps in the content store. Writes are single transactions, committed before they return; reads
/// are served from an in-memory copy of the images and their names, which every write brings up to date (from the rows
/// it committed) under the store's write lock before it returns. One store per database file and process (the daemon).
/// </summary>
public sealed class ImageStore
{
    private const string SelectImages = "SELECT id, manifest_digest, size, user, pinned, pulled_at, config FROM images";

    private readonly MetadataDatabase _database;
    private readonly Lock _write = new();
    private volatile Snapshot _snapshot;

    /// <summary>Loads every image (the image migrations must have run).</summary>
    public ImageStore(MetadataDatabase database)
    {
        _database = database;
        using var connection = database.Open();
        _snapshot = Snapshot.Empty.With(Load(connection, SelectImages, []), []);
    }

    /// <summary>
    /// Records a pulled image, or adds names to it if it exists. A tag moves from any other image to this one; an
    /// image left without names by that move stays (by id) until it is removed.
    /// </summary>
    public void Save(ImageRecord image, IReadOnlyList<string> blobDigests)
    {
        lock (_write)
        {
            SaveCommitted(image, blobDigests);
            // The image, and any image a tag moved away from.
            var snapshot = _snapshot;
            Reload(snapshot, [image.Id, .. image.RepoTags.Concat(image.RepoDigests).Select(n => snapshot.Names.GetValueOrDefault(n)).OfType<string>()]);
        }
    }

    private void SaveCommitted(ImageRecord image, IReadOnlyList<string> blobDigests)
    {
        using var connection = _database.Open();
        using var transaction = connection.BeginTransaction();
        Exec(connection, transaction, """
            INSERT INTO images (id, manifest_digest, size, user, pinned, pulled_at, config)
            VALUES ($id, $m, $s, $u, $p, $t, $c)
            ON CONFLICT(id) DO UPDATE SET manifest_digest = excluded.manifest_digest, pulled_at = excluded.pulled_at
            """,
            ("$id", image.Id), ("$m", image.ManifestDigest), ("$s", image.Size), ("$u", image.User),
            ("$p", image.Pinned ? 1 : 0), ("$t", image.PulledAt.ToUnixTimeMilliseconds() * 1_000_000), ("$c", image.Config));

        foreach (var layer in image.Layers)
        {
            Exec(connection, transaction, """
                INSERT OR IGNORE INTO image_layers (image_id, position, diff_id, chain_id, blob_digest, blob_size)
                VALUES ($id, $pos, $d, $c, $b, $s)
                """,
                ("$id", image.Id), ("$pos", layer.Position), ("$d", layer.DiffId), ("$c", layer.ChainId), ("$b", layer.BlobDigest), ("$s", layer.BlobSize));
        }

        foreach (var digest in blobDigests)
        {
            Exec(connection, transaction, "INSERT OR IGNORE INTO image_blobs (image_id, digest) VALUES ($id, $d)", ("$id", image.Id), ("$d", digest));
        }

        foreach (var (name, kind) in image.RepoTags.Select(t => (t, "tag")).Concat(image.RepoDigests.Select(d => (d, "digest"))))
        {
            Exec(connection, transaction, """
                INSERT INTO image_names (name, image_id, kind) VALUES ($n, $id, $k)
                ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id
                """,
                ("$n", name), ("$id", image.Id), ("$k", kind));
        }

        transaction.Commit();
    }

    /// <summary>Every image, oldest pull first.</summary>
    public IReadOnlyList<ImageRecord> List() => _snapshot.Order;

    public ImageRecord? Get(string id) => _snapshot.ById.GetValueOrDefault(id);

    /// <summary>The image a repo tag or repo digest names, if any.</summary>
    public string? ImageIdByName(string name) => _snapshot.Names.GetValueOrDefault(name);

    /// <summary>Image ids starting with the given hex prefix (after "sha256:").</summary>
    public IReadOnlyList<string> IdsByPrefix(string idPrefix) =>
        [.. _snapshot.ById.Keys.Where(id => id.StartsWith(idPrefix, StringComparison.Ordinal))];

    /// <summary>Removes a name (a buffered commit: a machine crash may bring the name back, which is harmless).</summary>
    public void RemoveName(string name)
    {
        lock (_write)
        {
            using (var connection = _database.OpenBuffered())
            {
                using var transaction = connection.BeginTransaction();
                Exec(connection, transaction, "DELETE FROM image_names WHERE name = $n", ("$n", name));
                transaction.Commit();
            }

            var snapshot = _snapshot;
            Reload(snapshot, snapshot.Names.GetValueOrDefault(name) is { } holder ? [holder] : []);
        }
    }

    /// <summary>Removes an image with its names, layers and blob references. A buffered commit: the caller syncs the
    /// database (<see cref="MetadataDatabase.SyncToDisk"/>) before it deletes a file only this image used, so a machine
    /// crash may bring the image back but never without its files.</summary>
    public void Remove(string id)
    {
        lock (_write)
        {
            using (var connection = _database.OpenBuffered())
            {
                using var transaction = connection.BeginTransaction();
                Exec(connection, transaction, "DELETE FROM images WHERE id = $id", ("$id", id));
                transaction.Commit();
            }

            Reload(_snapshot, [id]);
        }
    }

    /// <summary>Digests every remaining image still needs in the content store (its blobs and layer blobs).</summary>
    public IReadOnlySet<string> ReferencedBlobs() =>
        _database.QueryStrings("SELECT digest FROM image_blobs UNION SELECT blob_digest FROM image_layers").ToHashSet(StringComparer.Ordinal);

    /// <summary>Chain ids of every layer of every remaining image.</summary>
    public IReadOnlySet<string> ReferencedChains() =>
        _database.QueryStrings("SELECT DISTINCT chain_id FROM image_layers").ToHashSet(StringComparer.Ordinal);

    private static List<ImageRecord> Load(SqliteConnection connection, string sql, (string, object)[] parameters)
    {
        var images = new List<(string Id, string Manifest, long Size, string User, bool Pinned, long PulledAt, byte[] Config)>();
        using (var command = connection.CreateCommand())
        {
            command.CommandText = sql;
            foreach (var (name, value) in parameters)
            {
                command.Parameters.AddWithValue(name, value);
            }

            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                images.Add((reader.GetString(0), reader.GetString(1), reader.GetInt64(2), reader.GetString(3), reader.GetInt64(4) != 0,
                    reader.GetInt64(5), (byte[])reader.GetValue(6)));
            }
        }

        var result = new List<ImageRecord>(images.Count);
        foreach (var image in images)
        {
            var tags = new List<string>();
            var digests = new List<string>();
            using (var names = connection.CreateCommand())
            {
                names.CommandText = "SELECT name, kind FROM image_names WHERE image_id = $id ORDER BY name";
                names.Parameters.AddWithValue("$id", image.Id);
                using var reader = names.ExecuteReader();
                while (reader.Read())
                {
                    (reader.GetString(1) == "tag" ? tags : digests).Add(reader.GetString(0));
                }
            }

            var layers = new List<LayerRecord>();
            using (var query = connection.CreateCommand())
            {
                query.CommandText = "SELECT position, diff_id, chain_id, blob_digest, blob_size FROM image_layers WHERE image_id = $id ORDER BY position";
                query.Parameters.AddWithValue("$id", image.Id);
                using var reader = query.ExecuteReader();
                while (reader.Read())
                {
                    layers.Add(new LayerRecord(reader.GetInt32(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetInt64(4)));
                }
            }

            result.Add(new ImageRecord(image.Id, image.Manifest, image.Size, image.User, image.Pinned,
                DateTimeOffset.FromUnixTimeMilliseconds(image.PulledAt / 1_000_000), image.Config, tags, digests, layers));
        }

        return result;
    }

    private static void Exec(SqliteConnection connection, SqliteTransaction transaction, string sql, params (string Name, object Value)[] parameters)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        command.ExecuteNonQuery();
    }

    /// <summary>Publishes the committed rows of <paramref name="ids"/> (gone ones leave the copy with their names).</summary>
    private void Reload(Snapshot snapshot, IReadOnlyCollection<string> ids)
    {
        if (ids.Count == 0)
        {
            return;
        }

        var distinct = ids.Distinct(StringComparer.Ordinal).ToList();
        using var connection = _database.Open();
        var parameters = distinct.Select((id, i) => ($"$id{i}", (object)id)).ToArray();
        var loaded = Load(connection, $"{SelectImages} WHERE id IN ({string.Join(", ", parameters.Select(p => p.Item1))})", parameters);
        _snapshot = snapshot.With(loaded, distinct);
    }

    /// <summary>What readers see: images by id, in pull order, and every name's image; replaced as a whole by each write.</summary>
    private sealed class Snapshot(ImmutableDictionary<string, ImageRecord> byId, ImageRecord[] order, ImmutableDictionary<string, string> names)
    {
        public static readonly Snapshot Empty = new(
            ImmutableDictionary.Create<string, ImageRecord>(StringComparer.Ordinal), [], ImmutableDictionary.Create<string, string>(StringComparer.Ordinal));

        public ImmutableDictionary<string, ImageRecord> ById => byId;

        public IReadOnlyList<ImageRecord> Order => order;

        public ImmutableDictionary<string, string> Names => names;

        /// <summary>This copy with <paramref name="replaced"/> taken out (with their names) and <paramref name="loaded"/> put in.</summary>
        public Snapshot With(IReadOnlyList<ImageRecord> loaded, IReadOnlyCollection<string> replaced)
        {
            var gone = replaced.ToHashSet(StringComparer.Ordinal);
            var images = byId.RemoveRange(replaced).SetItems(loaded.Select(i => KeyValuePair.Create(i.Id, i)));
            var named = names.RemoveRange(names.Where(n => gone.Contains(n.Value)).Select(n => n.Key))
                .SetItems(loaded.SelectMany(i => i.RepoTags.Concat(i.RepoDigests).Select(n => KeyValuePair.Create(n, i.Id))));
            return new(images, [.. images.Values.OrderBy(i => i.PulledAt).ThenBy(i => i.Id, StringComparer.Ordinal)], named);
        }
    }
}
