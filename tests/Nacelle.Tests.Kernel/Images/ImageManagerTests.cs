using Nacelle.Common;
using Nacelle.Storage;
using Nacelle.ImageService;
using Nacelle.Tests.Kernel.Storage;
using Nacelle.Tests.Support.Registry;

namespace Nacelle.Tests.Kernel.Images;

/// <summary>The whole pull pipeline against a real registry on loopback, down to mounted root filesystems.</summary>
public sealed class ImageManagerTests : RegistryImageTest
{
    private string[] Files(string sub) =>
        Directory.Exists(Path.Combine(Root.Path, sub)) ? Directory.GetFiles(Path.Combine(Root.Path, sub), "*", SearchOption.AllDirectories) : [];

    [Fact]
    public async Task WhiteoutsAndOpaqueDirectoriesShowInTheMountedRootfs()
    {
        var pushed = await TestImages.PushWhiteoutImageAsync(Pusher, "kernel/whiteouts");
        var image = await Images.PullAsync(Ref("kernel/whiteouts", "whiteouts"), null, CancellationToken.None);

        Assert.Equal(pushed.ConfigDigest, image.Id);
        Assert.Equal(pushed.DiffIds, image.Layers.Select(l => l.DiffId));
        var rootfs = Images.CreateRootfs("whiteouts", image.Id);
        Images.Rootfs.Mount("whiteouts");
        try
        {
            Assert.True(File.Exists(Path.Combine(rootfs.Path, "bin/busybox")));
            Assert.Equal("keep\n", await File.ReadAllTextAsync(Path.Combine(rootfs.Path, "data/keep")));
            Assert.Equal("added\n", await File.ReadAllTextAsync(Path.Combine(rootfs.Path, "data/added")));
            Assert.False(File.Exists(Path.Combine(rootfs.Path, "data/remove-me")));      // whited out
            Assert.False(File.Exists(Path.Combine(rootfs.Path, "opaque/old")));          // hidden by the opaque dir
            Assert.False(Directory.Exists(Path.Combine(rootfs.Path, "opaque/olddir")));
            Assert.Equal("new\n", await File.ReadAllTextAsync(Path.Combine(rootfs.Path, "opaque/new")));
        }
        finally
        {
            await Images.Rootfs.Remove("whiteouts");
        }
    }

    [Fact]
    public async Task ZstdAndGzipLayersPullToTheSameImage()
    {
        var zstdPushed = await TestImages.PushBusyboxAsync(Pusher, "kernel/zstd", "z", LayerCompression.Zstd);
        var gzipPushed = await TestImages.PushBusyboxAsync(Pusher, "kernel/gzip", "g", LayerCompression.Gzip);
        Assert.NotEqual(zstdPushed.LayerDigests[0], gzipPushed.LayerDigests[0]);

        var zstd = await Images.PullAsync(Ref("kernel/zstd", "z"), null, CancellationToken.None);
        Assert.Equal(zstdPushed.LayerDigests[0], zstd.Layers[0].BlobDigest);
        Assert.Equal(zstdPushed.DiffIds[0], zstd.Layers[0].DiffId);

        // Same config, so the same image (id = config digest); its one snapshot serves both names.
        var gzip = await Images.PullAsync(Ref("kernel/gzip", "g"), null, CancellationToken.None);
        Assert.Equal(zstd.Id, gzip.Id);
        Assert.Equal([Ref("kernel/gzip", "g"), Ref("kernel/zstd", "z")], gzip.RepoTags);
        Assert.Single(Directory.GetDirectories(Path.Combine(Root.Path, "snapshots")));

        var rootfs = Images.CreateRootfs("zstd", Ref("kernel/zstd", "z"));
        Images.Rootfs.Mount("zstd");
        try
        {
            Assert.Equal(await File.ReadAllBytesAsync(TestImages.BusyboxBinary), await File.ReadAllBytesAsync(Path.Combine(rootfs.Path, "bin/busybox")));
        }
        finally
        {
            await Images.Rootfs.Remove("zstd");
        }
    }

