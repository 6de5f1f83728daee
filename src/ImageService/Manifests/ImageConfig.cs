using System.Globalization;
using System.Text.Json;
using Nacelle.Common;

namespace Nacelle.ImageService.Manifests;

/// <summary>
/// The parts of an OCI/Docker image config the runtime needs. Lists and maps are never null (empty when absent);
/// <see cref="Entrypoint"/> and <see cref="Cmd"/> are empty when the image does not set them.
/// </summary>
public sealed record ImageConfig(
    string Os,
    string Architecture,
    string? Variant,
    DateTimeOffset? Created,
    IReadOnlyList<string> DiffIds,
    string? User,
    IReadOnlyList<string> Env,
    IReadOnlyList<string> Entrypoint,
    IReadOnlyList<string> Cmd,
    string? WorkingDir,
    string? StopSignal,
    IReadOnlyDictionary<string, string> Labels,
    IReadOnlyList<string> ExposedPorts,
    IReadOnlyList<string> Volumes)
{
    /// <summary>Parses an image config blob; throws <see cref="NacelleException"/> (InvalidArgument) when it is not valid JSON or lacks rootfs.diff_ids.</summary>
    public static ImageConfig Parse(byte[] json)
    {
        ArgumentNullException.ThrowIfNull(json);
        ImageConfigJson? doc;
        try
        {
            doc = JsonSerializer.Deserialize(json, ImageJsonContext.Default.ImageConfigJson);
        }
        catch (JsonException ex)
        {
            throw new NacelleException(ErrorKind.InvalidArgument, $"image config is not valid JSON: {ex.Message}", ex);
        }
        if (doc is null)
            throw NacelleException.InvalidArgument("image config is empty (null)");
        if (doc.RootFs?.DiffIds is null)
            throw NacelleException.InvalidArgument("image config has no rootfs.diff_ids");
        foreach (string diffId in doc.RootFs.DiffIds)
        {
            if (!References.ImageReference.IsValidDigest(diffId))
                throw NacelleException.InvalidArgument($"image config has an invalid diff id '{diffId}'");
        }

        DateTimeOffset? created = null;
        if (!string.IsNullOrEmpty(doc.Created) &&
            DateTimeOffset.TryParse(doc.Created, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out DateTimeOffset c))
            created = c;

        ContainerConfigJson cfg = doc.Config ?? new ContainerConfigJson();
        return new ImageConfig(
            Os: doc.Os ?? "",
            Architecture: doc.Architecture ?? "",
            Variant: string.IsNullOrEmpty(doc.Variant) ? null : doc.Variant,
            Created: created,
            DiffIds: doc.RootFs.DiffIds,
            User: string.IsNullOrEmpty(cfg.User) ? null : cfg.User,
            Env: cfg.Env ?? [],
            Entrypoint: cfg.Entrypoint ?? [],
            Cmd: cfg.Cmd ?? [],
            WorkingDir: string.IsNullOrEmpty(cfg.WorkingDir) ? null : cfg.WorkingDir,
            StopSignal: string.IsNullOrEmpty(cfg.StopSignal) ? null : cfg.StopSignal,
            Labels: cfg.Labels ?? new Dictionary<string, string>(),
            ExposedPorts: cfg.ExposedPorts is null ? [] : [.. cfg.ExposedPorts.Keys.Order(StringComparer.Ordinal)],
            Volumes: cfg.Volumes is null ? [] : [.. cfg.Volumes.Keys.Order(StringComparer.Ordinal)]);
    }
}
