namespace Nacelle.ImageService.Manifests;

/// <summary>The media types of OCI and Docker images, and which of them nacelle accepts.</summary>
public static class MediaTypes
{
    /// <summary>OCI image manifest.</summary>
    public const string OciManifest = "application/vnd.oci.image.manifest.v1+json";
    /// <summary>OCI image index (a multi-platform list of manifests).</summary>
    public const string OciIndex = "application/vnd.oci.image.index.v1+json";
    /// <summary>OCI image config.</summary>
    public const string OciConfig = "application/vnd.oci.image.config.v1+json";
    /// <summary>OCI layer, uncompressed tar.</summary>
    public const string OciLayerTar = "application/vnd.oci.image.layer.v1.tar";
    /// <summary>OCI layer, gzip-compressed tar.</summary>
    public const string OciLayerTarGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// <summary>OCI layer, zstd-compressed tar.</summary>
    public const string OciLayerTarZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
    /// <summary>OCI non-distributable layer, uncompressed (deprecated by OCI, still seen).</summary>
    public const string OciLayerNondistributableTar = "application/vnd.oci.image.layer.nondistributable.v1.tar";
    /// <summary>OCI non-distributable layer, gzip.</summary>
    public const string OciLayerNondistributableTarGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    /// <summary>OCI non-distributable layer, zstd.</summary>
    public const string OciLayerNondistributableTarZstd = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

    /// <summary>Docker image manifest, schema 2.</summary>
    public const string DockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
    /// <summary>Docker manifest list (multi-platform).</summary>
    public const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
    /// <summary>Docker image config.</summary>
    public const string DockerConfig = "application/vnd.docker.container.image.v1+json";
    /// <summary>Docker layer, gzip-compressed tar.</summary>
    public const string DockerLayerTarGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// <summary>Docker foreign layer (gzip; may carry urls).</summary>
    public const string DockerForeignLayerTarGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

    /// <summary>Docker schema 1 manifest: refused (deprecated, unverifiable layer ids).</summary>
    public const string DockerSchema1Manifest = "application/vnd.docker.distribution.manifest.v1+json";
    /// <summary>Docker schema 1 signed manifest: refused.</summary>
    public const string DockerSchema1SignedManifest = "application/vnd.docker.distribution.manifest.v1+prettyjws";

    /// <summary>The Accept header value sent when fetching manifests (every type nacelle can use).</summary>
    public static readonly IReadOnlyList<string> AcceptedManifestTypes = [OciIndex, DockerManifestList, OciManifest, DockerManifest];

    /// <summary>Whether the type is an index or manifest list.</summary>
    public static bool IsIndex(string mediaType) => mediaType is OciIndex or DockerManifestList;

    /// <summary>Whether the type is a single-platform image manifest.</summary>
    public static bool IsManifest(string mediaType) => mediaType is OciManifest or DockerManifest;

    /// <summary>Whether the type is a schema 1 manifest (refused).</summary>
    public static bool IsSchema1(string mediaType) => mediaType is DockerSchema1Manifest or DockerSchema1SignedManifest;

    /// <summary>Whether the type is an image config nacelle understands.</summary>
    public static bool IsConfig(string mediaType) => mediaType is OciConfig or DockerConfig;

    /// <summary>Whether the type is a layer nacelle can unpack.</summary>
    public static bool IsLayer(string mediaType) => LayerCompression(mediaType) is not null;

    /// <summary>The compression of a layer type: "none", "gzip" or "zstd"; null when the type is not a layer.</summary>
    public static string? LayerCompression(string mediaType) => mediaType switch
    {
        OciLayerTar or OciLayerNondistributableTar => "none",
        OciLayerTarGzip or OciLayerNondistributableTarGzip or DockerLayerTarGzip or DockerForeignLayerTarGzip => "gzip",
        OciLayerTarZstd or OciLayerNondistributableTarZstd => "zstd",
        _ => null,
    };
}
