using System.Text;
using Grpc.Core;
using Nacelle.Tests.EndToEnd.Infrastructure;
using Nacelle.Tests.Support.Registry;
using Runtime.V1;

namespace Nacelle.Tests.EndToEnd;

/// <summary>
/// An air-gapped node as an operator configures it: a registry served by its mirror only (fallback = false), the mirror's
/// credentials in the node's auth_file (kubelet sends none), and pinned images. Two real registries on loopback; the
/// origin sits behind a counting proxy and must never see a request.
/// </summary>
public sealed class AirGappedRegistryTests
{
    [Fact]
    public async Task MirrorsOnlyNodeCredentialsAndPinnedImagesThroughTheDaemon()
    {
        await using var origin = await RegistryServer.StartAsync();
        var mirrorOptions = new RegistryServerOptions { Tls = true, Auth = RegistryAuthMode.Basic, Username = "node", Password = "mirr0r-Pass" };
        await using var mirror = await RegistryServer.StartAsync(mirrorOptions);
        using (var pusher = origin.CreatePusher())
        {
            await TestImages.PushBusyboxAsync(pusher, "e2e/pause", "3.10");
            await TestImages.PushBusyboxAsync(pusher, "e2e/only-at-origin", "1.0");
        }

        PushedImage pause;
        PushedImage app;
        using (var pusher = mirror.CreatePusher())
        {
            pause = await TestImages.PushBusyboxAsync(pusher, "e2e/pause", "3.10");
            app = await TestImages.PushBusyboxAsync(pusher, "e2e/app", "1.0", user: "1000");
        }

        await using var originProxy = await TestProxy.StartAsync(origin.BaseUri);
        var dir = Directory.CreateTempSubdirectory("nacelle-e2e-").FullName;
        var authFile = Path.Combine(dir, "auth.json");
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes("node:mirr0r-Pass"));
        await File.WriteAllTextAsync(authFile, "{\"auths\": {\"" + mirror.Host + "\": {\"auth\": \"" + auth + "\"}}}");
        await using var daemon = await DaemonProcess.StartAsync($$"""
            [image]
            pinned_images = ["{{originProxy.Host}}/e2e/pause"]

            [registry]
            auth_file = "{{authFile}}"

            [registry.hosts."{{originProxy.Host}}"]
            mirrors = ["{{mirror.BaseUri}}"]
            fallback = false

            [registry.hosts."{{mirror.Host}}"]
            ca_file = "{{mirror.CaPemPath}}"
            """, directory: dir);
        var images = daemon.Client.Images;
        ImageSpec Spec(string repository, string tag) => new() { Image = $"{originProxy.Host}/{repository}:{tag}" };

        // Pulled through the mirror with the node's credentials; kubelet sent none.
        Assert.Equal(pause.ConfigDigest, (await images.PullImageAsync(new PullImageRequest { Image = Spec("e2e/pause", "3.10") })).ImageRef);
        Assert.Equal(app.ConfigDigest, (await images.PullImageAsync(new PullImageRequest { Image = Spec("e2e/app", "1.0") })).ImageRef);

        // A miss at the mirror is NotFound, although the origin has the image: it was never asked.
        var miss = await Assert.ThrowsAsync<RpcException>(async () =>
            await images.PullImageAsync(new PullImageRequest { Image = Spec("e2e/only-at-origin", "1.0") }));
        Assert.Equal(StatusCode.NotFound, miss.StatusCode);
        Assert.Contains("fallback = false", miss.Status.Detail);

        // Pinned: reported so, and refused by RemoveImage naming the pattern.
        var listed = (await images.ListImagesAsync(new ListImagesRequest())).Images;
        Assert.True(Assert.Single(listed, i => i.Id == pause.ConfigDigest).Pinned);
        Assert.False(Assert.Single(listed, i => i.Id == app.ConfigDigest).Pinned);
        Assert.True((await images.ImageStatusAsync(new ImageStatusRequest { Image = Spec("e2e/pause", "3.10") })).Image.Pinned);
        foreach (var name in new[] { Spec("e2e/pause", "3.10").Image, pause.ConfigDigest })
        {
            var refused = await Assert.ThrowsAsync<RpcException>(async () =>
                await images.RemoveImageAsync(new RemoveImageRequest { Image = new ImageSpec { Image = name } }));
            Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
            Assert.Contains($"pinned by the pattern '{originProxy.Host}/e2e/pause'", refused.Status.Detail);
        }

        Assert.NotNull((await images.ImageStatusAsync(new ImageStatusRequest { Image = Spec("e2e/pause", "3.10") })).Image);
        await images.RemoveImageAsync(new RemoveImageRequest { Image = Spec("e2e/app", "1.0") });
        Assert.Null((await images.ImageStatusAsync(new ImageStatusRequest { Image = Spec("e2e/app", "1.0") })).Image);

        Assert.Empty(originProxy.Requests);
        Assert.DoesNotContain("mirr0r-Pass", daemon.Output);
    }

    [Fact]
    public async Task ACredentialHelperInTheAuthFileStopsTheDaemonWithOneLine()
    {
        var dir = Directory.CreateTempSubdirectory("nacelle-e2e-").FullName;
        var authFile = Path.Combine(dir, "auth.json");
        await File.WriteAllTextAsync(authFile, """{"auths": {}, "credHelpers": {"gcr.io": "gcloud"}}""");
        await using var daemon = await DaemonProcess.StartAsync($"[registry]\nauth_file = \"{authFile}\"\n", directory: dir, waitUntilServing: false);

        Assert.Equal(2, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        var line = Assert.Single(daemon.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.StartsWith($"nacelle: cannot start: registry.auth_file {authFile}: \"credHelpers\" names credential helper programs", line);
        Assert.EndsWith("fix the file, or set registry.auth_file = \"\"", line);
    }
}
