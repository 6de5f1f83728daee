using Microsoft.Extensions.Logging;
using Nacelle.Common;
using Nacelle.Storage;
using Nacelle.ImageService.Content;
using Nacelle.ImageService.Manifests;
using Nacelle.ImageService.References;
using Nacelle.ImageService.Registry;
using Nacelle.ImageService.Snapshots;
using Nacelle.ImageService.Store;

namespace Nacelle.ImageService;

/// <summary>
/// Disk used by images (unpacked layers + the content store's blobs) and by containers' writable layers (their upper
/// directories), in allocated bytes and inodes, with the time of the oldest numbers in each sum.
/// </summary>
public sealed record ImageFsUsage(
    string ImageMountpoint, long ImageBytes, long ImageInodes, DateTimeOffset ImageMeasuredAt,
    string ContainerMountpoint, long ContainerBytes, long ContainerInodes, DateTimeOffset ContainerMeasuredAt);

/// <summary>
/// The image service as the daemon uses it: pull, find, list, remove (with garbage collection of blobs and snapshots
/// no image or container rootfs needs), disk usage, and container root filesystems.
/// </summary>
public sealed partial class ImageManager : IDisposable
{
    private readonly ContentStore _content;
    private readonly SnapshotStore _snapshots;
    private readonly ImageStore _images;
    private readonly RegistryClient _registry;
    private readonly ImagePuller _puller;
    private readonly string _root;
    private readonly SemaphoreSlim _removals = new(1, 1);
    private volatile PinnedImages _pins;
    private readonly CancellationTokenSource _stopping = new();
    private readonly DateTimeOffset _startedAt = DateTimeOffset.UtcNow;

    public ImageManager(ImageServiceOptions options, MetadataDatabase database, ILoggerFactory loggerFactory)
    {
        _root = options.Root;
        _pins = new PinnedImages(options.PinnedImages);
        database.Migrate(ImageSchema.Domain, ImageSchema.Migrations);
        _content = new ContentStore(options.Root);
        _snapshots = new SnapshotStore(database, options.Root);
        _images = new ImageStore(database);
        Rootfs = new RootfsManager(database, _snapshots, options.Root);
        _registry = new RegistryClient(options.Registry, Platform.Current, loggerFactory.CreateLogger<RegistryClient>());
        _puller = new ImagePuller(_registry, _content, _snapshots, _images, options, loggerFactory.CreateLogger<ImagePuller>());

        // Layers unpacked before their usage was kept with them: measured once, in the background.
        var logger = loggerFactory.CreateLogger<ImageManager>();
        MeasuredLayers = _snapshots.Usage().Unmeasured == 0
            ? Task.CompletedTask
            : Task.Run(async () =>
            {
                try
                {
                    await _snapshots.MeasureMissingAsync(_stopping.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    LogMeasureFailed(logger, e);
                }
            });
    }

    /// <summary>
    /// Applies a configuration reload: registry hosts, mirrors, node credentials and limits for the pulls that start
    /// from now on (pulls under way finish as they began), and the pinned patterns. Other options need a restart.
    /// </summary>
    public void Reconfigure(RegistryOptions registry, IReadOnlyList<string> pinnedImages)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(pinnedImages);
        var pins = new PinnedImages(pinnedImages);
        _registry.Reconfigure(registry);
        _pins = pins;
    }

    /// <summary>Completes when every snapshot has its usage numbers (at once unless an older store was opened).</summary>
    public Task MeasuredLayers { get; }

    /// <summary>Container root filesystems over image snapshots.</summary>
    public RootfsManager Rootfs { get; }

    /// <summary>Pulls <paramref name="image"/> (any reference form) and returns the stored image.</summary>
    public Task<ImageRecord> PullAsync(string image, RegistryCredentials? credentials, CancellationToken cancellationToken) =>
        _puller.PullAsync(ImageReference.Parse(image), credentials?.Validate(), cancellationToken);

    /// <summary>Every image, pinned as the configured patterns say.</summary>
    public IReadOnlyList<ImageRecord> List() => [.. _images.List().Select(_pins.Apply)];

    /// <summary>
    /// Finds an image by id ("sha256:&lt;hex&gt;" or the bare hex), by a unique id prefix of at least 12 hex digits,
    /// or by any reference form naming one of its repo tags or repo digests. Null when nothing matches.
    /// </summary>
    public ImageRecord? Find(string spec)
    {
        var id = ResolveId(spec);
        return id is null || _images.Get(id) is not { } image ? null : _pins.Apply(image);
    }

