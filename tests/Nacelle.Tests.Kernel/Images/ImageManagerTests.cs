using Microsoft.Extensions.Logging.Abstractions;
using Nacelle.Common;
using Nacelle.Storage;
using Nacelle.ImageService;
using Nacelle.Tests.Kernel.Storage;
using Nacelle.Tests.Support.Registry;

namespace Nacelle.Tests.Kernel.Images;

/// <summary>The whole pull pipeline against a real registry on loopback, down to mounted root filesystems.</summary>
public sealed class ImageManagerTests : IAsyncLifetime
{
    private readonly TempRoot _root = new();
    private RegistryServer _registry = null!;
    private OciPusher _pusher = null!;
    private ImageManager _images = null!;

    public async ValueTask InitializeAsync()
    {
        _registry = await RegistryServer.StartAsync();
        _pusher = _registry.CreatePusher();
        _images = NewManager();
    }

    public async ValueTask DisposeAsync()
    {
        _images.Dispose();
        _pusher.Dispose();
        await _registry.DisposeAsync();
        _root.Dispose();
    }

    private ImageManager NewManager() =>
        new(new ImageServiceOptions { Root = _root.Path }, new MetadataDatabase(Path.Combine(_root.Path, "metadata.db")), NullLoggerFactory.Instance);

    private string Ref(string repository, string tag) => $"{_registry.Host}/{repository}:{tag}";

    private string[] Files(string sub) =>
        Directory.Exists(Path.Combine(_root.Path, sub)) ? Directory.GetFiles(Path.Combine(_root.Path, sub), "*", SearchOption.AllDirectories) : [];

