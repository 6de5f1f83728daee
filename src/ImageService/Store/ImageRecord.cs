namespace Nacelle.ImageService.Store;

/// <summary>One layer of a stored image.</summary>
public sealed record LayerRecord(int Position, string DiffId, string ChainId, string BlobDigest, long BlobSize);

/// <summary>An image as the store keeps it.</summary>
public sealed record ImageRecord(
    string Id,
    string ManifestDigest,
    long Size,
    string User,
    bool Pinned,
    DateTimeOffset PulledAt,
    byte[] Config,
    IReadOnlyList<string> RepoTags,
    IReadOnlyList<string> RepoDigests,
    IReadOnlyList<LayerRecord> Layers)
{
    /// <summary>The top layer's chain id: the snapshot a rootfs of this image stacks on.</summary>
    public string TopChainId => Layers[^1].ChainId;
}