    /// <summary>
    /// Removes what <paramref name="spec"/> names. A tag of an image that has other tags only loses that tag; otherwise
    /// the image goes with all its names, then blobs and snapshots no remaining image or container rootfs uses are
    /// deleted. Returns false when nothing matched (removal of an unknown image succeeds, as CRI requires). A pinned image
    /// (or a pinned tag) is refused with FailedPrecondition naming the pattern: CRI's RemoveImage has no force, so
    /// the configuration is the only way to release it.
    /// </summary>
    public async Task<bool> RemoveAsync(string spec, CancellationToken cancellationToken)
    {
        await _removals.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var id = ResolveId(spec);
            if (id is null || _images.Get(id) is not { } image)
            {
                return false;
            }

            var tag = TagNamedBy(spec, image);
            if (tag is not null && image.RepoTags.Count > 1)
            {
                RefuseIfPinned(tag, _pins.PatternFor(tag));
                _images.RemoveName(tag);
                return true;
            }

            RefuseIfPinned(image.RepoTags.FirstOrDefault() ?? image.Id, _pins.PatternFor(image));
            _images.Remove(id);
            CollectGarbage();
            return true;
        }
        finally
        {
            _removals.Release();
        }
    }

    /// <summary>Where the containers' writable layers live (the filesystem CRI's container stats name).</summary>
    public string ContainersDirectory => Rootfs.ContainersDirectory;

    /// <summary>
    /// ImageFsInfo's numbers, from memory: no walk, whatever the number and size of images and containers. Images:
    /// the unpacked layers (measured once when unpacked) plus the content store's blobs (compressed layers, manifests,
    /// configs; stated when stored). Containers: the writable upper directories only (never the mounted rootfs, whose
    /// content is the image's), at most a few seconds old (see <see cref="WritableLayerUsage"/>).
    /// </summary>
    public ImageFsUsage FsUsage()
    {
        var (layers, unmeasured) = _snapshots.Usage();
        var images = layers + _content.Usage();
        var (containers, containersAt) = Rootfs.WritableLayers.Total();
        var imagesAt = unmeasured == 0 ? DateTimeOffset.UtcNow : _startedAt;
        return new ImageFsUsage(_snapshots.Location, images.Bytes, images.Inodes, imagesAt,
            ContainersDirectory, containers.Bytes, containers.Inodes, containersAt);
    }

    /// <summary>Creates a container rootfs record and layout over <paramref name="imageSpec"/>'s layers.</summary>
    public Snapshots.Rootfs CreateRootfs(string containerId, string imageSpec)
    {
        var image = Find(imageSpec) ?? throw NacelleException.NotFound($"image \"{imageSpec}\" is not present; pull it first");
        return Rootfs.Create(containerId, image.Id, image.Layers.Select(l => l.ChainId).ToList());
    }

    /// <summary>
    /// Removes a container's rootfs and writable layer (idempotent). An image may be removed while containers use it
    /// (CRI semantics, as containerd: RemoveImage succeeds, the image and its names go, its layers stay for the
    /// containers); the layers only this rootfs still kept are deleted with it.
    /// </summary>
    public void RemoveRootfs(string containerId)
    {
        var rootfs = Rootfs.Get(containerId);
        Rootfs.Remove(containerId);
        if (rootfs is not null && _images.Get(rootfs.ImageId) is null)
        {
            _removals.Wait();
            try
            {
                CollectGarbage();
            }
            finally
            {
                _removals.Release();
            }
        }
    }

    public void Dispose()
    {
        _stopping.Cancel();
        Rootfs.Dispose();
        _registry.Dispose();
        _removals.Dispose();
        _stopping.Dispose();
    }

    private static void RefuseIfPinned(string name, string? pattern)
    {
        if (pattern is not null)
        {
            throw NacelleException.FailedPrecondition(
                $"image {name} is pinned by the pattern '{pattern}' (image.pinned_images); remove the pattern from the configuration to remove the image");
        }
    }

    private string? ResolveId(string spec)
    {
        if (string.IsNullOrWhiteSpace(spec))
        {
            throw NacelleException.InvalidArgument("no image named: the image spec is empty");
        }

        if (Digests.IsValid(spec))
        {
            return _images.Get(spec) is null ? null : spec;
        }

        var isHex = spec.AsSpan().IndexOfAnyExcept("0123456789abcdef") < 0;
        if (isHex && spec.Length == 64)
        {
            return "sha256:" + spec;
        }

        if (isHex && spec.Length >= 12)
        {
            var matches = _images.IdsByPrefix("sha256:" + spec);
            if (matches.Count == 1)
            {
                return matches[0];
            }
        }

        ImageReference reference;
        try
        {
            reference = ImageReference.Parse(spec);
        }
        catch (NacelleException)
        {
            return null; // neither an id nor a valid reference: nothing can be named by it
        }

        return _images.ImageIdByName(reference.ToString())
            ?? (reference is { Tag: not null, Digest: not null } ? _images.ImageIdByName(reference.WithDigest(reference.Digest)) : null);
    }

    private static string? TagNamedBy(string spec, ImageRecord image)
    {
        if (Digests.IsValid(spec) || spec.AsSpan().IndexOfAnyExcept("0123456789abcdef") < 0)
        {
            return null;
        }

        try
        {
            var reference = ImageReference.Parse(spec);
            var tag = reference is { Tag: not null, Digest: null } ? reference.ToString() : null;
            return tag is not null && image.RepoTags.Contains(tag) ? tag : null;
        }
        catch (NacelleException)
        {
            return null;
        }
    }

    // Blobs and snapshots no image and no container rootfs needs.
    private void CollectGarbage()
    {
        var liveChains = new HashSet<string>(_images.ReferencedChains(), StringComparer.Ordinal);
        foreach (var top in Rootfs.TopChains())
        {
            liveChains.UnionWith(Rootfs.ChainOf(top));
        }

        _snapshots.RemoveUnreferenced(liveChains);
        var liveBlobs = _images.ReferencedBlobs();
        foreach (var digest in _content.List().Where(d => !liveBlobs.Contains(d)).ToList())
        {
            _content.Delete(digest);
        }
    }

    [LoggerMessage(EventId = 3110, Level = LogLevel.Warning, Message = "measuring the disk usage of layers unpacked before it was kept failed")]
    private static partial void LogMeasureFailed(ILogger logger, Exception exception);
}
