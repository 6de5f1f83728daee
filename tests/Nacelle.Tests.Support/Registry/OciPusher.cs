using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Nacelle.Tests.Support.Registry;

/// <summary>
/// Publishes blobs and manifests to a registry (OCI distribution push: POST an upload, PUT it with <c>?digest=</c>;
/// PUT manifests with their Content-Type), over HTTP or HTTPS, anonymously, with Basic credentials or with bearer
/// tokens fetched from the registry's token realm (scope <c>repository:NAME:pull,push</c>).
/// </summary>
public sealed partial class OciPusher : IDisposable
{
    private readonly HttpClient _client;
    private readonly string? _username;
    private readonly string? _password;
    private readonly ConcurrentDictionary<string, string> _tokens = new(StringComparer.Ordinal);
    private string? _scheme;

    /// <summary>Creates a pusher for <paramref name="host"/> (<c>127.0.0.1:PORT</c>).</summary>
    /// <param name="host">The registry host and port.</param>
    /// <param name="tls">Use HTTPS.</param>
    /// <param name="caPemPath">A CA bundle trusted for the registry (HTTPS); null: system CAs.</param>
    /// <param name="username">Basic credentials (also used at the token realm); null: anonymous.</param>
    /// <param name="password">The password.</param>
    /// <param name="clientCertPath">A PEM client certificate for mutual TLS, or null.</param>
    /// <param name="clientKeyPath">Its PEM private key.</param>
    public OciPusher(string host, bool tls = false, string? caPemPath = null, string? username = null, string? password = null,
        string? clientCertPath = null, string? clientKeyPath = null)
    {
        Host = host;
        BaseUri = new Uri($"{(tls ? "https" : "http")}://{host}/");
        _username = username;
        _password = password;
        var handler = new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false };
        if (caPemPath is not null)
        {
            X509Certificate2Collection roots = [];
            roots.ImportFromPemFile(caPemPath);
            handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, errors) =>
            {
                if (errors == System.Net.Security.SslPolicyErrors.None)
                    return true;
                if (cert is null)
                    return false;
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.AddRange(roots);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                using var leaf = new X509Certificate2(cert);
                return chain.Build(leaf);
            };
        }
        if (clientCertPath is not null)
            handler.SslOptions.ClientCertificates = [X509Certificate2.CreateFromPemFile(clientCertPath, clientKeyPath)];
        _client = new HttpClient(handler) { Timeout = TimeSpan.FromMinutes(10) };
    }

    /// <summary>The registry host, <c>127.0.0.1:PORT</c>.</summary>
    public string Host { get; }

    /// <summary>The registry base URL.</summary>
    public Uri BaseUri { get; }

    /// <summary>The sha256 digest (<c>sha256:hex</c>) of <paramref name="data"/>.</summary>
    public static string Digest(ReadOnlySpan<byte> data) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));

    /// <summary>The sha256 digest of a file, streamed.</summary>
    public static string DigestOfFile(string path)
    {
        using FileStream f = File.OpenRead(path);
        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(f));
    }

    /// <summary>Uploads <paramref name="content"/> as a blob of <paramref name="repository"/> (skipped when present) and returns its digest.</summary>
    public async Task<string> PushBlobAsync(string repository, byte[] content, CancellationToken cancellationToken = default)
    {
        string digest = Digest(content);
        await UploadAsync(repository, digest, () => new ByteArrayContent(content), cancellationToken).ConfigureAwait(false);
        return digest;
    }

    /// <summary>Uploads a file as a blob, streaming it (for large layers), and returns its digest.</summary>
    public async Task<string> PushBlobFileAsync(string repository, string path, CancellationToken cancellationToken = default)
    {
        string digest = DigestOfFile(path);
        await UploadAsync(repository, digest, () => new StreamContent(File.OpenRead(path), 1024 * 1024), cancellationToken).ConfigureAwait(false);
        return digest;
    }

    /// <summary>Whether the blob exists in <paramref name="repository"/> (HEAD).</summary>
    public async Task<bool> BlobExistsAsync(string repository, string digest, CancellationToken cancellationToken = default)
    {
        using HttpResponseMessage r = await SendAsync(repository,
            () => new HttpRequestMessage(HttpMethod.Head, new Uri(BaseUri, $"v2/{repository}/blobs/{digest}")), cancellationToken).ConfigureAwait(false);
        return r.StatusCode == HttpStatusCode.OK;
    }

    /// <summary>PUTs a manifest (or index) under <paramref name="reference"/> (a tag or its digest) and returns its digest.</summary>
    public async Task<string> PushManifestAsync(string repository, string reference, string mediaType, byte[] body, CancellationToken cancellationToken = default)
    {
        using HttpResponseMessage r = await SendAsync(repository, () =>
        {
            var content = new ByteArrayContent(body);
            content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
            return new HttpRequestMessage(HttpMethod.Put, new Uri(BaseUri, $"v2/{repository}/manifests/{reference}")) { Content = content };
        }, cancellationToken).ConfigureAwait(false);
        await EnsureAsync(r, $"PUT manifest {repository}:{reference}", HttpStatusCode.Created).ConfigureAwait(false);
        return Digest(body);
    }

    private async Task UploadAsync(string repository, string digest, Func<HttpContent> content, CancellationToken cancellationToken)
    {
        if (await BlobExistsAsync(repository, digest, cancellationToken).ConfigureAwait(false))
            return;
        Uri location;
        using (HttpResponseMessage start = await SendAsync(repository,
                   () => new HttpRequestMessage(HttpMethod.Post, new Uri(BaseUri, $"v2/{repository}/blobs/uploads/")), cancellationToken).ConfigureAwait(false))
        {
            await EnsureAsync(start, $"POST upload {repository}", HttpStatusCode.Accepted).ConfigureAwait(false);
            location = start.Headers.Location ?? throw new InvalidOperationException("upload answered without Location");
            if (!location.IsAbsoluteUri)
                location = new Uri(BaseUri, location);
        }
        string separator = location.Query.Length > 0 ? "&" : "?";
        var put = new Uri(location + separator + "digest=" + Uri.EscapeDataString(digest));
        using HttpResponseMessage done = await SendAsync(repository, () =>
        {
            HttpContent c = content();
            c.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            return new HttpRequestMessage(HttpMethod.Put, put) { Content = c };
        }, cancellationToken).ConfigureAwait(false);
        await EnsureAsync(done, $"PUT blob {digest} to {repository}", HttpStatusCode.Created).ConfigureAwait(false);
    }

    private async Task<HttpResponseMessage> SendAsync(string repository, Func<HttpRequestMessage> build, CancellationToken cancellationToken)
    {
        for (int round = 0; ; round++)
        {
            HttpRequestMessage request = build();
            if (_tokens.TryGetValue(repository, out string? token))
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            else if (_scheme == "basic" && _username is not null)
                request.Headers.Authorization = BasicHeader();
            HttpResponseMessage response = await _client.SendAsync(request, cancellationToken).ConfigureAwait(false);
            request.Dispose();
            if (response.StatusCode != HttpStatusCode.Unauthorized || round > 0)
                return response;
            string challenge = response.Headers.WwwAuthenticate.ToString();
            response.Dispose();
            if (challenge.StartsWith("Basic", StringComparison.OrdinalIgnoreCase))
            {
                _scheme = "basic";
            }
            else if (challenge.StartsWith("Bearer", StringComparison.OrdinalIgnoreCase))
            {
                _tokens[repository] = await FetchTokenAsync(challenge, repository, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                throw new InvalidOperationException($"registry answered 401 with an unknown challenge '{challenge}'");
            }
        }
    }

    private async Task<string> FetchTokenAsync(string challenge, string repository, CancellationToken cancellationToken)
    {
        Dictionary<string, string> p = ChallengeParameter().Matches(challenge).ToDictionary(m => m.Groups[1].Value.ToLowerInvariant(), m => m.Groups[2].Value);
        string realm = p["realm"];
        string query = $"service={Uri.EscapeDataString(p.GetValueOrDefault("service", ""))}&scope={Uri.EscapeDataString($"repository:{repository}:pull,push")}";
        using var request = new HttpRequestMessage(HttpMethod.Get, realm + (realm.Contains('?') ? "&" : "?") + query);
        if (_username is not null)
            request.Headers.Authorization = BasicHeader();
        using HttpResponseMessage response = await _client.SendAsync(request, cancellationToken).ConfigureAwait(false);
        await EnsureAsync(response, $"token for {repository}", HttpStatusCode.OK).ConfigureAwait(false);
        using JsonDocument doc = JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false));
        return doc.RootElement.TryGetProperty("token", out JsonElement t) ? t.GetString()! : doc.RootElement.GetProperty("access_token").GetString()!;
    }

    private AuthenticationHeaderValue BasicHeader() =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{_username}:{_password}")));

    private static async Task EnsureAsync(HttpResponseMessage response, string what, HttpStatusCode expected)
    {
        if (response.StatusCode == expected || (expected == HttpStatusCode.Created && response.StatusCode is HttpStatusCode.OK or HttpStatusCode.Accepted))
            return;
        string body = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
        throw new InvalidOperationException($"{what} answered {(int)response.StatusCode} {response.ReasonPhrase}: {body}");
    }

    [GeneratedRegex("([A-Za-z_]+)=\"([^\"]*)\"")]
    private static partial Regex ChallengeParameter();

    /// <summary>Disposes the HTTP client.</summary>
    public void Dispose() => _client.Dispose();
}
