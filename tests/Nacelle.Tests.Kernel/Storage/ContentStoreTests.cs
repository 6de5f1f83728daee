using System.Text;
using Nacelle.Common;
using Nacelle.ImageService.Content;

namespace Nacelle.Tests.Kernel.Storage;

public sealed class ContentStoreTests : IDisposable
{
    private readonly TempRoot _root = new();

    public void Dispose() => _root.Dispose();

    private static Func<Stream, CancellationToken, Task> Writes(byte[] bytes) => (s, ct) => s.WriteAsync(bytes, ct).AsTask();

    private string[] Leftovers() =>
        Directory.GetFiles(Path.Combine(_root.Path, "content"), "*", SearchOption.AllDirectories);

    [Fact]
    public async Task AVerifiedBlobIsStoredUnderItsDigest()
    {
        var store = new ContentStore(_root.Path);
        var bytes = Encoding.UTF8.GetBytes("layer bytes");
        var digest = Digests.Of(bytes);

        var path = await store.IngestAsync(digest, bytes.Length, Writes(bytes), CancellationToken.None);

        Assert.Equal(Path.Combine(_root.Path, "content/blobs/sha256", digest[7..]), path);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(path));
        Assert.True(store.Exists(digest));
        Assert.Equal([digest], store.List());
        Assert.Equal(Du.Of(path), store.Usage());
    }

    [Fact]
    public async Task AWrongDigestLeavesNothingBehind()
    {
        var store = new ContentStore(_root.Path);
        var claimed = Digests.Of("what the registry promised"u8);

        var e = await Assert.ThrowsAsync<NacelleException>(() =>
            store.IngestAsync(claimed, 4, Writes("evil"u8.ToArray()), CancellationToken.None));

        Assert.Contains($"blob {claimed}: content has digest {Digests.Of("evil"u8)}", e.Message);
        Assert.False(store.Exists(claimed));
        Assert.Empty(Leftovers());
    }

    [Fact]
    public async Task ATruncatedBodyLeavesNothingBehind()
    {
        var store = new ContentStore(_root.Path);
        var full = new byte[10_000];
        Random.Shared.NextBytes(full);
        var digest = Digests.Of(full);

        var e = await Assert.ThrowsAsync<NacelleException>(() =>
            store.IngestAsync(digest, full.Length, Writes(full[..6000]), CancellationToken.None));

        Assert.Contains("received 6000 bytes, expected 10000", e.Message);
        Assert.Empty(Leftovers());
    }

    [Fact]
    public async Task AFailingWriterLeavesNothingBehind()
    {
        var store = new ContentStore(_root.Path);
        var digest = Digests.Of("x"u8);

        await Assert.ThrowsAsync<IOException>(() => store.IngestAsync(digest, 1, async (s, ct) =>
        {
            await s.WriteAsync("partial"u8.ToArray(), ct);
            throw new IOException("connection reset");
        }, CancellationToken.None));

        Assert.Empty(Leftovers());
    }

    [Fact]
    public async Task ConcurrentIngestsOfOneDigestDownloadOnce()
    {
        var store = new ContentStore(_root.Path);
        var bytes = new byte[1 << 20];
        Random.Shared.NextBytes(bytes);
        var digest = Digests.Of(bytes);
        var writes = 0;
        var gate = new TaskCompletionSource();

        async Task Download(Stream s, CancellationToken ct)
        {
            Interlocked.Increment(ref writes);
            await gate.Task; // hold the first download open while the others arrive
            await s.WriteAsync(bytes, ct);
        }

        var pulls = Enumerable.Range(0, 8).Select(_ => store.IngestAsync(digest, bytes.Length, Download, CancellationToken.None)).ToArray();
        await Task.Delay(100);
        gate.SetResult();
        var paths = await Task.WhenAll(pulls);

        Assert.Equal(1, writes);
        Assert.Single(paths.Distinct());
    }

    /// <summary>A failed pull cancels its other writes (the manifest's, the config's) and answers once they have ended:
    /// an ingest whose write notices the cancellation late must not answer before that write has ended and left nothing
    /// (the CI once found a pull's ingest file still there after the pull had failed).</summary>
    [Fact]
    public async Task ACancelledIngestAnswersOnlyOnceItsWriteHasEndedAndLeftNothing()
    {
        var store = new ContentStore(_root.Path);
        var digest = Digests.Of("blob"u8);
        using var cancel = new CancellationTokenSource();
        var writing = new TaskCompletionSource();
        var letGo = new TaskCompletionSource();
        var ingest = store.IngestAsync(digest, 4, async (s, ct) =>
        {
            await s.WriteAsync("bl"u8.ToArray(), CancellationToken.None);
            writing.SetResult();
            await letGo.Task; // a step that does not watch the token (an fsync, a read under way)
            ct.ThrowIfCancellationRequested();
        }, cancel.Token);
        await writing.Task;

        await cancel.CancelAsync();
        await Task.Delay(200);

        Assert.False(ingest.IsCompleted, "the cancelled ingest answered while its write was still under way");
        Assert.Single(Leftovers());
        letGo.SetResult();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => ingest);
        Assert.Empty(Leftovers());
        Assert.False(store.Exists(digest));
    }

    /// <summary>Two pulls of one blob share its write; the one that started it giving up must not fail the other.</summary>
    [Fact]
    public async Task AnIngestThatJoinedAWriteCancelledByItsOwnerWritesTheBlobItself()
    {
        var store = new ContentStore(_root.Path);
        var bytes = "the blob both pulls want"u8.ToArray();
        var digest = Digests.Of(bytes);
        using var cancel = new CancellationTokenSource();
        var writing = new TaskCompletionSource();
        var joinerWrites = 0;
        var owner = store.IngestAsync(digest, bytes.Length, async (s, ct) =>
        {
            writing.SetResult();
            await Task.Delay(Timeout.Infinite, ct);
        }, cancel.Token);
        await writing.Task;
        var joiner = store.IngestAsync(digest, bytes.Length, (s, ct) =>
        {
            Interlocked.Increment(ref joinerWrites);
            return s.WriteAsync(bytes, ct).AsTask();
        }, CancellationToken.None);
        Assert.Equal(0, Volatile.Read(ref joinerWrites)); // joined, not a write of its own yet

        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => owner);
        var path = await joiner;
        Assert.Equal(1, joinerWrites);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(path));
        Assert.Equal([path], Leftovers());
    }

    [Fact]
    public void DigestsThatCouldEscapeAreRefused()
    {
        var store = new ContentStore(_root.Path);
        foreach (var bad in new[] { "sha256:../../etc/passwd", "sha256:ABC", "md5:0123", "sha256:" + new string('a', 63) + "/" })
        {
            var e = Assert.Throws<NacelleException>(() => store.BlobPath(bad));
            Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        }
    }

    [Fact]
    public void ChainIdsFollowTheOciRule()
    {
        var a = "sha256:" + new string('a', 64);
        var b = "sha256:" + new string('b', 64);
        var chains = Digests.ChainIds([a, b]);
        Assert.Equal(a, chains[0]);
        Assert.Equal(Digests.Of(Encoding.ASCII.GetBytes($"{a} {b}")), chains[1]);
    }
}
