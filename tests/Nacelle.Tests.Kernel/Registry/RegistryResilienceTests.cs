using Microsoft.AspNetCore.Http;
using Nacelle.Common;
using Nacelle.ImageService.Manifests;
using Nacelle.ImageService.References;
using Nacelle.ImageService.Registry;
using Nacelle.Tests.Support.Registry;
using static Nacelle.Tests.Kernel.Registry.RegistryTestKit;

namespace Nacelle.Tests.Kernel.Registry;

/// <summary>Mirrors, redirects, retries and the no-progress timeout, with proxies written here in front of a real registry.</summary>
public sealed class RegistryResilienceTests
{
    /// <summary>
    /// Two registries on loopback, each behind a counting proxy: the origin holds lib/app:1.0 and lib/only-at-origin:1.0,
    /// the copy (a mirror, or a server replacing the origin) lib/app:1.0 only.
    /// </summary>
    private sealed class OriginAndCopy : IAsyncDisposable
    {
        private readonly RegistryServer _origin;
        private readonly RegistryServer _copy;

        private OriginAndCopy(RegistryServer origin, RegistryServer copy, PushedImage pushed, TestProxy originProxy, TestProxy copyProxy)
        {
            _origin = origin;
            _copy = copy;
            Pushed = pushed;
            OriginProxy = originProxy;
            CopyProxy = copyProxy;
        }

        public PushedImage Pushed { get; }

        public TestProxy OriginProxy { get; }

        public TestProxy CopyProxy { get; }

        public static async Task<OriginAndCopy> StartAsync()
        {
            RegistryServer origin = await RegistryServer.StartAsync();
            RegistryServer? copy = null;
            TestProxy? originProxy = null;
            try
            {
                copy = await RegistryServer.StartAsync();
                using (OciPusher p = origin.CreatePusher())
                {
                    await TestImages.PushBusyboxAsync(p, "lib/app", "1.0");
                    await TestImages.PushBusyboxAsync(p, "lib/only-at-origin", "1.0");
                }
                PushedImage pushed;
                using (OciPusher p = copy.CreatePusher())
                    pushed = await TestImages.PushBusyboxAsync(p, "lib/app", "1.0");
                originProxy = await TestProxy.StartAsync(origin.BaseUri);
                return new OriginAndCopy(origin, copy, pushed, originProxy, await TestProxy.StartAsync(copy.BaseUri));
            }
            catch
            {
                // The caller never gets the object, so nobody else would stop what was started.
                if (originProxy is not null)
                    await originProxy.DisposeAsync();
                if (copy is not null)
                    await copy.DisposeAsync();
                await origin.DisposeAsync();
                throw;
            }
        }

