using Nacelle.ImageService.Registry;

namespace Nacelle.ImageService;

/// <summary>What the image service needs from the daemon's configuration.</summary>
public sealed class ImageServiceOptions
{
    /// <summary>The persistent root (content/, snapshots/, containers/ live below it).</summary>
    public required string Root { get; init; }

    /// <summary>Layers downloaded at the same time by one pull.</summary>
    public int MaxConcurrentDownloads { get; init; } = 3;

    public RegistryOptions Registry { get; init; } = new();

    /// <summary>Patterns of images reported as pinned and never removed by RemoveImage (see <see cref="ImageService.PinnedImages"/>).</summary>
    public IReadOnlyList<string> PinnedImages { get; init; } = [];
}
