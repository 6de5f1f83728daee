namespace Nacelle.ImageService.Manifests;

/// <summary>An OCI content descriptor: what a manifest or index says about one blob or manifest it points to.</summary>
/// <param name="MediaType">The media type of the referenced content.</param>
/// <param name="Digest">Its digest, <c>sha256:...</c>.</param>
/// <param name="Size">Its size in bytes.</param>
/// <param name="Urls">Alternative download locations (foreign layers); usually empty.</param>
/// <param name="Platform">The platform, for manifests listed in an index; null elsewhere.</param>
public sealed record Descriptor(string MediaType, string Digest, long Size, IReadOnlyList<string> Urls, Platform? Platform);
