using System.Text;
using Microsoft.AspNetCore.Http;
using Nacelle.Common;
using Nacelle.ImageService.Manifests;
using Nacelle.ImageService.Registry;
using Nacelle.Tests.Support.Registry;
using static Nacelle.Tests.Kernel.Registry.RegistryTestKit;

namespace Nacelle.Tests.Kernel.Registry;

/// <summary>
/// Content the client must refuse. docker-registry 2.8 will not store schema 1 or unknown manifest types, so a small
/// fake registry written here serves them.
/// </summary>
public sealed class RegistryContentTests
{
    private const string Schema1Body = """{"schemaVersion":1,"name":"lib/old","tag":"v1","architecture":"amd64","fsLayers":[],"history":[],"signatures":[]}""";

    private static async Task<LoopbackHttpServer> FakeRegistryAsync(string contentType, string body, string? dockerContentDigest = null)
    {
        return await LoopbackHttpServer.StartAsync(async context =>
        {
            if (context.Request.Path == "/v2/")
            {
                context.Response.StatusCode = 200;
                return;
            }
            if (context.Request.Path.Value!.Contains("/manifests/", StringComparison.Ordinal))
            {
                context.Response.ContentType = contentType;
                if (dockerContentDigest is not null)
                    context.Response.Headers["Docker-Content-Digest"] = dockerContentDigest;
                await context.Response.WriteAsync(body);
                return;
            }
            context.Response.StatusCode = 404;
        });
    }

    [Theory]
    [InlineData(MediaTypes.DockerSchema1SignedManifest)]
    [InlineData(MediaTypes.DockerSchema1Manifest)]
    public async Task Schema1_is_refused_naming_the_media_type(string mediaType)
    {
        await using LoopbackHttpServer fake = await FakeRegistryAsync(mediaType, Schema1Body);
        using RegistryClient client = Client(new CapturingLogger());
        var ex = await Assert.ThrowsAsync<NacelleException>(() => client.ResolveAsync(Ref(fake.Host, "lib/old", "v1"), null, Timeout()));
        Assert.Equal(ErrorKind.FailedPrecondition, ex.Kind);
        Assert.Contains(mediaType, ex.Message);
        Assert.Contains("schema 1", ex.Message);
    }

    [Fact]
    public async Task Schema1_without_a_content_type_is_recognised_and_refused()
    {
        await using LoopbackHttpServer fake = await FakeRegistryAsync("application/json", Schema1Body);
        using RegistryClient client = Client(new CapturingLogger());
        var ex = await Assert.ThrowsAsync<NacelleException>(() => client.ResolveAsync(Ref(fake.Host, "lib/old", "v1"), null, Timeout()));
        Assert.Equal(ErrorKind.FailedPrecondition, ex.Kind);
        Assert.Contains(MediaTypes.DockerSchema1Manifest, ex.Message);
    }

    [Fact]
    public async Task An_unknown_manifest_media_type_is_refused_naming_it()
    {
        const string type = "application/vnd.example.thing.v1+json";
        await using LoopbackHttpServer fake = await FakeRegistryAsync(type, $$"""{"schemaVersion":2,"mediaType":"{{type}}"}""");
        using RegistryClient client = Client(new CapturingLogger());
        var ex = await Assert.ThrowsAsync<NacelleException>(() => client.ResolveAsync(Ref(fake.Host, "lib/thing", "v1"), null, Timeout()));
        Assert.Equal(ErrorKind.FailedPrecondition, ex.Kind);
        Assert.Contains(type, ex.Message);
    }

    [Fact]
    public async Task A_manifest_whose_digest_does_not_match_is_refused()
    {
        string body = Encoding.UTF8.GetString(TestImages.BuildConfig(new TestImageSpec { Layers = [] })); // any JSON
        string manifest = $$"""{"schemaVersion":2,"mediaType":"{{MediaTypes.OciManifest}}","config":{"mediaType":"{{MediaTypes.OciConfig}}","digest":"{{Sha256(Encoding.UTF8.GetBytes(body))}}","size":{{body.Length}}},"layers":[]}""";
        string wrong = "sha256:" + new string('0', 64);

        await using (LoopbackHttpServer fake = await FakeRegistryAsync(MediaTypes.OciManifest, manifest, wrong))
        {
            using RegistryClient client = Client(new CapturingLogger());
            var ex = await Assert.ThrowsAsync<NacelleException>(() => client.ResolveAsync(Ref(fake.Host, "lib/x", "v1"), null, Timeout()));
            Assert.Equal(ErrorKind.FailedPrecondition, ex.Kind);
            Assert.Contains(wrong, ex.Message);

            // Asked by digest, the content must have that digest.
            var byDigest = await Assert.ThrowsAsync<NacelleException>(() => client.ResolveAsync(Ref(fake.Host, "lib/x", wrong), null, Timeout()));
            Assert.Equal(ErrorKind.FailedPrecondition, byDigest.Kind);
        }

        // The right header passes.
        await using (LoopbackHttpServer fake = await FakeRegistryAsync(MediaTypes.OciManifest, manifest, Sha256(Encoding.UTF8.GetBytes(manifest))))
        {
            using RegistryClient client = Client(new CapturingLogger());
            ResolvedImage resolved = await client.ResolveAsync(Ref(fake.Host, "lib/x", "v1"), null, Timeout());
            Assert.Equal(Sha256(Encoding.UTF8.GetBytes(manifest)), resolved.TopDigest);
            Assert.Empty(resolved.Layers);
        }
    }

    [Fact]
    public async Task A_non_image_artifact_config_is_refused()
    {
        const string helm = "application/vnd.cncf.helm.config.v1+json";
        string manifest = $$"""{"schemaVersion":2,"mediaType":"{{MediaTypes.OciManifest}}","config":{"mediaType":"{{helm}}","digest":"sha256:{{new string('1', 64)}}","size":2},"layers":[]}""";
        await using LoopbackHttpServer fake = await FakeRegistryAsync(MediaTypes.OciManifest, manifest);
        using RegistryClient client = Client(new CapturingLogger());
        var ex = await Assert.ThrowsAsync<NacelleException>(() => client.ResolveAsync(Ref(fake.Host, "charts/x", "v1"), null, Timeout()));
        Assert.Equal(ErrorKind.FailedPrecondition, ex.Kind);
        Assert.Contains(helm, ex.Message);
    }
}
