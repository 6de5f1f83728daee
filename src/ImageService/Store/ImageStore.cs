using Microsoft.Data.Sqlite;
using Nacelle.Storage;

namespace Nacelle.ImageService.Store;

/// <summary>
/// Images in the metadata database: id (config digest), repo tags and digests, layers with their chain ids, the
/// blobs each image keeps in the content store. Writes are single transactions.
/// </summary>
public sealed class ImageStore(MetadataDatabase database)
{
    /// <summary>
    /// Records a pulled image, or adds names to it if it exists. A tag moves from any other image to this one; an
    /// image left without names by that move stays (by id) until it is removed.
    /// </summary>
    public void Save(ImageRecord image, IReadOnlyList<string> blobDigests)
    {
        using var connection = database.Open();
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

    public IReadOnlyList<ImageRecord> List()
    {
        using var connection = database.Open();
        return Load(connection, "SELECT id, manifest_digest, size, user, pinned, pulled_at, config FROM images ORDER BY pulled_at", []);
    }

    public ImageRecord? Get(string id)
    {
        using var connection = database.Open();
        return Load(connection, "SELECT id, manifest_digest, size, user, pinned, pulled_at, config FROM images WHERE id = $id", [("$id", id)])
            .SingleOrDefault();
    }

    /// <summary>The image a repo tag or repo digest names, if any.</summary>
    public string? ImageIdByName(string name)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT image_id FROM image_names WHERE name = $n";
        command.Parameters.AddWithValue("$n", name);
        return command.ExecuteScalar() as string;
    }

    /// <summary>Image ids starting with the given hex prefix (after "sha256:").</summary>
    public IReadOnlyList<string> IdsByPrefix(string idPrefix) =>
        database.QueryStrings("SELECT id FROM images WHERE substr(id, 1, length($p)) = $p", ("$p", idPrefix));

    public void RemoveName(string name)
    {
        using var connection = database.Open();
        using var transaction = connection.BeginTransaction();
        Exec(connection, transaction, "DELETE FROM image_names WHERE name = $n", ("$n", name));
        transaction.Commit();
    }

    public void Remove(string id)
    {
        using var connection = database.Open();
        using var transaction = connection.BeginTransaction();
        Exec(connection, transaction, "DELETE FROM images WHERE id = $id", ("$id", id));
        transaction.Commit();
    }

    /// <summary>Digests every remaining image still needs in the content store (its blobs and layer blobs).</summary>
    public IReadOnlySet<string> ReferencedBlobs() =>
        database.QueryStrings("SELECT digest FROM image_blobs UNION SELECT blob_digest FROM image_layers").ToHashSet(StringComparer.Ordinal);

    /// <summary>Chain ids of every layer of every remaining image.</summary>
    public IReadOnlySet<string> ReferencedChains() =>
        database.QueryStrings("SELECT DISTINCT chain_id FROM image_layers").ToHashSet(StringComparer.Ordinal);

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
}
