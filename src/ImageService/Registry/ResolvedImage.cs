using Nacelle.ImageService.Manifests;
using Nacelle.ImageService.References;

namespace Nacelle.ImageService.Registry;

/// <summary>The result of resolving a reference for this node's platform.</summary>
/// <param name="Reference">The reference that was resolved.</param>
/// <param name="TopDigest">The digest the tag points to (an index/list or a manifest): the repo digest.</param>
/// <param name="ManifestDigest">The digest of the platform's image manifest.</param>
/// <param name="ManifestMediaType">The media type of that manifest.</param>
/// <param name="ManifestBytes">The manifest exactly as served (its sha256 is <paramref name="ManifestDigest"/>).</param>
/// <param name="Config">The image config blob's descriptor.</param>
/// <param name="Layers">The layer descriptors, base layer first.</param>
public sealed record ResolvedImage(
    ImageReference Reference,
    string TopDigest,
    string ManifestDigest,
    string ManifestMediaType,
    byte[] ManifestBytes,
    Descriptor Config,
    IReadOnlyList<Descriptor> Layers);
