using Nacelle.Common;
using Nacelle.ImageService.Manifests;
using Nacelle.ImageService.Registry;
using Nacelle.Tests.Support.Registry;
using static Nacelle.Tests.Kernel.Registry.RegistryTestKit;

namespace Nacelle.Tests.Kernel.Registry;

/// <summary>Basic auth over TLS with a test CA, and bearer tokens from a token server, against a real docker-registry.</summary>
public sealed class RegistryAuthTests
{
    [Fact]
    public async Task Basic_auth_over_tls_needs_both_the_ca_and_the_credentials()
    {
        var options = new RegistryServerOptions { Tls = true, Auth = RegistryAuthMode.Basic, Username = "puller", Password = "s3cret-Pa55" };
        await using RegistryServer registry = await RegistryServer.StartAsync(options);
        using (OciPusher pusher = registry.CreatePusher())
            await TestImages.PushBusyboxAsync(pusher, "private/busybox", "1.0");
        var reference = Ref(registry.Host, "private/busybox", "1.0");
        var good = new RegistryCredentials("puller", "s3cret-Pa55", null, null, null);
        var withCa = new RegistryOptions { Hosts = [new RegistryHostConfig { Host = registry.Host, CaFile = registry.CaPemPath }] };

        // With the CA but no credentials: refused, with a clear kind and message.
        var logger = new CapturingLogger();
        using (RegistryClient client = Client(logger, withCa))
        {
            var ex = await Assert.ThrowsAsync<NacelleException>(() => client.ResolveAsync(reference, null, Timeout()));
            Assert.Equal(ErrorKind.Unauthenticated, ex.Kind);
            Assert.Contains("authentication", ex.Message);

            var wrong = await Assert.ThrowsAsync<NacelleException>(() =>
                client.ResolveAsync(reference, new RegistryCredentials("puller", "wrong-password", null, null, null), Timeout()));
            Assert.Equal(ErrorKind.Unauthenticated, wrong.Kind);
            Assert.DoesNotContain("wrong-password", wrong.Message);
        }

        // With credentials but without the CA: the TLS failure is reported (no silent fallback to plain HTTP).
        using (RegistryClient client = Client(new CapturingLogger()))
        {
            var ex = await Assert.ThrowsAsync<NacelleException>(() => client.ResolveAsync(reference, good, Timeout()));
            Assert.Equal(ErrorKind.Unavailable, ex.Kind);
            Assert.Contains("TLS", ex.Message);
        }

        // Both: works, for username/password and for the CRI "auth" form; blobs download too.
        using (RegistryClient client = Client(logger, withCa))
        {
            ResolvedImage resolved = await client.ResolveAsync(reference, good, Timeout());
            byte[] layer = await DownloadAsync(client, reference, resolved.Layers[0], good);
            Assert.Equal(resolved.Layers[0].Digest, Sha256(layer));

            string auth = Convert.ToBase64String("puller:s3cret-Pa55"u8.ToArray());
            ResolvedImage again = await client.ResolveAsync(reference, new RegistryCredentials(null, null, auth, null, null), Timeout());
            Assert.Equal(resolved.ManifestDigest, again.ManifestDigest);
        }
        Assert.DoesNotContain("s3cret-Pa55", logger.All);
        Assert.DoesNotContain("wrong-password", logger.All);

        // A CRI "auth" that is not base64("user:password") is the caller's mistake, and is not echoed.
        using (RegistryClient client = Client(new CapturingLogger(), withCa))
        {
            var bad = await Assert.ThrowsAsync<NacelleException>(() =>
                client.ResolveAsync(reference, new RegistryCredentials(null, null, "%%not-base64%%", null, null), Timeout()));
            Assert.Equal(ErrorKind.InvalidArgument, bad.Kind);
            Assert.DoesNotContain("%%not-base64%%", bad.Message);
        }

        // SkipVerify works without the CA.
        using (RegistryClient client = Client(new CapturingLogger(), new RegistryOptions
        {
            Hosts = [new RegistryHostConfig { Host = registry.Host, SkipVerify = true }],
        }))
        {
            ResolvedImage resolved = await client.ResolveAsync(reference, good, Timeout());
            Assert.Equal(MediaTypes.OciManifest, resolved.ManifestMediaType);
        }
    }

