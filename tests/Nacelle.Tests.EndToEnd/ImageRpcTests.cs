using System.Text.Json;
using Grpc.Core;
using Nacelle.Tests.EndToEnd.Infrastructure;
using Nacelle.Tests.Support.Registry;
using Runtime.V1;

namespace Nacelle.Tests.EndToEnd;

/// <summary>The ImageService rpcs through the daemon's socket, against a real registry on loopback, in kubelet's order.</summary>
public sealed class ImageRpcTests : IAsyncLifetime
{
    private RegistryServer _registry = null!;
    private OciPusher _pusher = null!;
    private DaemonProcess _daemon = null!;

    public async ValueTask InitializeAsync()
    {
        _registry = await RegistryServer.StartAsync();
        _pusher = _registry.CreatePusher();
        _daemon = await DaemonProcess.StartAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await _daemon.DisposeAsync();
        _pusher.Dispose();
        await _registry.DisposeAsync();
    }

    private Runtime.V1.ImageService.ImageServiceClient Images => _daemon.Client.Images;

    private static ImageSpec Spec(string image) => new() { Image = image };

    [Fact]
    public async Task PullListStatusRemove()
    {
        var pushed = await TestImages.PushBusyboxAsync(_pusher, "e2e/busybox", "1.0", user: "1000");
        var name = $"{_registry.Host}/e2e/busybox:1.0";

        var pull = await Images.PullImageAsync(new PullImageRequest { Image = Spec(name) });
        Assert.Equal(pushed.ConfigDigest, pull.ImageRef);

        var list = await Images.ListImagesAsync(new ListImagesRequest());
        var image = Assert.Single(list.Images);
        Assert.Equal(pushed.ConfigDigest, image.Id);
        Assert.Equal([name], image.RepoTags);
        Assert.Equal([$"{_registry.Host}/e2e/busybox@{pushed.ManifestDigest}"], image.RepoDigests);
        Assert.Equal(1000, image.Uid.Value);
        Assert.True(image.Size > 500_000, $"size {image.Size}"); // busybox-static alone is ~1 MB compressed

        // Found by tag, id and repo digest alike.
        foreach (var spec in new[] { name, pushed.ConfigDigest, image.RepoDigests[0] })
        {
            var status = await Images.ImageStatusAsync(new ImageStatusRequest { Image = Spec(spec), Verbose = true });
            Assert.Equal(pushed.ConfigDigest, status.Image.Id);
            using var info = JsonDocument.Parse(status.Info["info"]);
            var diffIds = info.RootElement.GetProperty("imageSpec").GetProperty("rootfs").GetProperty("diff_ids");
            Assert.Equal(pushed.DiffIds, diffIds.EnumerateArray().Select(e => e.GetString()));
        }

        var filtered = await Images.ListImagesAsync(new ListImagesRequest { Filter = new ImageFilter { Image = Spec(name) } });
        Assert.Single(filtered.Images);
        var none = await Images.ListImagesAsync(new ListImagesRequest { Filter = new ImageFilter { Image = Spec($"{_registry.Host}/e2e/other:1") } });
        Assert.Empty(none.Images);

        var fs = await Images.ImageFsInfoAsync(new ImageFsInfoRequest());
        var imageFs = Assert.Single(fs.ImageFilesystems);
        Assert.True(imageFs.UsedBytes.Value > 1_000_000, $"used {imageFs.UsedBytes.Value}");
        Assert.True(imageFs.InodesUsed.Value > 10);
        Assert.Equal(Path.Combine(_daemon.Root, "snapshots"), imageFs.FsId.Mountpoint);
        Assert.Equal(Path.Combine(_daemon.Root, "containers"), Assert.Single(fs.ContainerFilesystems).FsId.Mountpoint);

        using (var stream = Images.StreamImages(new StreamImagesRequest()))
        {
            Assert.True(await stream.ResponseStream.MoveNext(CancellationToken.None));
            Assert.Equal(pushed.ConfigDigest, Assert.Single(stream.ResponseStream.Current.Images).Id);
        }

        await Images.RemoveImageAsync(new RemoveImageRequest { Image = Spec(name) });
        var gone = await Images.ImageStatusAsync(new ImageStatusRequest { Image = Spec(name) });
        Assert.Null(gone.Image);
        Assert.Empty((await Images.ListImagesAsync(new ListImagesRequest())).Images);
        await Images.RemoveImageAsync(new RemoveImageRequest { Image = Spec(name) }); // idempotent

        // Nothing of it is left on disk.
        Assert.Empty(Directory.GetDirectories(Path.Combine(_daemon.Root, "snapshots")));
        Assert.Empty(Directory.GetFiles(Path.Combine(_daemon.Root, "content", "blobs"), "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task TheNodesPlatformIsChosenFromAManifestList()
    {
        var pushed = await TestImages.PushMultiPlatformAsync(_pusher, "e2e/multi", "m", dockerMediaTypes: true);
        var name = $"{_registry.Host}/e2e/multi:m";

        var pull = await Images.PullImageAsync(new PullImageRequest { Image = Spec(name) });

        Assert.Equal(pushed.Amd64.ConfigDigest, pull.ImageRef);
        var status = await Images.ImageStatusAsync(new ImageStatusRequest { Image = Spec(name) });
        // The repo digest is what the tag points to: the list, not the platform manifest.
        Assert.Equal([$"{_registry.Host}/e2e/multi@{pushed.IndexDigest}"], status.Image.RepoDigests);
    }

    [Fact]
    public async Task PullFailuresAreClearErrors()
    {
        var missing = await Assert.ThrowsAsync<RpcException>(async () =>
            await Images.PullImageAsync(new PullImageRequest { Image = Spec($"{_registry.Host}/e2e/does-not-exist:1") }));
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
        Assert.Contains("e2e/does-not-exist", missing.Status.Detail);

        var invalid = await Assert.ThrowsAsync<RpcException>(async () =>
            await Images.PullImageAsync(new PullImageRequest { Image = Spec("Invalid Name!!") }));
        Assert.Equal(StatusCode.InvalidArgument, invalid.StatusCode);
        Assert.Contains("Invalid Name!!", invalid.Status.Detail);

        var empty = await Assert.ThrowsAsync<RpcException>(async () => await Images.PullImageAsync(new PullImageRequest()));
        Assert.Equal(StatusCode.InvalidArgument, empty.StatusCode);
        Assert.Equal("PullImage: image.image is empty", empty.Status.Detail);
        var noStatus = await Assert.ThrowsAsync<RpcException>(async () => await Images.ImageStatusAsync(new ImageStatusRequest()));
        Assert.Equal("ImageStatus: image.image is empty", noStatus.Status.Detail);
        var noRemove = await Assert.ThrowsAsync<RpcException>(async () => await Images.RemoveImageAsync(new RemoveImageRequest { Image = Spec(" ") }));
        Assert.Equal(StatusCode.InvalidArgument, noRemove.StatusCode);

        // The daemon is fine afterwards.
        Assert.Empty((await Images.ListImagesAsync(new ListImagesRequest())).Images);
    }

    [Fact]
    public async Task PullsFromATlsRegistryWithBasicAuthUseTheConfiguredCaAndKubeletsCredentials()
    {
        await using var secure = await RegistryServer.StartAsync(new RegistryServerOptions { Auth = RegistryAuthMode.Basic, Tls = true });
        using (var pusher = secure.CreatePusher())
        {
            await TestImages.PushBusyboxAsync(pusher, "e2e/private", "p");
        }

        await using var daemon = await DaemonProcess.StartAsync($"[registry.hosts.\"{secure.Host}\"]\nca_file = \"{secure.CaPemPath}\"\n");
        var name = $"{secure.Host}/e2e/private:p";

        var refused = await Assert.ThrowsAsync<RpcException>(async () =>
            await daemon.Client.Images.PullImageAsync(new PullImageRequest { Image = Spec(name) }));
        Assert.Equal(StatusCode.Unauthenticated, refused.StatusCode);

        var wrong = await Assert.ThrowsAsync<RpcException>(async () => await daemon.Client.Images.PullImageAsync(new PullImageRequest
        {
            Image = Spec(name),
            Auth = new AuthConfig { Username = secure.Options.Username, Password = "not-the-password" },
        }));
        Assert.Equal(StatusCode.Unauthenticated, wrong.StatusCode);
        Assert.DoesNotContain("not-the-password", wrong.Status.Detail);

        // kubelet sends either username/password or the base64 "auth" form.
        var auth = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{secure.Options.Username}:{secure.Options.Password}"));
        var pulled = await daemon.Client.Images.PullImageAsync(new PullImageRequest { Image = Spec(name), Auth = new AuthConfig { Auth = auth } });
        Assert.StartsWith("sha256:", pulled.ImageRef);
        Assert.DoesNotContain(secure.Options.Password, daemon.Output);
    }

    [Fact]
    public async Task ImagesSurviveADaemonRestart()
    {
        var pushed = await TestImages.PushBusyboxAsync(_pusher, "e2e/restart", "r");
        var name = $"{_registry.Host}/e2e/restart:r";
        await Images.PullImageAsync(new PullImageRequest { Image = Spec(name) });

        Assert.Equal(0, await _daemon.StopAsync());
        var workDirectory = _daemon.WorkDirectory;
        _daemon = await DaemonProcess.RestartAsync(_daemon);

        var status = await Images.ImageStatusAsync(new ImageStatusRequest { Image = Spec(name) });
        Assert.Equal(pushed.ConfigDigest, status.Image.Id);
        Assert.Equal(workDirectory, _daemon.WorkDirectory);
    }
}
