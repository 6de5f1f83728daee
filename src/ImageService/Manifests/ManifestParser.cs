using System.Text.Json;
using Nacelle.Common;
using Nacelle.ImageService.References;

namespace Nacelle.ImageService.Manifests;

/// <summary>A single-platform image manifest: its config and layers, in order from the base layer up.</summary>
public sealed record ImageManifest(string MediaType, Descriptor Config, IReadOnlyList<Descriptor> Layers);

/// <summary>Parses manifests and indexes and decides which media types nacelle accepts.</summary>
public static class ManifestParser
{
    /// <summary>
    /// The media type of a fetched manifest: the Content-Type header when it names a manifest type, else the
    /// document's own <c>mediaType</c> field, else inferred from its shape (an OCI manifest or index without mediaType).
    /// Throws FailedPrecondition for schema 1 and for types nacelle does not understand, naming the type.
    /// </summary>
    public static string DetermineMediaType(string? contentType, byte[] body)
    {
        string? header = contentType?.Split(';')[0].Trim();
        ManifestJson? doc = TryParse(body);
        string? declared = doc?.MediaType;
        string? type = header is not null && (IsKnown(header) || MediaTypes.IsSchema1(header)) ? header : null;
        type ??= string.IsNullOrEmpty(declared) ? null : declared;
        if (type is null && doc is not null)
        {
            if (doc.SchemaVersion == 1)
                type = MediaTypes.DockerSchema1Manifest;
            else if (doc.Manifests is not null)
                type = MediaTypes.OciIndex;
            else if (doc.Config is not null && doc.Layers is not null)
                type = MediaTypes.OciManifest;
        }
        type ??= string.IsNullOrEmpty(header) ? "(none)" : header;
        EnsureAccepted(type);
        return type;
    }

    /// <summary>Throws <see cref="NacelleException"/> (FailedPrecondition) naming <paramref name="mediaType"/> unless it is an index, list or image manifest.</summary>
    public static void EnsureAccepted(string mediaType)
    {
        if (MediaTypes.IsSchema1(mediaType))
            throw NacelleException.FailedPrecondition(
                $"manifest media type {mediaType} (Docker schema 1) is not supported; push the image again with a current client (OCI or Docker schema 2)");
        if (!IsKnown(mediaType))
            throw NacelleException.FailedPrecondition(
                $"manifest media type {mediaType} is not supported (expected one of {string.Join(", ", MediaTypes.AcceptedManifestTypes)})");
    }

    /// <summary>The manifests an index or manifest list points to.</summary>
    public static IReadOnlyList<Descriptor> ParseIndex(byte[] body)
    {
        ManifestJson doc = Parse(body, "index");
        if (doc.Manifests is null)
            throw NacelleException.InvalidArgument("image index has no \"manifests\" array");
        return [.. doc.Manifests.Select(d => ToDescriptor(d, "index entry"))];
    }

    /// <summary>The config and layers of an image manifest; the config must be an image config type.</summary>
    public static ImageManifest ParseManifest(byte[] body, string mediaType)
    {
        ManifestJson doc = Parse(body, "manifest");
        if (doc.Config is null)
            throw NacelleException.InvalidArgument("image manifest has no \"config\"");
        Descriptor config = ToDescriptor(doc.Config, "config");
        if (!MediaTypes.IsConfig(config.MediaType))
            throw NacelleException.FailedPrecondition(
                $"config media type {config.MediaType} is not a container image config (this is not a runnable image)");
        List<Descriptor> layers = [.. (doc.Layers ?? []).Select(d => ToDescriptor(d, "layer"))];
        foreach (Descriptor layer in layers)
        {
            if (!MediaTypes.IsLayer(layer.MediaType))
                throw NacelleException.FailedPrecondition($"layer {layer.Digest} has media type {layer.MediaType}, which is not supported");
        }
        return new ImageManifest(mediaType, config, layers);
    }

