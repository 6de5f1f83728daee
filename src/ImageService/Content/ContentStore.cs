using System.Collections.Concurrent;
using System.Security.Cryptography;
using Nacelle.Common;
using Nacelle.ContainerCore.Interop;
using Nacelle.ImageService.Snapshots;

namespace Nacelle.ImageService.Content;

/// <summary>
/// Blobs by digest under &lt;root&gt;/content/blobs/sha256/&lt;hex&gt;. A blob is written to a temp file under
/// content/ingest while its sha256 and size are checked, then renamed into place atomically, so a blob path either
/// does not exist or holds exactly the content its name promises. Concurrent ingests of one digest share one write.
/// </summary>
public sealed class ContentStore
{
    private readonly string _blobs;
    private readonly string _ingest;
    private readonly ConcurrentDictionary<string, Lazy<Task<string>>> _inFlight = new(StringComparer.Ordinal);

    // Disk usage of each blob (allocated blocks, one inode), stated once when it is stored or at start.
    private readonly Lock _usageLock = new();
    private readonly Dictionary<string, UsageNumbers> _usage = new(StringComparer.Ordinal);
    private UsageNumbers _total;

    public ContentStore(string root)
    {
        _blobs = Path.Combine(root, "content", "blobs", "sha256");
        _ingest = Path.Combine(root, "content", "ingest");
        Directory.CreateDirectory(_blobs);
        Directory.CreateDirectory(_ingest);

        // Anything left in ingest is from a write that never completed (crash): it was never a blob.
        foreach (var leftover in Directory.EnumerateFiles(_ingest))
        {
            File.Delete(leftover);
        }

        foreach (var digest in List())
        {
            Account(digest);
        }
    }

    public string BlobPath(string digest) => Path.Combine(_blobs, Digests.Hex(digest));

    public bool Exists(string digest) => File.Exists(BlobPath(digest));

    /// <summary>
    /// Makes sure the blob is stored: when absent, <paramref name="write"/> streams it into a temp file, which is then
    /// verified against <paramref name="digest"/> and <paramref name="expectedSize"/> (negative: size unknown) and renamed
    /// into place. A mismatch or a failed write leaves nothing behind. Returns the blob's path.
    /// The caller whose write it is waits for that write's end, even once cancelled: when it returns or throws, nothing
    /// of the write is left in content/ingest (a failed pull cancels its other writes and answers only after them). A
    /// caller that joined another's write waits only for its own token, and writes the blob itself when the write it
    /// joined was cancelled by its owner.
    /// </summary>
    public async Task<string> IngestAsync(string digest, long expectedSize, Func<Stream, CancellationToken, Task> write, CancellationToken cancellationToken)
    {
        var path = BlobPath(digest);
        while (true)
        {
            if (File.Exists(path))
            {
                return path;
            }

            var mine = new Lazy<Task<string>>(() => WriteAsync(digest, path, expectedSize, write, cancellationToken));
            var ingest = _inFlight.GetOrAdd(digest, mine);
            if (ReferenceEquals(ingest, mine))
            {
                try
                {
                    return await ingest.Value.ConfigureAwait(false);
                }
                finally
                {
                    _inFlight.TryRemove(new KeyValuePair<string, Lazy<Task<string>>>(digest, ingest));
                }
            }

            try
            {
                return await ingest.Value.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // The write joined was cancelled by its owner, not by this caller: it ended (or is ending) with its temp
                // file; make way for a write of this caller's own.
                _inFlight.TryRemove(new KeyValuePair<string, Lazy<Task<string>>>(digest, ingest));
            }
        }
    }

    /// <summary>Stores small content already in memory (manifests, configs) after checking its digest.</summary>
    public Task<string> PutAsync(string digest, ReadOnlyMemory<byte> content, CancellationToken cancellationToken) =>
        IngestAsync(digest, content.Length, (stream, ct) => stream.WriteAsync(content, ct).AsTask(), cancellationToken);

    public async Task<byte[]> ReadAllAsync(string digest, CancellationToken cancellationToken)
    {
        var path = BlobPath(digest);
        if (!File.Exists(path))
        {
            throw NacelleException.NotFound($"blob {digest} is not in the content store");
        }

        return await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
    }

    public Stream OpenRead(string digest) =>
        new FileStream(BlobPath(digest), FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);

    public void Delete(string digest)
    {
        var path = BlobPath(digest);
        if (File.Exists(path))
        {
            File.Delete(path);
        }

        lock (_usageLock)
        {
            if (_usage.Remove(digest, out var usage))
            {
                _total -= usage;
            }
        }
    }

    /// <summary>Digests of every stored blob.</summary>
    public IEnumerable<string> List() =>
        Directory.EnumerateFiles(_blobs).Select(p => "sha256:" + Path.GetFileName(p)).Where(Digests.IsValid);

    /// <summary>Disk used by the stored blobs (allocated bytes, one inode each), kept in memory: no walk.</summary>
    public UsageNumbers Usage()
    {
        lock (_usageLock)
        {
            return _total;
        }
    }

    private void Account(string digest)
    {
        if (DirectoryCalls.Status(BlobPath(digest)) is not { } inode)
        {
            return;
        }

        var usage = new UsageNumbers((long)inode.Blocks * 512, 1);
        lock (_usageLock)
        {
            if (_usage.TryGetValue(digest, out var old))
            {
                _total -= old;
            }

            _usage[digest] = usage;
            _total += usage;
        }
    }

    private async Task<string> WriteAsync(string digest, string path, long expectedSize, Func<Stream, CancellationToken, Task> write, CancellationToken cancellationToken)
    {
        var temp = Path.Combine(_ingest, $"{Digests.Hex(digest)[..16]}-{Guid.NewGuid():N}");
        try
        {
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
            {
                using var verifying = new BlobVerifier(file);
                await write(verifying, cancellationToken).ConfigureAwait(false);
                await file.FlushAsync(cancellationToken).ConfigureAwait(false);
                verifying.Verify(digest, expectedSize);
                file.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: true);
            Account(digest);
            return path;
        }
        catch (Exception e)
        {
            File.Delete(temp);
            if (e is not OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                // A cancelled read can surface as the transport's error: say what it was, for those who joined this write.
                throw new OperationCanceledException($"the write of blob {digest} was cancelled", e, cancellationToken);
            }

            throw;
        }
    }
}