        public async ValueTask DisposeAsync()
        {
            await CopyProxy.DisposeAsync();
            await OriginProxy.DisposeAsync();
            await _copy.DisposeAsync();
            await _origin.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_mirror_that_has_the_image_is_used_and_the_origin_is_not()
    {
        await using OriginAndCopy registries = await OriginAndCopy.StartAsync();
        (PushedImage pushed, TestProxy originProxy, TestProxy mirrorProxy) = (registries.Pushed, registries.OriginProxy, registries.CopyProxy);

        var options = new RegistryOptions
        {
            Hosts = [new RegistryHostConfig { Host = originProxy.Host, Mirrors = [mirrorProxy.BaseUri.ToString()] }],
        };
        using RegistryClient client = Client(new CapturingLogger(), options);
        ImageReference reference = Ref(originProxy.Host, "lib/app", "1.0");
        ResolvedImage resolved = await client.ResolveAsync(reference, null, Timeout());
        byte[] layer = await DownloadAsync(client, reference, resolved.Layers[0]);

        Assert.Equal(pushed.LayerDigests[0], Sha256(layer));
        Assert.Equal(1, mirrorProxy.CountOf("/v2/lib/app/manifests/1.0"));
        Assert.Equal(1, mirrorProxy.CountOf($"/v2/lib/app/blobs/{pushed.LayerDigests[0]}"));
        Assert.Empty(originProxy.Requests);
    }

    [Fact]
    public async Task The_origin_is_used_when_the_mirror_lacks_the_image_or_is_down()
    {
        await using RegistryServer origin = await RegistryServer.StartAsync();
        await using RegistryServer emptyMirror = await RegistryServer.StartAsync();
        PushedImage pushed;
        using (OciPusher p = origin.CreatePusher())
            pushed = await TestImages.PushBusyboxAsync(p, "lib/app", "1.0");
        await using TestProxy originProxy = await TestProxy.StartAsync(origin.BaseUri);
        string downMirror = $"http://127.0.0.1:{RegistryServer.FreePort()}";

        var logger = new CapturingLogger();
        var options = new RegistryOptions
        {
            Hosts = [new RegistryHostConfig { Host = originProxy.Host, Mirrors = [downMirror, emptyMirror.BaseUri.ToString()] }],
        };
        using RegistryClient client = Client(logger, options);
        ImageReference reference = Ref(originProxy.Host, "lib/app", "1.0");
        ResolvedImage resolved = await client.ResolveAsync(reference, null, Timeout());
        byte[] layer = await DownloadAsync(client, reference, resolved.Layers[0]);

        Assert.Equal(pushed.LayerDigests[0], Sha256(layer));
        Assert.Equal(1, originProxy.CountOf("/v2/lib/app/manifests/1.0"));
        Assert.Equal(1, originProxy.CountOf("/blobs/"));
        Assert.Contains(logger.Lines, l => l.StartsWith("Warning 3006", StringComparison.Ordinal) && l.Contains(downMirror, StringComparison.Ordinal));
        Assert.Contains(logger.Lines, l => l.StartsWith("Warning 3006", StringComparison.Ordinal) && l.Contains(emptyMirror.Host, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Without_fallback_the_origin_is_never_contacted_even_on_a_miss()
    {
        await using OriginAndCopy registries = await OriginAndCopy.StartAsync();
        (PushedImage pushed, TestProxy originProxy, TestProxy mirrorProxy) = (registries.Pushed, registries.OriginProxy, registries.CopyProxy);
        string downMirror = $"http://127.0.0.1:{RegistryServer.FreePort()}";

        var options = new RegistryOptions
        {
            InitialBackoff = TimeSpan.FromMilliseconds(20),
            Hosts = [new RegistryHostConfig { Host = originProxy.Host, Mirrors = [downMirror, mirrorProxy.BaseUri.ToString()], Fallback = false }],
        };
        using RegistryClient client = Client(new CapturingLogger(), options);

        // A hit on the second mirror after the first is down.
        ImageReference app = Ref(originProxy.Host, "lib/app", "1.0");
        ResolvedImage resolved = await client.ResolveAsync(app, null, Timeout());
        Assert.Equal(pushed.LayerDigests[0], Sha256(await DownloadAsync(client, app, resolved.Layers[0])));

        // A miss: NotFound naming the mirror and why the origin was not asked, although the origin has the image.
        var miss = await Assert.ThrowsAsync<NacelleException>(() => client.ResolveAsync(Ref(originProxy.Host, "lib/only-at-origin", "1.0"), null, Timeout()));
        Assert.Equal(ErrorKind.NotFound, miss.Kind);
        Assert.Contains(mirrorProxy.Host, miss.Message);
        Assert.Contains("mirrors only: fallback = false", miss.Message);

        // A mirror that fails is retried (it is the last endpoint), and still the origin is not asked.
        int failures = 0;
        mirrorProxy.Intercept = (context, _) =>
        {
            if (Interlocked.Increment(ref failures) > 1)
                return Task.FromResult(false);
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            return Task.FromResult(true);
        };
        using RegistryClient fresh = Client(new CapturingLogger(), options);
        Assert.Equal(resolved.ManifestDigest, (await fresh.ResolveAsync(app, null, Timeout())).ManifestDigest);
        Assert.True(failures > 1);

        Assert.Empty(originProxy.Requests);
    }

    [Fact]
    public async Task A_server_replaces_the_origin_and_the_origin_is_never_contacted()
    {
        await using OriginAndCopy registries = await OriginAndCopy.StartAsync();
        (PushedImage pushed, TestProxy originProxy, TestProxy serverProxy) = (registries.Pushed, registries.OriginProxy, registries.CopyProxy);

        using RegistryClient client = Client(new CapturingLogger(), new RegistryOptions
        {
            Hosts =
            [
                new RegistryHostConfig { Host = originProxy.Host, Server = serverProxy.BaseUri.ToString() },
                // A name that does not even resolve: served entirely by the server URL.
                new RegistryHostConfig { Host = "registry.air-gapped.invalid", Server = serverProxy.BaseUri + "v2/" },
            ],
        });

        ImageReference app = Ref(originProxy.Host, "lib/app", "1.0");
        ResolvedImage resolved = await client.ResolveAsync(app, null, Timeout());
        Assert.Equal(pushed.LayerDigests[0], Sha256(await DownloadAsync(client, app, resolved.Layers[0])));
        var miss = await Assert.ThrowsAsync<NacelleException>(() => client.ResolveAsync(Ref(originProxy.Host, "lib/only-at-origin", "1.0"), null, Timeout()));
        Assert.Equal(ErrorKind.NotFound, miss.Kind);
        Assert.Contains(serverProxy.Host, miss.Message);

        ImageReference rewritten = Ref("registry.air-gapped.invalid", "lib/app", "1.0");
        Assert.Equal(resolved.ManifestDigest, (await client.ResolveAsync(rewritten, null, Timeout())).ManifestDigest);

        Assert.Empty(originProxy.Requests);
        Assert.True(serverProxy.CountOf("/v2/lib/app/manifests/1.0") >= 2);
    }

    [Fact]
    public async Task Blob_redirects_are_followed()
    {
        await using RegistryServer registry = await RegistryServer.StartAsync();
        PushedImage pushed;
        using (OciPusher p = registry.CreatePusher())
            pushed = await TestImages.PushBusyboxAsync(p, "lib/app", "1.0");
        await using TestProxy proxy = await TestProxy.StartAsync(registry.BaseUri);
        int redirects = 0;
        proxy.Intercept = (context, _) =>
        {
            if (!context.Request.Path.Value!.Contains("/blobs/", StringComparison.Ordinal))
                return Task.FromResult(false);
            Interlocked.Increment(ref redirects);
            context.Response.StatusCode = StatusCodes.Status307TemporaryRedirect;
            context.Response.Headers.Location = new Uri(registry.BaseUri, context.Request.Path.Value).ToString();
            return Task.FromResult(true);
        };

        using RegistryClient client = Client(new CapturingLogger());
        ImageReference reference = Ref(proxy.Host, "lib/app", "1.0");
        ResolvedImage resolved = await client.ResolveAsync(reference, null, Timeout());
        byte[] config = await DownloadAsync(client, reference, resolved.Config);
        byte[] layer = await DownloadAsync(client, reference, resolved.Layers[0]);

        Assert.Equal(pushed.ConfigBytes, config);
        Assert.Equal(pushed.LayerDigests[0], Sha256(layer));
        Assert.Equal(2, redirects);
    }

    [Fact]
    public async Task Transient_503s_are_retried_and_too_many_give_Unavailable()
    {
        await using RegistryServer registry = await RegistryServer.StartAsync();
        PushedImage pushed;
        using (OciPusher p = registry.CreatePusher())
            pushed = await TestImages.PushBusyboxAsync(p, "lib/app", "1.0");
        await using TestProxy proxy = await TestProxy.StartAsync(registry.BaseUri);
        int failures = 0;
        int failLimit = 2;
        proxy.Intercept = (context, _) =>
        {
            string path = context.Request.Path.Value!;
            if ((path.Contains("/manifests/", StringComparison.Ordinal) || path.Contains("/blobs/", StringComparison.Ordinal)) &&
                Interlocked.Increment(ref failures) <= failLimit)
            {
                context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                return Task.FromResult(true);
            }
            return Task.FromResult(false);
        };

        var logger = new CapturingLogger();
        using (RegistryClient client = Client(logger))
        {
            ImageReference reference = Ref(proxy.Host, "lib/app", "1.0");
            ResolvedImage resolved = await client.ResolveAsync(reference, null, Timeout());
            Assert.Equal(pushed.ManifestDigest, resolved.ManifestDigest);
            Assert.Equal(2, logger.Lines.Count(l => l.StartsWith("Warning 3005", StringComparison.Ordinal)));
            Assert.Equal(3, proxy.CountOf("/manifests/1.0"));

            Interlocked.Exchange(ref failures, 0);
            byte[] layer = await DownloadAsync(client, reference, resolved.Layers[0]);
            Assert.Equal(pushed.LayerDigests[0], Sha256(layer));
            Assert.Equal(3, proxy.CountOf("/blobs/" + pushed.LayerDigests[0]));
        }

        failLimit = int.MaxValue;
        using (RegistryClient client = Client(new CapturingLogger(), new RegistryOptions { MaxAttempts = 3, InitialBackoff = TimeSpan.FromMilliseconds(10) }))
        {
            var ex = await Assert.ThrowsAsync<NacelleException>(() => client.ResolveAsync(Ref(proxy.Host, "lib/app", "1.0"), null, Timeout()));
            Assert.Equal(ErrorKind.Unavailable, ex.Kind);
            Assert.Contains("3 attempt(s)", ex.Message);
            Assert.Contains("503", ex.Message);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_stalled_blob_trips_the_no_progress_timeout_and_resumes(bool serverHonoursRange)
    {
        await using RegistryServer registry = await RegistryServer.StartAsync();
        PushedImage pushed;
        using (OciPusher p = registry.CreatePusher())
            pushed = await TestImages.PushBusyboxAsync(p, "lib/app", "1.0", LayerCompression.None);
        string layerDigest = pushed.LayerDigests[0];
        await using TestProxy proxy = await TestProxy.StartAsync(registry.BaseUri);
        proxy.ForwardRange = serverHonoursRange;
        int blobGets = 0;
        proxy.Intercept = async (context, _) =>
        {
            if (!context.Request.Path.Value!.EndsWith(layerDigest, StringComparison.Ordinal) || Interlocked.Increment(ref blobGets) > 1)
                return false;
            // First GET: send half of the blob, then nothing until the client gives up.
            await proxy.ForwardAsync(context, async (body, ctx) =>
            {
                byte[] buffer = new byte[pushed.Layers[0].Size / 2];
                await body.ReadExactlyAsync(buffer, ctx.RequestAborted);
                await ctx.Response.Body.WriteAsync(buffer, ctx.RequestAborted);
                await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(60), ctx.RequestAborted);
                }
                catch (OperationCanceledException)
                {
                }
            });
            return true;
        };

        // 5 s: long enough that the resumed GET never looks stalled on a loaded CI machine (with 2 s, a third GET
        // happened there once).
        var logger = new CapturingLogger();
        using RegistryClient client = Client(logger, new RegistryOptions
        {
            NoProgressTimeout = TimeSpan.FromSeconds(5),
            InitialBackoff = TimeSpan.FromMilliseconds(10),
        });
        ImageReference reference = Ref(proxy.Host, "lib/app", "1.0");
        ResolvedImage resolved = await client.ResolveAsync(reference, null, Timeout());
        var started = DateTime.UtcNow;
        byte[] layer = await DownloadAsync(client, reference, resolved.Layers[0]);

        Assert.Equal(layerDigest, Sha256(layer));
        Assert.Equal(2, blobGets);
        Assert.True(DateTime.UtcNow - started >= TimeSpan.FromSeconds(4.9), "the stall should have lasted the no-progress timeout");
        Assert.Contains(logger.Lines, l => l.Contains("no data for 5 s", StringComparison.Ordinal));
        string range = Assert.Single(proxy.Ranges);
        Assert.Equal($"bytes={pushed.Layers[0].Size / 2}-", range);
        if (!serverHonoursRange)
            Assert.Contains(logger.Lines, l => l.StartsWith("Debug 3009", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_blob_that_keeps_stalling_fails_with_Unavailable_naming_the_stall()
    {
        await using RegistryServer registry = await RegistryServer.StartAsync();
        PushedImage pushed;
        using (OciPusher p = registry.CreatePusher())
            pushed = await TestImages.PushBusyboxAsync(p, "lib/app", "1.0");
        await using TestProxy proxy = await TestProxy.StartAsync(registry.BaseUri);
        proxy.Intercept = async (context, _) =>
        {
            if (!context.Request.Path.Value!.Contains("/blobs/", StringComparison.Ordinal))
                return false;
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(60), context.RequestAborted); // no headers at all
            }
            catch (OperationCanceledException)
            {
            }
            return true;
        };
        using RegistryClient client = Client(new CapturingLogger(), new RegistryOptions
        {
            NoProgressTimeout = TimeSpan.FromSeconds(1),
            MaxAttempts = 2,
            InitialBackoff = TimeSpan.FromMilliseconds(10),
        });
        ImageReference reference = Ref(proxy.Host, "lib/app", "1.0");
        ResolvedImage resolved = await client.ResolveAsync(reference, null, Timeout());
        var ex = await Assert.ThrowsAsync<NacelleException>(() => DownloadAsync(client, reference, resolved.Layers[0]));
        Assert.Equal(ErrorKind.Unavailable, ex.Kind);
        Assert.Contains("no response within 1 s", ex.Message);
        Assert.Contains(pushed.LayerDigests[0], ex.Message);
    }
}
