namespace Nacelle.ImageService.Store;

/// <summary>The image service's tables in the metadata database, as ordered migrations.</summary>
internal static class ImageSchema
{
    public const string Domain = "images";

    public static readonly IReadOnlyList<string> Migrations =
    [
        """
        CREATE TABLE images (
            id TEXT PRIMARY KEY,                 -- the image id: digest of the image config
            manifest_digest TEXT NOT NULL,       -- the platform manifest pulled
            size INTEGER NOT NULL,               -- config + compressed layers, bytes
            user TEXT NOT NULL,                  -- config.User as written in the image
            pinned INTEGER NOT NULL DEFAULT 0,
            pulled_at INTEGER NOT NULL,          -- unix nanoseconds
            config BLOB NOT NULL                 -- the image config JSON
        );
        CREATE TABLE image_names (
            name TEXT PRIMARY KEY,               -- a normalised repo tag or repo digest
            image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('tag', 'digest'))
        );
        CREATE INDEX image_names_by_image ON image_names(image_id);
        CREATE TABLE image_layers (
            image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,           -- 0 = base layer
            diff_id TEXT NOT NULL,
            chain_id TEXT NOT NULL,
            blob_digest TEXT NOT NULL,
            blob_size INTEGER NOT NULL,
            PRIMARY KEY (image_id, position)
        );
        CREATE TABLE image_blobs (
            image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
            digest TEXT NOT NULL,                -- manifests, index and config kept in the content store
            PRIMARY KEY (image_id, digest)
        );
        CREATE TABLE snapshots (
            id INTEGER PRIMARY KEY AUTOINCREMENT, -- also the directory name: short lowerdir paths
            chain_id TEXT NOT NULL UNIQUE,
            parent_chain_id TEXT,
            diff_id TEXT NOT NULL,
            size INTEGER NOT NULL                -- uncompressed layer bytes
        );
        CREATE TABLE rootfs (
            container_id TEXT PRIMARY KEY,
            image_id TEXT NOT NULL,
            top_chain_id TEXT NOT NULL
        );
        """,
        // 2: disk usage of each unpacked layer (allocated bytes, inodes), measured once; NULL until measured.
        """
        ALTER TABLE snapshots ADD COLUMN disk_bytes INTEGER;
        ALTER TABLE snapshots ADD COLUMN inodes INTEGER;
        """,
    ];
}
