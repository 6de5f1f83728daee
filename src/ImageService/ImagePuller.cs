using System.Diagnostics;
using System.IO.Pipelines;
using Microsoft.Extensions.Logging;
using Nacelle.Common;
using Nacelle.ImageService.Content;
using Nacelle.ImageService.Layers;
using Nacelle.ImageService.Manifests;
using Nacelle.ImageService.References;
using Nacelle.ImageService.Registry;
using Nacelle.ImageService.Snapshots;
using Nacelle.ImageService.Store;

namespace Nacelle.ImageService;

/// <summary>
/// The pull pipeline: resolve the reference to this node's manifest, store manifest and config (verified), download
/// the layers in parallel (bounded) and unpack each one as soon as its blob and its parent's snapshot are ready, then
/// commit the image record. The image id (config digest) is returned only after everything is committed; a failed
/// pull leaves no image record (blobs and snapshots it completed are reused by the next pull or collected on remove).
/// </summary>
internal sealed partial class ImagePuller(
    RegistryClient registry, ContentStore content, SnapshotStore snapshots, ImageStore images, ImageServiceOptions options, ILogger logger)
{
    public static readonly ActivitySource Source = new("Nacelle.ImageService");

    public async Task<ImageRecord> PullAsync(ImageReference reference, RegistryCredentials? credentials, CancellationToken cancellationToken)
    {
        using var activity = Source.StartActivity("pull image");
        activity?.SetTag("nacelle.image", reference.ToString());
        var started = Stopwatch.GetTimestamp();

        var resolved = await registry.ResolveAsync(reference, credentials, cancellationToken).ConfigureAwait(false);

        // One failed layer cancels the others.
        using var failFast = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var downloadSlots = new SemaphoreSlim(Math.Max(1, options.MaxConcurrentDownloads));
        // A layer blob no image here has starts downloading now, beside the storing of the manifest and the config's
        // download (the config names the layers' snapshots, so the unpack waits for it); one that turns out unpacked
        // already, or being unpacked by another pull, stops its download unread.
        var known = KnownBlobs();
        using var blocks = new PullBlocks(SegmentBytes); // the download pipes' memory, gone with this pull
        var downloads = resolved.Layers
            .Select(l => known.Contains(l.Digest) || content.Exists(l.Digest) ? null : StartDownload(reference, credentials, l, downloadSlots, blocks, failFast.Token))
            .ToArray();
        var layerTasks = new List<Task<Snapshot>>(resolved.Layers.Count);
        Task manifestStored = Task.CompletedTask;
        byte[] configBytes;
        ImageConfig config;
        IReadOnlyList<string> chains;
        try
        {
            manifestStored = content.PutAsync(resolved.ManifestDigest, resolved.ManifestBytes, failFast.Token);
            configBytes = await DownloadConfigAsync(reference, credentials, resolved.Config, failFast.Token).ConfigureAwait(false);
            await manifestStored.ConfigureAwait(false);
            config = ImageConfig.Parse(configBytes);
            if (config.DiffIds.Count != resolved.Layers.Count)
            {
                throw NacelleException.InvalidArgument(
                    $"{reference}: the manifest lists {resolved.Layers.Count} layers but the image config lists {config.DiffIds.Count} diff ids");
            }

            chains = Digests.ChainIds(config.DiffIds);
            Task<Snapshot>? parent = null;
            for (var i = 0; i < resolved.Layers.Count; i++)
            {
                var task = LayerAsync(reference, credentials, resolved.Layers[i], chains[i], i == 0 ? null : chains[i - 1], config.DiffIds[i],
                    parent, downloadSlots, blocks, failFast, downloads[i]);
                layerTasks.Add(task);
                parent = task;
            }

            await Task.WhenAll(layerTasks).ConfigureAwait(false);
            await Ended(downloads.Where(d => d is not null).Select(d => d!.Done)).ConfigureAwait(false); // the abandoned ones
        }
        catch
        {
            await failFast.CancelAsync().ConfigureAwait(false);
            // Every download and write of this pull has ended (and given its slot back) before the pull answers.
            await Ended(downloads.Where(d => d is not null).Select(d => d!.Done).Concat(layerTasks).Append(manifestStored)).ConfigureAwait(false);
            // Report the first real failure, not the cancellations it caused.
            var first = layerTasks.Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException!).FirstOrDefault();
            if (first is not null && first is not OperationCanceledException)
            {
                throw first;
            }

            throw;
        }

        var layers = resolved.Layers.Select((d, i) => new LayerRecord(i, config.DiffIds[i], chains[i], d.Digest, d.Size)).ToList();
        var repoTags = reference.Tag is not null ? new[] { $"{reference.Name}:{reference.Tag}" } : [];
        var record = new ImageRecord(
            Id: resolved.Config.Digest,
            ManifestDigest: resolved.ManifestDigest,
            Size: resolved.Config.Size + resolved.Layers.Sum(l => l.Size),
            User: config.User ?? string.Empty,
            Pinned: false,
            PulledAt: DateTimeOffset.UtcNow,
            Config: configBytes,
            RepoTags: repoTags,
            RepoDigests: [reference.WithDigest(resolved.TopDigest)],
            Layers: layers);
        var blobs = new List<string> { resolved.ManifestDigest, resolved.Config.Digest };
        if (resolved.TopDigest != resolved.ManifestDigest)
        {
            blobs.Add(resolved.TopDigest);
        }

        images.Save(record, blobs);
        LogPulled(logger, reference.ToString(), record.Id, layers.Count, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        return images.Get(record.Id)!;
    }

    private async Task<Snapshot> LayerAsync(
        ImageReference reference, RegistryCredentials? credentials, Descriptor layer, string chainId, string? parentChainId, string diffId,
        Task<Snapshot>? parent, SemaphoreSlim downloadSlots, PullBlocks blocks, CancellationTokenSource failFast, LayerDownload? started)
    {
        var cancellationToken = failFast.Token;
        try
        {
            if (snapshots.Find(chainId) is { } existing)
            {
                return existing; // unpacked before (this image or another sharing the layer): nothing to fetch
            }

            // Layers unpack in parallel; each commits after its parent (overlay order), see SnapshotStore.EnsureAsync.
            return await snapshots.EnsureAsync(chainId, parentChainId, diffId, async (directory, ct) =>
            {
                using var activity = Source.StartActivity("unpack layer");
                activity?.SetTag("nacelle.chain_id", chainId);
                activity?.SetTag("nacelle.blob", layer.Digest);
                if (content.Exists(layer.Digest))
                {
                    // A blob kept by an earlier version of the store: unpack it from there.
                    await using var blob = content.OpenRead(layer.Digest);
                    var stored = await LayerUnpacker.UnpackAsync(blob, directory, ct).ConfigureAwait(false);
                    return (stored.DiffId, stored.UncompressedSize);
                }

                // The download started with the pull, or one started now (it waits for a slot of its own).
                var download = Interlocked.Exchange(ref started, null) ?? StartDownload(reference, credentials, layer, downloadSlots, blocks, ct);
                var result = await UnpackDownloadAsync(download, directory, ct).ConfigureAwait(false);
                return (result.DiffId, result.UncompressedSize);
            }, cancellationToken, parent).ConfigureAwait(false);
        }
        catch
        {
            await failFast.CancelAsync().ConfigureAwait(false);
            throw;
        }
        finally
        {
            // Not needed (unpacked before, or by another pull meanwhile): stopped unread.
            Interlocked.Exchange(ref started, null)?.Abandon();
        }
    }

    /// <summary>Completes when every task has, whatever its outcome.</summary>
    private static Task Ended(IEnumerable<Task> tasks) =>
        Task.WhenAll(tasks.Select(t => t.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default)));

    /// <summary>The config blob, stored (digest and size verified, durable), as the store has it.</summary>
    private async Task<byte[]> DownloadConfigAsync(ImageReference reference, RegistryCredentials? credentials, Descriptor blob, CancellationToken cancellationToken)
    {
        await content.IngestAsync(blob.Digest, blob.Size,
            (stream, ct) => registry.DownloadBlobAsync(reference, blob, credentials, stream, ct), cancellationToken).ConfigureAwait(false);
        return await content.ReadAllAsync(blob.Digest, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The compressed digests of every layer of the images in the store.</summary>
    private HashSet<string> KnownBlobs() =>
        images.List().SelectMany(i => i.Layers).Select(l => l.BlobDigest).ToHashSet(StringComparer.Ordinal);

    /// <summary>
    /// A layer blob's download into a pipe, once a download slot is free: the bytes are hashed (blob digest) on their way
    /// from the socket to the pipe, whose reader is the unpacker (<see cref="UnpackDownloadAsync"/>); nothing of the
    /// compressed blob is written to disk. The pipe holds at most <see cref="PipeBytes"/> ahead of its reader.
    /// </summary>
    private LayerDownload StartDownload(ImageReference reference, RegistryCredentials? credentials, Descriptor layer, SemaphoreSlim slots,
        PullBlocks blocks, CancellationToken cancellationToken)
    {
        var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var pipe = new Pipe(new PipeOptions(pool: blocks, pauseWriterThreshold: PipeBytes, resumeWriterThreshold: PipeBytes / 2,
            minimumSegmentSize: SegmentBytes, useSynchronizationContext: false));
        var done = Task.Run(async () =>
        {
            try
            {
                await slots.WaitAsync(stop.Token).ConfigureAwait(false);
                try
                {
                    using var verifier = new BlobVerifier(pipe.Writer.AsStream(leaveOpen: true));
                    await registry.DownloadBlobAsync(reference, layer, credentials, verifier, stop.Token).ConfigureAwait(false);
                    verifier.Verify(layer.Digest, layer.Size);
                }
                finally
                {
                    slots.Release();
                }

                await pipe.Writer.CompleteAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                await pipe.Writer.CompleteAsync(e).ConfigureAwait(false);
                throw;
            }
        }, CancellationToken.None);
        return new LayerDownload(pipe, stop, done);
    }

    /// <summary>
    /// Unpacks a layer from its download in one pass (the tar is hashed, diff id, on its way to the files). The snapshot is
    /// committed by the caller only after both digests matched; a corrupt or truncated download fails the unpack, whose
    /// directory is then discarded.
    /// </summary>
    private static async Task<LayerUnpackResult> UnpackDownloadAsync(LayerDownload download, string directory, CancellationToken cancellationToken)
    {
        using var stop = download.Stop;
        await using var cancelled = cancellationToken.Register(download.Stop.Cancel);
        var unpack = Task.Run(async () =>
        {
            await using var tar = download.Pipe.Reader.AsStream();
            try
            {
                return await LayerUnpacker.UnpackAsync(tar, directory, stop.Token).ConfigureAwait(false);
            }
            catch
            {
                await stop.CancelAsync().ConfigureAwait(false); // a refused layer stops its download
                throw;
            }
        }, CancellationToken.None);

        Exception? downloadFailure = null;
        try
        {
            await download.Done.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            downloadFailure = e;
        }

        try
        {
            var result = await unpack.ConfigureAwait(false);
            if (downloadFailure is not null)
            {
                throw downloadFailure; // the unpacker stopped before the blob's end (bytes after the gzip stream)
            }

            return result;
        }
        catch when (downloadFailure is not null && downloadFailure is not OperationCanceledException)
        {
            // The download's own failure (digest, size, connection) explains the unpacker's.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(downloadFailure);
            throw;
        }
    }

    /// <summary>A layer blob's download under way: the pipe the unpacker reads, what stops it, and its end.</summary>
    private sealed record LayerDownload(Pipe Pipe, CancellationTokenSource Stop, Task Done)
    {
        /// <summary>Stops a download nobody will read; its failure (the cancellation) is observed here.</summary>
        public void Abandon()
        {
            Stop.Cancel();
            _ = Done.ContinueWith(t =>
            {
                _ = t.Exception;
                Stop.Dispose();
                Pipe.Reader.Complete();
            }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    // How far the download may run ahead of the unpacker.
    private const int PipeBytes = 8 << 20;

    /// <summary>The download pipes' segment size.</summary>
    private const int SegmentBytes = 128 << 10;

    [LoggerMessage(EventId = 3100, Level = LogLevel.Information, Message = "pulled {Image} as {ImageId} ({Layers} layers) in {ElapsedMs:F0} ms")]
    private static partial void LogPulled(ILogger logger, string image, string imageId, int layers, double elapsedMs);
}