    /// <summary>
    /// Chooses the manifest for <paramref name="platform"/> from an index: os and architecture must match; the variant must
    /// match (arm64 without a variant counts as v8; on 32-bit arm a lower variant runs too, the highest wins). An exact
    /// variant match beats a compatible one; among equals the first listed wins. Null when nothing fits.
    /// </summary>
    public static Descriptor? SelectPlatform(IReadOnlyList<Descriptor> manifests, Platform platform)
    {
        Descriptor? best = null;
        int bestScore = -1;
        foreach (Descriptor d in manifests)
        {
            if (d.Platform is null || !MediaTypes.IsManifest(d.MediaType) && !string.IsNullOrEmpty(d.MediaType) && !MediaTypes.IsIndex(d.MediaType))
                continue;
            int score = Score(d.Platform, platform);
            if (score > bestScore)
            {
                best = d;
                bestScore = score;
            }
        }
        return best;
    }

    // -1: incompatible. Higher is better.
    private static int Score(Platform candidate, Platform node)
    {
        if (!string.Equals(candidate.Os, node.Os, StringComparison.Ordinal) ||
            !string.Equals(NormaliseArch(candidate.Architecture), NormaliseArch(node.Architecture), StringComparison.Ordinal))
            return -1;
        string arch = NormaliseArch(node.Architecture);
        string? want = NormaliseVariant(arch, node.Variant);
        string? have = NormaliseVariant(arch, candidate.Variant);
        if (want == have)
            return 1000;
        if (arch == "arm" && VariantNumber(want) is int w && VariantNumber(have) is int h && h < w)
            return 100 + h;
        if (want is null && have is null)
            return 1000;
        if (arch == "amd64" && have == "v1")
            return 1000;
        return -1;
    }

    private static string NormaliseArch(string arch) => arch switch
    {
        "x86_64" or "x86-64" => "amd64",
        "aarch64" => "arm64",
        "armhf" => "arm",
        "i386" => "386",
        _ => arch,
    };

    private static string? NormaliseVariant(string arch, string? variant)
    {
        if (string.IsNullOrEmpty(variant))
            return arch switch { "arm64" => "v8", "arm" => "v7", _ => null };
        return variant switch { "8" => "v8", "7" => "v7", "6" => "v6", "5" => "v5", _ => variant };
    }

    private static int? VariantNumber(string? variant) =>
        variant is { Length: > 1 } && variant[0] == 'v' && int.TryParse(variant.AsSpan(1), out int n) ? n : null;

    private static bool IsKnown(string mediaType) => MediaTypes.IsIndex(mediaType) || MediaTypes.IsManifest(mediaType);

    private static ManifestJson? TryParse(byte[] body)
    {
        try
        {
            return JsonSerializer.Deserialize(body, ImageJsonContext.Default.ManifestJson);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static ManifestJson Parse(byte[] body, string what)
    {
        try
        {
            return JsonSerializer.Deserialize(body, ImageJsonContext.Default.ManifestJson)
                ?? throw NacelleException.InvalidArgument($"image {what} is empty (null)");
        }
        catch (JsonException ex)
        {
            throw new NacelleException(ErrorKind.InvalidArgument, $"image {what} is not valid JSON: {ex.Message}", ex);
        }
    }

    private static Descriptor ToDescriptor(DescriptorJson d, string what)
    {
        if (string.IsNullOrEmpty(d.Digest) || !ImageReference.IsValidDigest(d.Digest))
            throw NacelleException.InvalidArgument($"{what} has an invalid digest '{d.Digest}'");
        if (d.Size < 0)
            throw NacelleException.InvalidArgument($"{what} {d.Digest} has a negative size");
        Platform? platform = d.Platform is { Os: not null, Architecture: not null } p
            ? new Platform(p.Os, p.Architecture, string.IsNullOrEmpty(p.Variant) ? null : p.Variant)
            : null;
        return new Descriptor(d.MediaType ?? "", d.Digest, d.Size, d.Urls ?? [], platform);
    }
}
