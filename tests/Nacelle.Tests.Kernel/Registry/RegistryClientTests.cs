using System.Security.Cryptography;
using Nacelle.Common;
using Nacelle.ImageService.Manifests;
using Nacelle.ImageService.References;
using Nacelle.ImageService.Registry;
using Nacelle.Tests.Support.Registry;
using static Nacelle.Tests.Kernel.Registry.RegistryTestKit;

namespace Nacelle.Tests.Kernel.Registry;

/// <summary>The registry client against a real docker-registry on plain loopback HTTP (no configuration needed).</summary>
public sealed class RegistryClientTests
{
    [Fact]
    public async Task Resolves_and_downloads_a_single_platform_oci_image()
    {
        await using RegistryServer registry = await RegistryServer.StartAsync();
        using OciPusher pusher = registry.CreatePusher();
        PushedImage pushed = await TestImages.PushBusyboxAsync(pusher, "nacelle/busybox", "1.0", user: "1000");
        var logger = new CapturingLogger();
        using RegistryClient client = Client(logger);

        ImageReference reference = Ref(registry.Host, "nacelle/busybox", "1.0");
        ResolvedImage resolved = await client.ResolveAsync(reference, null, Timeout());

        Assert.Equal(pushed.ManifestDigest, resolved.TopDigest);
        Assert.Equal(pushed.ManifestDigest, resolved.ManifestDigest);
        Assert.Equal(MediaTypes.OciManifest, resolved.ManifestMediaType);
        Assert.Equal(pushed.ManifestBytes, resolved.ManifestBytes);
        Assert.Equal(pushed.ConfigDigest, resolved.Config.Digest);
        Assert.Equal(MediaTypes.OciConfig, resolved.Config.MediaType);
        Assert.Equal(pushed.LayerDigests, resolved.Layers.Select(l => l.Digest));
        Assert.Equal(MediaTypes.OciLayerTarGzip, Assert.Single(resolved.Layers).MediaType);

        byte[] config = await DownloadAsync(client, reference, resolved.Config);
        Assert.Equal(pushed.ConfigBytes, config);
        ImageConfig parsed = ImageConfig.Parse(config);
        Assert.Equal(pushed.DiffIds, parsed.DiffIds);
        Assert.Equal("1000", parsed.User);
        Assert.Equal(["/bin/sh"], parsed.Cmd);

        byte[] layer = await DownloadAsync(client, reference, resolved.Layers[0]);
        Assert.Equal(pushed.LayerDigests[0], Sha256(layer));
        Assert.Contains(logger.Lines, l => l.Contains("plain HTTP", StringComparison.Ordinal));

        // By digest too, and the repo digest form names the top digest.
        ResolvedImage byDigest = await client.ResolveAsync(Ref(registry.Host, "nacelle/busybox", pushed.ManifestDigest), null, Timeout());
        Assert.Equal(pushed.ManifestDigest, byDigest.ManifestDigest);
        Assert.Equal($"{registry.Host}/nacelle/busybox@{pushed.ManifestDigest}", reference.WithDigest(resolved.TopDigest));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Index_and_manifest_list_choose_this_nodes_platform(bool dockerMediaTypes)
    {
        await using RegistryServer registry = await RegistryServer.StartAsync();
        using OciPusher pusher = registry.CreatePusher();
        PushedIndex pushed = await TestImages.PushMultiPlatformAsync(pusher, "nacelle/multi", "v1", dockerMediaTypes);
        using RegistryClient client = Client(new CapturingLogger());

        ImageReference reference = Ref(registry.Host, "nacelle/multi", "v1");
        ResolvedImage resolved = await client.ResolveAsync(reference, null, Timeout());

        Assert.Equal(pushed.IndexDigest, resolved.TopDigest);
        Assert.Equal("amd64", Platform.Current.Architecture); // these machines are x86-64: the index must yield the amd64 busybox
        Assert.Equal(pushed.Amd64.ManifestDigest, resolved.ManifestDigest);
        Assert.Equal(dockerMediaTypes ? MediaTypes.DockerManifest : MediaTypes.OciManifest, resolved.ManifestMediaType);
        Assert.Equal(dockerMediaTypes ? MediaTypes.DockerConfig : MediaTypes.OciConfig, resolved.Config.MediaType);
        Assert.Equal(dockerMediaTypes ? MediaTypes.DockerLayerTarGzip : MediaTypes.OciLayerTarGzip, Assert.Single(resolved.Layers).MediaType);
        byte[] layer = await DownloadAsync(client, reference, resolved.Layers[0]);
        Assert.Equal(pushed.Amd64.LayerDigests[0], Sha256(layer));

        // The same index on an arm64 node picks the arm64/v8 manifest (arm64 without variant counts as v8).
        using RegistryClient arm = Client(new CapturingLogger(), platform: new Platform("linux", "arm64", null));
        ResolvedImage armResolved = await arm.ResolveAsync(reference, null, Timeout());
        Assert.Equal(pushed.Arm64.ManifestDigest, armResolved.ManifestDigest);

        // No s390x manifest: NotFound naming the platform and what is available.
        using RegistryClient s390 = Client(new CapturingLogger(), platform: new Platform("linux", "s390x", null));
        var ex = await Assert.ThrowsAsync<NacelleException>(() => s390.ResolveAsync(reference, null, Timeout()));
        Assert.Equal(ErrorKind.NotFound, ex.Kind);
        Assert.Contains("linux/s390x", ex.Message);
        Assert.Contains("linux/amd64", ex.Message);
    }

    [Fact]
    public async Task Gzip_zstd_and_plain_layers_come_through_with_their_media_types()
    {
        await using RegistryServer registry = await RegistryServer.StartAsync();
        using OciPusher pusher = registry.CreatePusher();
        TestLayer gzip = TestImages.BusyboxLayer(LayerCompression.Gzip);
        TestLayer zstd = TestLayer.Create(TarBuilder.Build(t => t.File("zstd.txt", "zstd\n"u8.ToArray())), LayerCompression.Zstd);
        TestLayer plain = TestLayer.Create(TarBuilder.Build(t => t.File("plain.txt", "plain\n"u8.ToArray())), LayerCompression.None);
        PushedImage pushed = await TestImages.PushImageAsync(pusher, "nacelle/mixed", "v1", new TestImageSpec { Layers = [gzip, zstd, plain] });
        using RegistryClient client = Client(new CapturingLogger());

        ImageReference reference = Ref(registry.Host, "nacelle/mixed", "v1");
        ResolvedImage resolved = await client.ResolveAsync(reference, null, Timeout());

        Assert.Equal([MediaTypes.OciLayerTarGzip, MediaTypes.OciLayerTarZstd, MediaTypes.OciLayerTar], resolved.Layers.Select(l => l.MediaType));
        Assert.Equal([gzip.Digest, zstd.Digest, plain.Digest], resolved.Layers.Select(l => l.Digest));
        Assert.Equal("zstd", MediaTypes.LayerCompression(resolved.Layers[1].MediaType));
        byte[] zstdBlob = await DownloadAsync(client, reference, resolved.Layers[1]);
        Assert.Equal(zstd.Blob, zstdBlob);
        Assert.Equal(0xFD2FB528u, BitConverter.ToUInt32(zstdBlob, 0)); // the zstd frame magic
        Assert.Equal(pushed.DiffIds, ImageConfig.Parse(await DownloadAsync(client, reference, resolved.Config)).DiffIds);
    }

    [Fact]
    public async Task Whiteout_image_resolves_with_three_layers()
    {
        await using RegistryServer registry = await RegistryServer.StartAsync();
        using OciPusher pusher = registry.CreatePusher();
        PushedImage pushed = await TestImages.PushWhiteoutImageAsync(pusher, "nacelle/whiteouts");
        using RegistryClient client = Client(new CapturingLogger());

        ResolvedImage resolved = await client.ResolveAsync(Ref(registry.Host, "nacelle/whiteouts", "whiteouts"), null, Timeout());

        Assert.Equal(pushed.LayerDigests, resolved.Layers.Select(l => l.Digest));
        Assert.Equal(3, resolved.Layers.Count);
    }

    [Fact]
    public async Task The_100_MB_layer_streams_and_its_sha256_matches()
    {
        await using RegistryServer registry = await RegistryServer.StartAsync();
        using OciPusher pusher = registry.CreatePusher();
        PushedImage pushed = await TestImages.PushLargeLayerImageAsync(pusher, "nacelle/large");
        using RegistryClient client = Client(new CapturingLogger());

        ImageReference reference = Ref(registry.Host, "nacelle/large", "large");
        ResolvedImage resolved = await client.ResolveAsync(reference, null, Timeout());
        Descriptor big = resolved.Layers[1];
        Assert.True(big.Size >= 100L * 1024 * 1024, $"layer is only {big.Size} bytes");

        // Hash while streaming (nothing held in memory): the destination is a hashing sink.
        using var sink = new HashingSink();
        await client.DownloadBlobAsync(reference, big, null, sink, Timeout(300));
        Assert.Equal(big.Size, sink.Length);
        Assert.Equal(pushed.LayerDigests[1], sink.Digest());
    }

    [Fact]
    public async Task Unknown_tag_and_unknown_repository_are_NotFound()
    {
        await using RegistryServer registry = await RegistryServer.StartAsync();
        using OciPusher pusher = registry.CreatePusher();
        await TestImages.PushBusyboxAsync(pusher, "nacelle/busybox", "1.0");
        using RegistryClient client = Client(new CapturingLogger());

        var tag = await Assert.ThrowsAsync<NacelleException>(() => client.ResolveAsync(Ref(registry.Host, "nacelle/busybox", "nope"), null, Timeout()));
        Assert.Equal(ErrorKind.NotFound, tag.Kind);
        Assert.Contains("nacelle/busybox:nope", tag.Message);

        var repo = await Assert.ThrowsAsync<NacelleException>(() => client.ResolveAsync(Ref(registry.Host, "nacelle/missing", "1.0"), null, Timeout()));
        Assert.Equal(ErrorKind.NotFound, repo.Kind);

        var blob = await Assert.ThrowsAsync<NacelleException>(() => DownloadAsync(client, Ref(registry.Host, "nacelle/busybox", "1.0"),
            new Descriptor(MediaTypes.OciLayerTarGzip, "sha256:" + new string('a', 64), 10, [], null)));
        Assert.Equal(ErrorKind.NotFound, blob.Kind);
    }

    [Fact]
    public async Task Nothing_listening_is_Unavailable()
    {
        int port = RegistryServer.FreePort();
        using RegistryClient client = Client(new CapturingLogger(), new RegistryOptions { MaxAttempts = 2, InitialBackoff = TimeSpan.FromMilliseconds(10) });
        var ex = await Assert.ThrowsAsync<NacelleException>(() => client.ResolveAsync(Ref($"127.0.0.1:{port}", "a/b", "c"), null, Timeout()));
        Assert.Equal(ErrorKind.Unavailable, ex.Kind);
        Assert.Contains($"127.0.0.1:{port}", ex.Message);
    }

    private sealed class HashingSink : Stream
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private long _length;

        public string Digest() => "sha256:" + Convert.ToHexStringLower(_hash.GetCurrentHash());
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => _length;
        public override long Position { get => _length; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            _hash.AppendData(buffer);
            _length += buffer.Length;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                _hash.Dispose();
            base.Dispose(disposing);
        }
    }
}
