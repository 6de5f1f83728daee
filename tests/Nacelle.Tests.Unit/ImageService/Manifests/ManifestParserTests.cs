using System.Text;
using Nacelle.Common;
using Nacelle.ImageService.Manifests;

namespace Nacelle.Tests.Unit.ImageService.Manifests;

public sealed class ManifestParserTests
{
    private static string Digest(char c) => "sha256:" + new string(c, 64);

    private static Descriptor Entry(char c, string os, string arch, string? variant, string mediaType = MediaTypes.OciManifest) =>
        new(mediaType, Digest(c), 100, [], new Platform(os, arch, variant));

    private static readonly IReadOnlyList<Descriptor> Index =
    [
        Entry('1', "linux", "amd64", null),
        Entry('2', "linux", "arm64", "v8"),
        Entry('3', "linux", "arm", "v7"),
        Entry('4', "linux", "arm", "v6"),
        Entry('5', "windows", "amd64", null),
        Entry('6', "linux", "s390x", null),
        Entry('7', "unknown", "unknown", null),
    ];

    [Theory]
    [InlineData("linux", "amd64", null, '1')]
    [InlineData("linux", "arm64", "v8", '2')]
    [InlineData("linux", "arm64", null, '2')]
    [InlineData("linux", "arm", "v7", '3')]
    [InlineData("linux", "arm", null, '3')]
    [InlineData("linux", "arm", "v6", '4')]
    [InlineData("linux", "s390x", null, '6')]
    [InlineData("windows", "amd64", null, '5')]
    public void Selects_the_platform(string os, string arch, string? variant, char expected)
    {
        Descriptor? d = ManifestParser.SelectPlatform(Index, new Platform(os, arch, variant));
        Assert.Equal(Digest(expected), d?.Digest);
    }

    [Theory]
    [InlineData("linux", "ppc64le", null)]
    [InlineData("linux", "arm", "v5")]
    [InlineData("linux", "arm64", "v9")]
    [InlineData("freebsd", "amd64", null)]
    public void Nothing_fits(string os, string arch, string? variant) =>
        Assert.Null(ManifestParser.SelectPlatform(Index, new Platform(os, arch, variant)));

    [Fact]
    public void Arm_v8_node_runs_v7_when_no_v8_is_listed_and_prefers_the_highest_lower_variant()
    {
        IReadOnlyList<Descriptor> list = [Entry('a', "linux", "arm", "v5"), Entry('b', "linux", "arm", "v7"), Entry('c', "linux", "arm", "v6")];
        Assert.Equal(Digest('b'), ManifestParser.SelectPlatform(list, new Platform("linux", "arm", "v8"))?.Digest);
    }

    [Fact]
    public void Arm64_entries_without_variant_match_a_v8_node_and_exact_matches_win()
    {
        IReadOnlyList<Descriptor> list = [Entry('a', "linux", "arm64", null)];
        Assert.Equal(Digest('a'), ManifestParser.SelectPlatform(list, new Platform("linux", "arm64", "v8"))?.Digest);
        IReadOnlyList<Descriptor> two = [Entry('a', "linux", "amd64", "v3"), Entry('b', "linux", "amd64", null)];
        Assert.Equal(Digest('b'), ManifestParser.SelectPlatform(two, new Platform("linux", "amd64", null))?.Digest);
    }

    [Fact]
    public void Entries_without_platform_or_with_non_manifest_types_are_skipped()
    {
        IReadOnlyList<Descriptor> list =
        [
            new(MediaTypes.OciManifest, Digest('a'), 1, [], null),
            Entry('b', "linux", "amd64", null, "application/vnd.example.attestation+json"),
            Entry('c', "linux", "amd64", null, MediaTypes.DockerManifest),
        ];
        Assert.Equal(Digest('c'), ManifestParser.SelectPlatform(list, new Platform("linux", "amd64", null))?.Digest);
    }

    [Fact]
    public void Current_platform_is_linux()
    {
        Assert.Equal("linux", Platform.Current.Os);
        Assert.Equal(new Platform("linux", "arm64", "v8"), Platform.FromArchitecture(System.Runtime.InteropServices.Architecture.Arm64));
        Assert.Equal(new Platform("linux", "amd64", null), Platform.FromArchitecture(System.Runtime.InteropServices.Architecture.X64));
        Assert.Equal("linux/arm64/v8", new Platform("linux", "arm64", "v8").ToString());
    }

    [Theory]
    [InlineData(MediaTypes.OciManifest, true)]
    [InlineData(MediaTypes.OciIndex, true)]
    [InlineData(MediaTypes.DockerManifest, true)]
    [InlineData(MediaTypes.DockerManifestList, true)]
    [InlineData(MediaTypes.DockerSchema1Manifest, false)]
    [InlineData(MediaTypes.DockerSchema1SignedManifest, false)]
    [InlineData("application/vnd.example+json", false)]
    [InlineData(MediaTypes.OciConfig, false)]
    public void Manifest_media_types_are_accepted_or_refused_by_name(string mediaType, bool accepted)
    {
        if (accepted)
        {
            ManifestParser.EnsureAccepted(mediaType);
            return;
        }
        var ex = Assert.Throws<NacelleException>(() => ManifestParser.EnsureAccepted(mediaType));
        Assert.Equal(ErrorKind.FailedPrecondition, ex.Kind);
        Assert.Contains(mediaType, ex.Message);
    }

