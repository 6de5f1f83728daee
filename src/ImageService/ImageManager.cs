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
    private readonly MetadataDatabase _database;
    private readonly ILogger _log;

    // Removals, pulls and the garbage collection meet here: one removal at a time, and a collection runs only while no
    // pull does (a pull reuses a snapshot it finds, which a collection must not delete under it). _pulling and
    // _collectionWanted are read and written only while holding _removals.
    private readonly SemaphoreSlim _removals = new(1, 1);
    private int _pulling;
    private bool _collectionWanted;
    private readonly Lock _collectionLock = new();
    private Task _collection = Task.CompletedTask;
    private volatile PinnedImages _pins;
    private readonly CancellationTokenSource _stopping = new();
    private readonly DateTimeOffset _startedAt = DateTimeOffset.UtcNow;

    public ImageManager(ImageServiceOptions options, MetadataDatabase database, ILoggerFactory loggerFactory)
    {
        _root = options.Root;
        _database = database;
        _log = loggerFactory.CreateLogger<ImageManager>();
        _pins = new PinnedImages(options.PinnedImages);
        database.Migrate(ImageSchema.Domain, ImageSchema.Migrations);
        _content = new ContentStore(options.Root);
        _snapshots = new SnapshotStore(database, options.Root);
        _images = new ImageStore(database);
        Rootfs = new RootfsManager(database, _snapshots, options.Root, _log);
        _registry = new RegistryClient(options.Registry, Platform.Current, loggerFactory.CreateLogger<RegistryClient>());
        _puller = new ImagePuller(_registry, _content, _snapshots, _images, options, loggerFactory.CreateLogger<ImagePuller>());

        // What a removal left to a collection that a stop or crash cut short.
        ScheduleCollection();

        // Layers unpacked before their usage was kept with them: measured once, in the background.
        var logger = _log;
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

    /// <summary>Pulls <paramref name="image"/> (any reference form) and returns the stored image. No garbage collection
    /// runs while it does (one that is due waits for the last pull to end).</summary>
    public async Task<ImageRecord> PullAsync(string image, RegistryCredentials? credentials, CancellationToken cancellationToken)
    {
        var reference = ImageReference.Parse(image);
        var validated = credentials?.Validate();
        await _removals.WaitAsync(cancellationToken).ConfigureAwait(false);
        _pulling++;
        _removals.Release();
        try
        {
            return await _puller.PullAsync(reference, validated, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await _removals.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            var collect = --_pulling == 0 && _collectionWanted;
            _removals.Release();
            if (collect)
            {
                ScheduleCollection();
            }
        }
    }

    /// <summary>Completes when every garbage collection scheduled so far has run (or been left to the end of the pulls
    /// under way, which start it again).</summary>
    public Task Collected
    {
        get
        {
            lock (_collectionLock)
            {
                return _collection;
            }
        }
    }

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
            ScheduleCollection();
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
        var imageId = Rootfs.ImageOf(containerId);
        var deleted = Rootfs.Remove(containerId);
        if (imageId is not null && _images.Get(imageId) is null)
        {
            // Once the overlay over those layers is unmounted (with the writable layer, in the background).
            deleted.ContinueWith(_ => ScheduleCollection(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    public void Dispose()
    {
        _stopping.Cancel();
        // A collection under way finishes (its deletions are short); one not run yet is left to the next start.
        Task.WhenAny(Collected, Task.Delay(TimeSpan.FromSeconds(30))).Wait();
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

    /// <summary>
    /// Starts a garbage collection in the background (RemoveImage answers once the image's records are gone; its blobs and
    /// snapshots follow). A removal's commit is buffered, so the collection first makes it durable: a file is never
    /// deleted while a machine crash could still bring back the record that names it. A daemon stopped before the
    /// collection ran leaves unreferenced blobs and snapshots, which the collection at the next start deletes.
    /// </summary>
    private void ScheduleCollection()
    {
        lock (_collectionLock)
        {
            var previous = _collection;
            _collection = Task.Run(async () =>
            {
                await previous.ConfigureAwait(false);
                await CollectWhenNoPullAsync().ConfigureAwait(false);
            });
        }
    }

    private async Task CollectWhenNoPullAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return; // left to the next start
        }

        await _removals.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            if (_pulling > 0)
            {
                _collectionWanted = true; // the last pull to end schedules it again
                return;
            }

            _collectionWanted = false;
            _database.SyncToDisk();
            var (snapshots, blobs) = CollectGarbage();
            if (snapshots + blobs > 0)
            {
                LogCollected(_log, snapshots, blobs);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NacelleException or Microsoft.Data.Sqlite.SqliteException)
        {
            LogCollectFailed(_log, e);
        }
        finally
        {
            _removals.Release();
        }
    }

    // Blobs and snapshots no image and no container rootfs needs.
    private (int Snapshots, int Blobs) CollectGarbage()
    {
        var liveChains = new HashSet<string>(_images.ReferencedChains(), StringComparer.Ordinal);
        foreach (var top in Rootfs.TopChains())
        {
            liveChains.UnionWith(Rootfs.ChainOf(top));
        }

        var snapshots = _snapshots.RemoveUnreferenced(liveChains);
        var liveBlobs = _images.ReferencedBlobs();
        var blobs = _content.List().Where(d => !liveBlobs.Contains(d)).ToList();
        foreach (var digest in blobs)
        {
            _content.Delete(digest);
        }

        return (snapshots, blobs.Count);
    }

    [LoggerMessage(EventId = 3111, Level = LogLevel.Information, Message = "garbage collection: {Snapshots} snapshots and {Blobs} blobs no image or container uses deleted")]
    private static partial void LogCollected(ILogger logger, int snapshots, int blobs);

    [LoggerMessage(EventId = 3112, Level = LogLevel.Warning, Message = "garbage collection failed; the next removal or start tries again")]
    private static partial void LogCollectFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 3110, Level = LogLevel.Warning, Message = "measuring the disk usage of layers unpacked before it was kept failed")]
    private static partial void LogMeasureFailed(ILogger logger, Exception exception);
}