    [Fact]
    public async Task WhiteoutsAndOpaqueDirectoriesShowInTheMountedRootfs()
    {
        var pushed = await TestImages.PushWhiteoutImageAsync(_pusher, "kernel/whiteouts");
        var image = await _images.PullAsync(Ref("kernel/whiteouts", "whiteouts"), null, CancellationToken.None);

        Assert.Equal(pushed.ConfigDigest, image.Id);
        Assert.Equal(pushed.DiffIds, image.Layers.Select(l => l.DiffId));
        var rootfs = _images.CreateRootfs("whiteouts", image.Id);
        _images.Rootfs.Mount("whiteouts");
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
            _images.Rootfs.Remove("whiteouts");
        }
    }

    [Fact]
    public async Task ZstdAndGzipLayersPullToTheSameImage()
    {
        var zstdPushed = await TestImages.PushBusyboxAsync(_pusher, "kernel/zstd", "z", LayerCompression.Zstd);
        var gzipPushed = await TestImages.PushBusyboxAsync(_pusher, "kernel/gzip", "g", LayerCompression.Gzip);
        Assert.NotEqual(zstdPushed.LayerDigests[0], gzipPushed.LayerDigests[0]);

        var zstd = await _images.PullAsync(Ref("kernel/zstd", "z"), null, CancellationToken.None);
        Assert.Equal(zstdPushed.LayerDigests[0], zstd.Layers[0].BlobDigest);
        Assert.Equal(zstdPushed.DiffIds[0], zstd.Layers[0].DiffId);

        // Same config, so the same image (id = config digest); its one snapshot serves both names.
        var gzip = await _images.PullAsync(Ref("kernel/gzip", "g"), null, CancellationToken.None);
        Assert.Equal(zstd.Id, gzip.Id);
        Assert.Equal([Ref("kernel/gzip", "g"), Ref("kernel/zstd", "z")], gzip.RepoTags);
        Assert.Single(Directory.GetDirectories(Path.Combine(_root.Path, "snapshots")));

        var rootfs = _images.CreateRootfs("zstd", Ref("kernel/zstd", "z"));
        _images.Rootfs.Mount("zstd");
        try
        {
            Assert.Equal(await File.ReadAllBytesAsync(TestImages.BusyboxBinary), await File.ReadAllBytesAsync(Path.Combine(rootfs.Path, "bin/busybox")));
        }
        finally
        {
            _images.Rootfs.Remove("zstd");
        }
    }

    [Fact]
    public async Task ConcurrentPullsOfOneImageAgree()
    {
        var pushed = await TestImages.PushWhiteoutImageAsync(_pusher, "kernel/concurrent", "c");
        var pulls = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => _images.PullAsync(Ref("kernel/concurrent", "c"), null, CancellationToken.None)));

        Assert.All(pulls, p => Assert.Equal(pushed.ConfigDigest, p.Id));
        Assert.Equal(3, Directory.GetDirectories(Path.Combine(_root.Path, "snapshots")).Length);
        Assert.Single(_images.List());
    }

    [Fact]
    public async Task RemovingUntagsFirstThenCollectsBlobsAndSnapshots()
    {
        await TestImages.PushBusyboxAsync(_pusher, "kernel/tags", "one");
        await TestImages.PushBusyboxAsync(_pusher, "kernel/tags", "two");
        var one = await _images.PullAsync(Ref("kernel/tags", "one"), null, CancellationToken.None);
        var two = await _images.PullAsync(Ref("kernel/tags", "two"), null, CancellationToken.None);
        Assert.Equal(one.Id, two.Id);
        Assert.Equal([Ref("kernel/tags", "one"), Ref("kernel/tags", "two")], _images.Find(one.Id)!.RepoTags);

        Assert.True(await _images.RemoveAsync(Ref("kernel/tags", "one"), CancellationToken.None));
        Assert.Equal([Ref("kernel/tags", "two")], _images.Find(one.Id)!.RepoTags); // untagged only
        Assert.NotEmpty(Files("snapshots"));

        Assert.True(await _images.RemoveAsync(Ref("kernel/tags", "two"), CancellationToken.None));
        Assert.Null(_images.Find(one.Id));
        Assert.Empty(Files("snapshots"));
        Assert.Empty(Files("content/blobs"));
        Assert.False(await _images.RemoveAsync(one.Id, CancellationToken.None)); // already gone: not an error
    }

    [Fact]
    public async Task SharedLayersStayWhileAnotherImageUsesThem()
    {
        await TestImages.PushBusyboxAsync(_pusher, "kernel/base", "b");
        await TestImages.PushWhiteoutImageAsync(_pusher, "kernel/derived", "d");
        var base_ = await _images.PullAsync(Ref("kernel/base", "b"), null, CancellationToken.None);
        var derived = await _images.PullAsync(Ref("kernel/derived", "d"), null, CancellationToken.None);
        Assert.Equal(base_.Layers[0].ChainId, derived.Layers[0].ChainId);

        await _images.RemoveAsync(derived.Id, CancellationToken.None);

        Assert.Single(Directory.GetDirectories(Path.Combine(_root.Path, "snapshots"))); // the busybox layer stays
        var rootfs = _images.CreateRootfs("base", base_.Id);
        _images.Rootfs.Mount("base");
        try
        {
            Assert.True(File.Exists(Path.Combine(rootfs.Path, "bin/sh")));
        }
        finally
        {
            _images.Rootfs.Remove("base");
        }
    }

    [Fact]
    public async Task AnImageInUseByARootfsKeepsItsSnapshots()
    {
        await TestImages.PushBusyboxAsync(_pusher, "kernel/inuse", "u");
        var image = await _images.PullAsync(Ref("kernel/inuse", "u"), null, CancellationToken.None);
        _images.CreateRootfs("user", image.Id);

        await _images.RemoveAsync(image.Id, CancellationToken.None);

        Assert.Null(_images.Find(image.Id));
        Assert.Single(Directory.GetDirectories(Path.Combine(_root.Path, "snapshots")));
        _images.Rootfs.Mount("user");
        _images.Rootfs.Remove("user");
    }

    [Fact]
    public async Task ACorruptBlobFailsThePullAndLeavesTheStoreUnchanged()
    {
        var pushed = await TestImages.PushBusyboxAsync(_pusher, "kernel/corrupt", "c");
        // Flip bytes of the layer inside the registry's own storage: it will serve them under the old digest.
        var hex = pushed.LayerDigests[0][7..];
        var data = Path.Combine(_registry.Directory, "data/docker/registry/v2/blobs/sha256", hex[..2], hex, "data");
        Assert.True(File.Exists(data), $"registry blob file not found at {data}");
        var bytes = await File.ReadAllBytesAsync(data);
        bytes[bytes.Length / 2] ^= 0xFF;
        await File.WriteAllBytesAsync(data, bytes);

        var e = await Assert.ThrowsAsync<NacelleException>(() => _images.PullAsync(Ref("kernel/corrupt", "c"), null, CancellationToken.None));

        Assert.Contains(pushed.LayerDigests[0], e.Message);
        Assert.Empty(_images.List());
        Assert.Empty(Directory.GetDirectories(Path.Combine(_root.Path, "snapshots")));
        Assert.False(File.Exists(Path.Combine(_root.Path, "content/blobs/sha256", hex)));
        Assert.Empty(Files("content/ingest"));
    }

    [Fact]
    public async Task AMaliciousLayerFailsThePullWithoutWritingOutside()
    {
        var sentinel = Path.Combine(_root.Path, "escaped");
        var evil = TarBuilder.Build(t => t.File("../../escaped", "owned\n"u8.ToArray()));
        await TestImages.PushImageAsync(_pusher, "kernel/evil", "e", new TestImageSpec { Layers = [TestLayer.Create(evil)] });

        var e = await Assert.ThrowsAsync<NacelleException>(() => _images.PullAsync(Ref("kernel/evil", "e"), null, CancellationToken.None));

        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.False(File.Exists(sentinel));
        Assert.Empty(_images.List());
        Assert.Empty(Directory.GetDirectories(Path.Combine(_root.Path, "snapshots")));
    }

    [Fact]
    public async Task TheStoreSurvivesARestart()
    {
        await TestImages.PushBusyboxAsync(_pusher, "kernel/restart", "r");
        var image = await _images.PullAsync(Ref("kernel/restart", "r"), null, CancellationToken.None);
        _images.Dispose();

        _images = NewManager();
        var again = _images.Find(Ref("kernel/restart", "r"));
        Assert.NotNull(again);
        Assert.Equal(image.Id, again.Id);
        Assert.Equal(image.Layers, again.Layers);
        Assert.Equal(image.Id, _images.Find(image.Id[7..])!.Id);       // bare hex id
        Assert.Equal(image.Id, _images.Find(image.Id[7..19])!.Id);     // unique 12-digit prefix
        Assert.Equal(image.Id, _images.Find(image.RepoDigests[0])!.Id); // repo digest
    }
}