    [Fact]
    public async Task ConcurrentPullsOfOneImageAgree()
    {
        var pushed = await TestImages.PushWhiteoutImageAsync(Pusher, "kernel/concurrent", "c");
        var pulls = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Images.PullAsync(Ref("kernel/concurrent", "c"), null, CancellationToken.None)));

        Assert.All(pulls, p => Assert.Equal(pushed.ConfigDigest, p.Id));
        Assert.Equal(3, Directory.GetDirectories(Path.Combine(Root.Path, "snapshots")).Length);
        Assert.Single(Images.List());
    }

    [Fact]
    public async Task RemovingUntagsFirstThenCollectsBlobsAndSnapshots()
    {
        await TestImages.PushBusyboxAsync(Pusher, "kernel/tags", "one");
        await TestImages.PushBusyboxAsync(Pusher, "kernel/tags", "two");
        var one = await Images.PullAsync(Ref("kernel/tags", "one"), null, CancellationToken.None);
        var two = await Images.PullAsync(Ref("kernel/tags", "two"), null, CancellationToken.None);
        Assert.Equal(one.Id, two.Id);
        Assert.Equal([Ref("kernel/tags", "one"), Ref("kernel/tags", "two")], Images.Find(one.Id)!.RepoTags);

        Assert.True(await Images.RemoveAsync(Ref("kernel/tags", "one"), CancellationToken.None));
        Assert.Equal([Ref("kernel/tags", "two")], Images.Find(one.Id)!.RepoTags); // untagged only
        Assert.NotEmpty(Files("snapshots"));

        Assert.True(await Images.RemoveAsync(Ref("kernel/tags", "two"), CancellationToken.None));
        Assert.Null(Images.Find(one.Id));
        await Images.Collected; // blobs and snapshots go in the background
        Assert.Empty(Files("snapshots"));
        Assert.Empty(Files("content/blobs"));
        Assert.False(await Images.RemoveAsync(one.Id, CancellationToken.None)); // already gone: not an error
    }

    [Fact]
    public async Task SharedLayersStayWhileAnotherImageUsesThem()
    {
        await TestImages.PushBusyboxAsync(Pusher, "kernel/base", "b");
        await TestImages.PushWhiteoutImageAsync(Pusher, "kernel/derived", "d");
        var base_ = await Images.PullAsync(Ref("kernel/base", "b"), null, CancellationToken.None);
        var derived = await Images.PullAsync(Ref("kernel/derived", "d"), null, CancellationToken.None);
        Assert.Equal(base_.Layers[0].ChainId, derived.Layers[0].ChainId);

        await Images.RemoveAsync(derived.Id, CancellationToken.None);
        await Images.Collected;

        Assert.Single(Directory.GetDirectories(Path.Combine(Root.Path, "snapshots"))); // the busybox layer stays
        var rootfs = Images.CreateRootfs("base", base_.Id);
        Images.Rootfs.Mount("base");
        try
        {
            Assert.True(File.Exists(Path.Combine(rootfs.Path, "bin/sh")));
        }
        finally
        {
            await Images.Rootfs.Remove("base");
        }
    }

    [Fact]
    public async Task AnImageInUseByARootfsKeepsItsSnapshots()
    {
        await TestImages.PushBusyboxAsync(Pusher, "kernel/inuse", "u");
        var image = await Images.PullAsync(Ref("kernel/inuse", "u"), null, CancellationToken.None);
        Images.CreateRootfs("user", image.Id);

        await Images.RemoveAsync(image.Id, CancellationToken.None);
        await Images.Collected;

        Assert.Null(Images.Find(image.Id));
        Assert.Single(Directory.GetDirectories(Path.Combine(Root.Path, "snapshots")));
        Images.Rootfs.Mount("user");
        Images.RemoveRootfs("user");

        // The last user gone, its layers follow once its overlay is unmounted and deleted (in the background).
        await Images.Rootfs.Trash.Emptied;
        await Images.Collected;
        Assert.Empty(Directory.GetDirectories(Path.Combine(Root.Path, "snapshots")));
        Assert.Empty(Nacelle.ContainerCore.Interop.Mounts.MountPointsUnder(Root.Path));
    }

    [Fact]
    public async Task ACollectionCutShortByAStopRunsAtTheNextStart()
    {
        await TestImages.PushBusyboxAsync(Pusher, "kernel/cut", "c");
        var image = await Images.PullAsync(Ref("kernel/cut", "c"), null, CancellationToken.None);
        await Images.Collected;
        Images.Dispose();

        // A daemon killed right after RemoveImage committed: the image's records are gone, its files are not.
        var database = new MetadataDatabase(Path.Combine(Root.Path, "metadata.db"));
        new Nacelle.ImageService.Store.ImageStore(database).Remove(image.Id);
        Assert.NotEmpty(Files("snapshots"));

        Images = NewManager();
        await Images.Collected;
        Assert.Null(Images.Find(image.Id));
        Assert.Empty(Files("snapshots"));
        Assert.Empty(Files("content/blobs"));
    }

    [Fact]
    public async Task APullWhileAnImageIsRemovedKeepsTheLayersItShares()
    {
        // Two images sharing the busybox layer, one removed while the other is pulled, over and over: a collection never
        // runs while a pull does, so the pulled image always finds the layer it reused on disk.
        await TestImages.PushBusyboxAsync(Pusher, "kernel/churn-base", "b");
        await TestImages.PushWhiteoutImageAsync(Pusher, "kernel/churn-derived", "d");
        string[] names = [Ref("kernel/churn-base", "b"), Ref("kernel/churn-derived", "d")];
        await Images.PullAsync(names[0], null, CancellationToken.None);
        for (var i = 0; i < 6; i++)
        {
            var remove = Images.RemoveAsync(names[i % 2], CancellationToken.None);
            var pulled = await Images.PullAsync(names[(i + 1) % 2], null, CancellationToken.None);
            Assert.True(await remove);
            await Images.Collected;
            var rootfs = Images.CreateRootfs("churn", pulled.Id);
            Images.Rootfs.Mount("churn");
            Assert.True(File.Exists(Path.Combine(rootfs.Path, "bin/busybox")), $"round {i}: the pulled image lost its shared layer");
            Images.RemoveRootfs("churn");
            await Images.Rootfs.Trash.Emptied;
        }
    }

    [Fact]
    public async Task ACorruptBlobFailsThePullAndLeavesTheStoreUnchanged()
    {
        var pushed = await TestImages.PushBusyboxAsync(Pusher, "kernel/corrupt", "c");
        // Flip bytes of the layer inside the registry's own storage: it will serve them under the old digest.
        var hex = pushed.LayerDigests[0][7..];
        var data = Path.Combine(Registry.Directory, "data/docker/registry/v2/blobs/sha256", hex[..2], hex, "data");
        Assert.True(File.Exists(data), $"registry blob file not found at {data}");
        var bytes = await File.ReadAllBytesAsync(data);
        bytes[bytes.Length / 2] ^= 0xFF;
        await File.WriteAllBytesAsync(data, bytes);

        var e = await Assert.ThrowsAsync<NacelleException>(() => Images.PullAsync(Ref("kernel/corrupt", "c"), null, CancellationToken.None));

        Assert.Contains(pushed.LayerDigests[0], e.Message);
        Assert.Empty(Images.List());
        Assert.Empty(Directory.GetDirectories(Path.Combine(Root.Path, "snapshots")));
        Assert.False(File.Exists(Path.Combine(Root.Path, "content/blobs/sha256", hex)));
        Assert.Empty(Files("content/ingest"));
    }

    /// <summary>A layer no image here has downloads beside the config: a config that fails stops it, and nothing of
    /// the layer is left (no snapshot, no temp directory); the same pull then succeeds once the registry serves it right.</summary>
    [Fact]
    public async Task ACorruptConfigStopsTheLayerDownloadsStartedBesideIt()
    {
        var pushed = await TestImages.PushBusyboxAsync(Pusher, "kernel/bad-config", "c");
        var hex = pushed.ConfigDigest[7..];
        var data = Path.Combine(Registry.Directory, "data/docker/registry/v2/blobs/sha256", hex[..2], hex, "data");
        Assert.True(File.Exists(data), $"registry blob file not found at {data}");
        var good = await File.ReadAllBytesAsync(data);
        var bad = (byte[])good.Clone();
        bad[bad.Length / 2] ^= 0xFF;
        await File.WriteAllBytesAsync(data, bad);

        var e = await Assert.ThrowsAsync<NacelleException>(() => Images.PullAsync(Ref("kernel/bad-config", "c"), null, CancellationToken.None));

        Assert.Contains(pushed.ConfigDigest, e.Message);
        Assert.Empty(Images.List());
        Assert.Empty(Directory.GetDirectories(Path.Combine(Root.Path, "snapshots")));
        Assert.False(File.Exists(Path.Combine(Root.Path, "content/blobs/sha256", hex)));
        Assert.Empty(Files("content/ingest"));

        await File.WriteAllBytesAsync(data, good);
        var image = await Images.PullAsync(Ref("kernel/bad-config", "c"), null, CancellationToken.None);
        Assert.Equal(pushed.ConfigDigest, image.Id);
        Assert.Equal(pushed.Layers.Count, Directory.GetDirectories(Path.Combine(Root.Path, "snapshots")).Length);
    }

    [Fact]
    public async Task AMaliciousLayerFailsThePullWithoutWritingOutside()
    {
        var sentinel = Path.Combine(Root.Path, "escaped");
        var evil = TarBuilder.Build(t => t.File("../../escaped", "owned\n"u8.ToArray()));
        await TestImages.PushImageAsync(Pusher, "kernel/evil", "e", new TestImageSpec { Layers = [TestLayer.Create(evil)] });

        var e = await Assert.ThrowsAsync<NacelleException>(() => Images.PullAsync(Ref("kernel/evil", "e"), null, CancellationToken.None));

        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.False(File.Exists(sentinel));
        Assert.Empty(Images.List());
        Assert.Empty(Directory.GetDirectories(Path.Combine(Root.Path, "snapshots")));
    }

    [Fact]
    public async Task TheStoreSurvivesARestart()
    {
        await TestImages.PushBusyboxAsync(Pusher, "kernel/restart", "r");
        var image = await Images.PullAsync(Ref("kernel/restart", "r"), null, CancellationToken.None);
        Images.Dispose();

        Images = NewManager();
        var again = Images.Find(Ref("kernel/restart", "r"));
        Assert.NotNull(again);
        Assert.Equal(image.Id, again.Id);
        Assert.Equal(image.Layers, again.Layers);
        Assert.Equal(image.Id, Images.Find(image.Id[7..])!.Id);       // bare hex id
        Assert.Equal(image.Id, Images.Find(image.Id[7..19])!.Id);     // unique 12-digit prefix
        Assert.Equal(image.Id, Images.Find(image.RepoDigests[0])!.Id); // repo digest
    }

    [Fact]
    public async Task LayersUnpackedInParallelAreRecordedParentFirstAndNoLayerBlobIsKept()
    {
        var pushed = await TestImages.PushWhiteoutImageAsync(Pusher, "kernel/order", "o");
        var image = await Images.PullAsync(Ref("kernel/order", "o"), null, CancellationToken.None);

        // Snapshot ids are assigned at commit: a child's id above its parent's means it was recorded after it.
        var database = new MetadataDatabase(Path.Combine(Root.Path, "metadata.db"));
        var ids = image.Layers.Select(l => database.QueryStrings(
            "SELECT CAST(id AS TEXT) FROM snapshots WHERE chain_id = $c", ("$c", l.ChainId)).Single()).Select(long.Parse).ToList();
        Assert.Equal(ids.Order(), ids);

        // The layers streamed straight into the unpacker: only the manifest and the config are in the content store.
        Assert.Equal(new[] { pushed.ConfigDigest, pushed.ManifestDigest }.Order(), Files("content/blobs").Select(f => "sha256:" + Path.GetFileName(f)).Order());
    }

    [Fact]
    public async Task ALayerBlobKeptByAnEarlierStoreIsUnpackedFromThereNotDownloaded()
    {
        var pushed = await TestImages.PushBusyboxAsync(Pusher, "kernel/kept", "k");
        var store = new Nacelle.ImageService.Content.ContentStore(Root.Path);
        var layer = pushed.Layers[0];
        await store.IngestAsync(layer.Digest, layer.Size, (s, ct) => s.WriteAsync(layer.Blob, ct).AsTask(), CancellationToken.None);

        // The registry now serves garbage for that blob: only the kept copy can make the pull succeed.
        var hex = layer.Digest[7..];
        var data = Path.Combine(Registry.Directory, "data/docker/registry/v2/blobs/sha256", hex[..2], hex, "data");
        var bytes = await File.ReadAllBytesAsync(data);
        bytes[bytes.Length / 2] ^= 0xFF;
        await File.WriteAllBytesAsync(data, bytes);

        var image = await Images.PullAsync(Ref("kernel/kept", "k"), null, CancellationToken.None);
        Assert.Equal(pushed.DiffIds, image.Layers.Select(l => l.DiffId));
    }
}