    [Fact]
    public async Task Node_credentials_from_a_docker_config_json_are_used_when_the_pull_brings_none()
    {
        var options = new RegistryServerOptions { Tls = true, Auth = RegistryAuthMode.Basic, Username = "node", Password = "n0de-Secret" };
        await using RegistryServer registry = await RegistryServer.StartAsync(options);
        using (OciPusher pusher = registry.CreatePusher())
            await TestImages.PushBusyboxAsync(pusher, "private/busybox", "1.0");
        var reference = Ref(registry.Host, "private/busybox", "1.0");
        string dir = Directory.CreateTempSubdirectory("nacelle-auth-").FullName;
        try
        {
            string authFile = Path.Combine(dir, "config.json");
            string auth = Convert.ToBase64String("node:n0de-Secret"u8.ToArray());
            await File.WriteAllTextAsync(authFile, "{\"auths\": {\"https://" + registry.Host + "/v2/\": {\"auth\": \"" + auth + "\"}}}");
            var logger = new CapturingLogger();
            using RegistryClient client = Client(logger, new RegistryOptions
            {
                NodeCredentials = new NodeCredentials(authFile),
                Hosts = [new RegistryHostConfig { Host = registry.Host, CaFile = registry.CaPemPath }],
            });

            ResolvedImage resolved = await client.ResolveAsync(reference, null, Timeout());
            Assert.Equal(resolved.Layers[0].Digest, Sha256(await DownloadAsync(client, reference, resolved.Layers[0])));

            // The pull's own credentials win over the node's.
            var wrong = await Assert.ThrowsAsync<NacelleException>(() =>
                client.ResolveAsync(reference, new RegistryCredentials("node", "not-the-password", null, null, null), Timeout()));
            Assert.Equal(ErrorKind.Unauthenticated, wrong.Kind);

            // Rotated on disk: the next pull reads the new file (here: credentials for another registry only).
            await File.WriteAllTextAsync(authFile, """{"auths": {"other.example": {"username": "u", "password": "p"}}, "credHelpers": {}}""");
            File.SetLastWriteTimeUtc(authFile, DateTime.UtcNow.AddMinutes(1));
            var none = await Assert.ThrowsAsync<NacelleException>(() => client.ResolveAsync(reference, null, Timeout()));
            Assert.Equal(ErrorKind.Unauthenticated, none.Kind);
            Assert.DoesNotContain("n0de-Secret", logger.All);
            Assert.DoesNotContain(auth, logger.All);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Token_auth_fetches_one_token_per_scope_and_reuses_it()
    {
        await using RegistryServer registry = await RegistryServer.StartAsync(new RegistryServerOptions { Auth = RegistryAuthMode.Token });
        TokenServer tokens = registry.Tokens!;
        using (OciPusher pusher = registry.CreatePusher())
        {
            await TestImages.PushBusyboxAsync(pusher, "team/one", "1.0");
            await TestImages.PushMultiPlatformAsync(pusher, "team/two", "v1");
        }
        int before = tokens.TotalRequests;
        var logger = new CapturingLogger();
        using RegistryClient client = Client(logger);

        var one = Ref(registry.Host, "team/one", "1.0");
        ResolvedImage resolved = await client.ResolveAsync(one, null, Timeout());
        await DownloadAsync(client, one, resolved.Config);
        await DownloadAsync(client, one, resolved.Layers[0]);
        await client.ResolveAsync(one, null, Timeout());
        Assert.Equal(1, tokens.RequestsFor("repository:team/one:pull"));

        // Another repository is another scope: one more token, also reused (index + manifest + blobs).
        var two = Ref(registry.Host, "team/two", "v1");
        ResolvedImage resolvedTwo = await client.ResolveAsync(two, null, Timeout());
        await DownloadAsync(client, two, resolvedTwo.Layers[0]);
        Assert.Equal(1, tokens.RequestsFor("repository:team/two:pull"));
        Assert.Equal(before + 2, tokens.TotalRequests);
        Assert.Equal(resolved.Layers[0].Digest, resolvedTwo.Layers[0].Digest); // same busybox layer
    }

    [Fact]
    public async Task Token_auth_with_credentials_identity_token_and_registry_token()
    {
        var options = new RegistryServerOptions
        {
            Auth = RegistryAuthMode.Token,
            Username = "alice",
            Password = "alice-Pa55",
            IdentityToken = "refresh-me-123",
            AllowAnonymousTokens = false,
        };
        await using RegistryServer registry = await RegistryServer.StartAsync(options);
        using (OciPusher pusher = registry.CreatePusher())
            await TestImages.PushBusyboxAsync(pusher, "team/private", "1.0");
        TokenServer tokens = registry.Tokens!;
        var reference = Ref(registry.Host, "team/private", "1.0");
        var logger = new CapturingLogger();

        using (RegistryClient client = Client(logger))
        {
            var anonymous = await Assert.ThrowsAsync<NacelleException>(() => client.ResolveAsync(reference, null, Timeout()));
            Assert.Equal(ErrorKind.Unauthenticated, anonymous.Kind);
            Assert.Contains("anonymous", anonymous.Message);

            ResolvedImage basic = await client.ResolveAsync(reference, new RegistryCredentials("alice", "alice-Pa55", null, null, null), Timeout());
            ResolvedImage identity = await client.ResolveAsync(reference, new RegistryCredentials(null, null, null, "refresh-me-123", null), Timeout());
            Assert.Equal(basic.ManifestDigest, identity.ManifestDigest);

            var badIdentity = await Assert.ThrowsAsync<NacelleException>(() =>
                client.ResolveAsync(reference, new RegistryCredentials(null, null, null, "stolen-token", null), Timeout()));
            Assert.Equal(ErrorKind.Unauthenticated, badIdentity.Kind);
            Assert.DoesNotContain("stolen-token", badIdentity.Message);
        }

        // A registry token is sent as the bearer token directly: fetch one from the token server like a kubelet plugin would.
        string registryToken;
        using (var http = new HttpClient())
        {
            using var request = new HttpRequestMessage(HttpMethod.Get,
                new Uri(tokens.Realm, $"?service={tokens.Service}&scope=repository:team/private:pull"));
            request.Headers.Authorization = new("Basic", Convert.ToBase64String("alice:alice-Pa55"u8.ToArray()));
            using HttpResponseMessage response = await http.SendAsync(request);
            response.EnsureSuccessStatusCode();
            using var doc = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            registryToken = doc.RootElement.GetProperty("token").GetString()!;
        }
        int before = tokens.TotalRequests;
        using (RegistryClient client = Client(logger))
        {
            ResolvedImage viaToken = await client.ResolveAsync(reference, new RegistryCredentials(null, null, null, null, registryToken), Timeout());
            Assert.Equal(MediaTypes.OciManifest, viaToken.ManifestMediaType);
        }
        Assert.Equal(before, tokens.TotalRequests);
        Assert.DoesNotContain("alice-Pa55", logger.All);
        Assert.DoesNotContain("refresh-me-123", logger.All);
        Assert.DoesNotContain(registryToken, logger.All);
    }

    [Fact]
    public async Task Mutual_tls_needs_the_client_certificate()
    {
        await using RegistryServer registry = await RegistryServer.StartAsync(new RegistryServerOptions { Tls = true, RequireClientCertificate = true });
        using (OciPusher pusher = registry.CreatePusher())
            await TestImages.PushBusyboxAsync(pusher, "mtls/busybox", "1.0");
        var reference = Ref(registry.Host, "mtls/busybox", "1.0");

        using (RegistryClient client = Client(new CapturingLogger(), new RegistryOptions
        {
            MaxAttempts = 1,
            Hosts = [new RegistryHostConfig { Host = registry.Host, CaFile = registry.CaPemPath }],
        }))
        {
            var ex = await Assert.ThrowsAsync<NacelleException>(() => client.ResolveAsync(reference, null, Timeout()));
            Assert.Equal(ErrorKind.Unavailable, ex.Kind);
        }

        using (RegistryClient client = Client(new CapturingLogger(), new RegistryOptions
        {
            Hosts =
            [
                new RegistryHostConfig
                {
                    Host = registry.Host,
                    CaFile = registry.CaPemPath,
                    ClientCertFile = registry.ClientCertificatePath,
                    ClientKeyFile = registry.ClientKeyPath,
                },
            ],
        }))
        {
            ResolvedImage resolved = await client.ResolveAsync(reference, null, Timeout());
            byte[] layer = await DownloadAsync(client, reference, resolved.Layers[0]);
            Assert.Equal(resolved.Layers[0].Digest, Sha256(layer));
        }

        // A missing key file is a configuration error naming the file.
        using (RegistryClient client = Client(new CapturingLogger(), new RegistryOptions
        {
            Hosts = [new RegistryHostConfig { Host = registry.Host, ClientCertFile = registry.ClientCertificatePath, ClientKeyFile = "/nonexistent/key.pem" }],
        }))
        {
            var ex = await Assert.ThrowsAsync<NacelleException>(() => client.ResolveAsync(reference, null, Timeout()));
            Assert.Equal(ErrorKind.InvalidArgument, ex.Kind);
            Assert.Contains("/nonexistent/key.pem", ex.Message);
        }
    }
}