    [Theory]
    [InlineData(MediaTypes.OciLayerTar, "none")]
    [InlineData(MediaTypes.OciLayerTarGzip, "gzip")]
    [InlineData(MediaTypes.OciLayerTarZstd, "zstd")]
    [InlineData(MediaTypes.DockerLayerTarGzip, "gzip")]
    [InlineData(MediaTypes.DockerForeignLayerTarGzip, "gzip")]
    [InlineData(MediaTypes.OciLayerNondistributableTarZstd, "zstd")]
    [InlineData("application/vnd.oci.image.layer.v1.tar+bzip2", null)]
    [InlineData(MediaTypes.OciConfig, null)]
    public void Layer_compression_by_media_type(string mediaType, string? compression)
    {
        Assert.Equal(compression, MediaTypes.LayerCompression(mediaType));
        Assert.Equal(compression is not null, MediaTypes.IsLayer(mediaType));
    }

    [Theory]
    [InlineData(MediaTypes.OciManifest, """{"schemaVersion":2}""", MediaTypes.OciManifest)]
    [InlineData("application/json", """{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}""", MediaTypes.DockerManifestList)]
    [InlineData(null, """{"schemaVersion":2,"manifests":[]}""", MediaTypes.OciIndex)]
    [InlineData("text/plain", """{"schemaVersion":2,"config":{},"layers":[]}""", MediaTypes.OciManifest)]
    [InlineData(MediaTypes.DockerManifest + "; charset=utf-8", "{}", MediaTypes.DockerManifest)]
    public void Media_type_comes_from_the_header_then_the_document(string? contentType, string body, string expected) =>
        Assert.Equal(expected, ManifestParser.DetermineMediaType(contentType, Encoding.UTF8.GetBytes(body)));

    [Theory]
    [InlineData("application/json", """{"schemaVersion":1,"fsLayers":[]}""", MediaTypes.DockerSchema1Manifest)]
    [InlineData(MediaTypes.DockerSchema1SignedManifest, "{}", MediaTypes.DockerSchema1SignedManifest)]
    [InlineData("application/octet-stream", "not json", "application/octet-stream")]
    [InlineData("application/json", """{"schemaVersion":2,"mediaType":"application/vnd.x+json"}""", "application/vnd.x+json")]
    public void Refused_media_types_are_named(string contentType, string body, string named)
    {
        var ex = Assert.Throws<NacelleException>(() => ManifestParser.DetermineMediaType(contentType, Encoding.UTF8.GetBytes(body)));
        Assert.Equal(ErrorKind.FailedPrecondition, ex.Kind);
        Assert.Contains(named, ex.Message);
    }

    [Fact]
    public void Parses_a_manifest_and_an_index()
    {
        string manifest = $$"""
            {"schemaVersion":2,"mediaType":"{{MediaTypes.OciManifest}}",
             "config":{"mediaType":"{{MediaTypes.OciConfig}}","digest":"{{Digest('c')}}","size":123},
             "layers":[{"mediaType":"{{MediaTypes.OciLayerTarZstd}}","digest":"{{Digest('e')}}","size":456,"urls":["https://x/y"]}]}
            """;
        ImageManifest m = ManifestParser.ParseManifest(Encoding.UTF8.GetBytes(manifest), MediaTypes.OciManifest);
        Assert.Equal(Digest('c'), m.Config.Digest);
        Assert.Equal(123, m.Config.Size);
        Descriptor layer = Assert.Single(m.Layers);
        Assert.Equal(MediaTypes.OciLayerTarZstd, layer.MediaType);
        Assert.Equal(["https://x/y"], layer.Urls);

        string index = $$$"""
            {"schemaVersion":2,"manifests":[{"mediaType":"{{{MediaTypes.OciManifest}}}","digest":"{{{Digest('a')}}}","size":7,
              "platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]}
            """;
        Descriptor entry = Assert.Single(ManifestParser.ParseIndex(Encoding.UTF8.GetBytes(index)));
        Assert.Equal(new Platform("linux", "arm64", "v8"), entry.Platform);
    }

    [Theory]
    [InlineData("""{"schemaVersion":2,"layers":[]}""", "config")]
    [InlineData("""{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:zz","size":1},"layers":[]}""", "digest")]
    [InlineData("""{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc","size":-1},"layers":[]}""", "negative")]
    [InlineData("{", "JSON")]
    public void Malformed_manifests_are_InvalidArgument(string body, string why)
    {
        var ex = Assert.Throws<NacelleException>(() => ManifestParser.ParseManifest(Encoding.UTF8.GetBytes(body), MediaTypes.OciManifest));
        Assert.Equal(ErrorKind.InvalidArgument, ex.Kind);
        Assert.Contains(why, ex.Message);
    }

    [Fact]
    public void Unsupported_layer_and_config_types_are_FailedPrecondition()
    {
        string Body(string configType, string layerType) => $$"""
            {"schemaVersion":2,"config":{"mediaType":"{{configType}}","digest":"{{Digest('c')}}","size":1},
             "layers":[{"mediaType":"{{layerType}}","digest":"{{Digest('d')}}","size":1}]}
            """;
        var layer = Assert.Throws<NacelleException>(() => ManifestParser.ParseManifest(
            Encoding.UTF8.GetBytes(Body(MediaTypes.OciConfig, "application/x-bzip2")), MediaTypes.OciManifest));
        Assert.Equal(ErrorKind.FailedPrecondition, layer.Kind);
        Assert.Contains("application/x-bzip2", layer.Message);
        var config = Assert.Throws<NacelleException>(() => ManifestParser.ParseManifest(
            Encoding.UTF8.GetBytes(Body("application/vnd.cncf.helm.config.v1+json", MediaTypes.OciLayerTar)), MediaTypes.OciManifest));
        Assert.Contains("application/vnd.cncf.helm.config.v1+json", config.Message);
    }
}
