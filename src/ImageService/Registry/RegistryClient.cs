using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Nacelle.Common;
using Nacelle.ImageService.Manifests;
using Nacelle.ImageService.References;

namespace Nacelle.ImageService.Registry;

/// <summary>
/// An OCI distribution client: resolves references to a platform manifest and streams blobs. It pings <c>/v2/</c>,
/// authenticates anonymously, with Basic credentials or with bearer tokens (cached per realm, scope and credentials
/// until they expire; the node's credentials file when a pull brings none), tries mirrors before the origin (or the
/// server that replaces it, or no origin at all), retries transient failures with exponential backoff and
/// resumes interrupted blob downloads with Range requests. Thread-safe; one instance serves many pulls.
/// </summary>
public sealed class RegistryClient : IDisposable
{
    private const int MaxManifestBytes = 4 * 1024 * 1024;
    private const string DockerHubEndpoint = "registry-1.docker.io";

    private readonly Platform _platform;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, CachedToken> _tokens = new(StringComparer.Ordinal);
    private readonly List<HttpClient> _retiredClients = [];
    // Replaced together by Reconfigure: requests under way keep the options and clients they started with.
    private volatile RegistryOptions _options;
    private volatile ConcurrentDictionary<string, HttpClient> _clients = new(StringComparer.Ordinal);
    private volatile ConcurrentDictionary<string, Lazy<Task<Uri>>> _originBases = new(StringComparer.Ordinal);
    private volatile ConcurrentDictionary<string, AuthChallenge?> _pings = new(StringComparer.Ordinal);
    private bool _disposed;

    /// <summary>Creates a client for <paramref name="platform"/> (usually <see cref="Platform.Current"/>).</summary>
    public RegistryClient(RegistryOptions options, Platform platform, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(platform);
        ArgumentNullException.ThrowIfNull(logger);
        Check(options);
        _options = options;
        _platform = platform;
        _logger = logger;
    }

    private static void Check(RegistryOptions options)
    {
        if (options.MaxAttempts < 1)
            throw NacelleException.InvalidArgument($"registry MaxAttempts must be at least 1, not {options.MaxAttempts}");
        if (options.NoProgressTimeout <= TimeSpan.Zero)
            throw NacelleException.InvalidArgument("registry NoProgressTimeout must be positive");
    }

    /// <summary>
    /// Replaces the options (a configuration reload): later requests use the new hosts, mirrors, credentials and
    /// limits, with new HTTP clients (CA and client certificate files read again); requests under way finish with the
    /// old ones, which are disposed with this client. Tokens stay cached (they are keyed by realm and credentials).
    /// </summary>
    public void Reconfigure(RegistryOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ObjectDisposedException.ThrowIf(_disposed, this);
        Check(options);
        lock (_retiredClients)
        {
            var old = _clients;
            _options = options;
            _clients = new ConcurrentDictionary<string, HttpClient>(StringComparer.Ordinal);
            _originBases = new ConcurrentDictionary<string, Lazy<Task<Uri>>>(StringComparer.Ordinal);
            _pings = new ConcurrentDictionary<string, AuthChallenge?>(StringComparer.Ordinal);
            _retiredClients.AddRange(old.Values);
        }
    }

    /// <summary>
    /// Resolves <paramref name="reference"/> to this node's platform manifest, verifying every manifest digest.
    /// Throws NotFound for an unknown repository, tag or digest, or when no manifest fits the platform;
    /// FailedPrecondition for unsupported content, Unauthenticated/PermissionDenied for refused credentials; Unavailable when no endpoint answers.
    /// </summary>
    public async Task<ResolvedImage> ResolveAsync(ImageReference reference, RegistryCredentials? credentials, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ObjectDisposedException.ThrowIf(_disposed, this);
        Log.Resolving(_logger, reference.ToString(), _platform.ToString());

        string topRef = reference.Digest ?? reference.Tag ?? "latest";
        Fetched top = await FetchManifestAsync(reference, topRef, reference.Digest, credentials, cancellationToken).ConfigureAwait(false);

        Fetched manifest = top;
        if (MediaTypes.IsIndex(top.MediaType))
        {
            IReadOnlyList<Descriptor> entries = ManifestParser.ParseIndex(top.Body);
            Descriptor chosen = ManifestParser.SelectPlatform(entries, _platform)
                ?? throw NacelleException.NotFound(
                    $"image {reference} has no manifest for platform {_platform} (available: {DescribePlatforms(entries)})");
            manifest = await FetchManifestAsync(reference, chosen.Digest, chosen.Digest, credentials, cancellationToken).ConfigureAwait(false);
            if (MediaTypes.IsIndex(manifest.MediaType))
                throw NacelleException.FailedPrecondition(
                    $"image {reference}: the index entry {chosen.Digest} for {_platform} is itself an index ({manifest.MediaType}); nested indexes are not supported");
        }

        ImageManifest parsed = ManifestParser.ParseManifest(manifest.Body, manifest.MediaType);
        Log.Resolved(_logger, reference.ToString(), top.Digest, top.MediaType, manifest.Digest, _platform.ToString(), parsed.Layers.Count);
        return new ResolvedImage(reference, top.Digest, manifest.Digest, manifest.MediaType, manifest.Body, parsed.Config, parsed.Layers);
    }

    /// <summary>
    /// Streams the blob into <paramref name="destination"/> (appending; no digest check here). Follows redirects, tries
    /// mirrors then the origin, retries transient failures resuming at the byte already written (Range when the server
    /// supports it, otherwise skipping the bytes already written), and fails an attempt when no byte arrives for
    /// <see cref="RegistryOptions.NoProgressTimeout"/>.
    /// </summary>
    public async Task DownloadBlobAsync(ImageReference reference, Descriptor blob, RegistryCredentials? credentials, Stream destination, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(blob);
        ArgumentNullException.ThrowIfNull(destination);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!ImageReference.IsValidDigest(blob.Digest))
            throw NacelleException.InvalidArgument($"blob digest '{blob.Digest}' is not valid");

        var progress = new DownloadProgress();
        string what = $"blob {blob.Digest} of {reference.Name}";
        await OverEndpointsAsync(reference, what, (endpoint, ct) => DownloadFromAsync(endpoint, reference, blob, credentials, destination, progress, ct),
            cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Disposes the HTTP clients.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        lock (_retiredClients)
        {
            foreach (HttpClient client in _clients.Values.Concat(_retiredClients))
                client.Dispose();
            _clients.Clear();
            _retiredClients.Clear();
        }
    }

    // ---------------------------------------------------------------- manifests

    private sealed record Fetched(string Digest, string MediaType, byte[] Body);

    private Task<Fetched> FetchManifestAsync(ImageReference reference, string tagOrDigest, string? expectedDigest,
        RegistryCredentials? credentials, CancellationToken cancellationToken)
    {
        string what = $"manifest {reference.Name}:{tagOrDigest}".Replace(":sha", "@sha", StringComparison.Ordinal);
        return OverEndpointsAsync(reference, what, async (endpoint, ct) =>
        {
            using HttpResponseMessage response = await SendAsync(endpoint, reference.Repository, baseUri =>
            {
                var request = new HttpRequestMessage(HttpMethod.Get, new Uri(baseUri, $"v2/{reference.Repository}/manifests/{tagOrDigest}"));
                foreach (string type in MediaTypes.AcceptedManifestTypes)
                    request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(type));
                // Ask for schema 1 last so a registry that only has it tells us so (and we refuse it clearly).
                request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(MediaTypes.DockerSchema1SignedManifest, 0.1));
                return request;
            }, credentials, what, ct).ConfigureAwait(false);
            EnsureSuccess(response, endpoint, what);

            if (response.Content.Headers.ContentLength is long declared && declared > MaxManifestBytes)
                throw NacelleException.FailedPrecondition($"{what} is {declared} bytes, more than the {MaxManifestBytes} bytes a manifest may have");
            byte[] body = await ReadAllAsync(response, MaxManifestBytes, what, ct).ConfigureAwait(false);

            string mediaType = ManifestParser.DetermineMediaType(response.Content.Headers.ContentType?.MediaType, body);
            string algorithm = expectedDigest?.Split(':')[0] ?? "sha256";
            string digest = ComputeDigest(algorithm, body);
            if (expectedDigest is not null && digest != expectedDigest)
                throw NacelleException.FailedPrecondition($"{what} from {endpoint.Display}: content has digest {digest}, expected {expectedDigest}");
            if (response.Headers.TryGetValues("Docker-Content-Digest", out IEnumerable<string>? values) &&
                values.FirstOrDefault() is { } served && ImageReference.IsValidDigest(served))
            {
                string check = ComputeDigest(served.Split(':')[0], body);
                if (check != served)
                    throw NacelleException.FailedPrecondition(
                        $"{what} from {endpoint.Display}: Docker-Content-Digest says {served} but the content has digest {check}");
            }
            return new Fetched(digest, mediaType, body);
        }, cancellationToken);
    }

    private static string ComputeDigest(string algorithm, byte[] body) => algorithm switch
    {
        "sha512" => "sha512:" + Convert.ToHexStringLower(SHA512.HashData(body)),
        _ => Content.Digests.Of(body),
    };

    private static string DescribePlatforms(IReadOnlyList<Descriptor> entries)
    {
        string list = string.Join(", ", entries.Where(e => e.Platform is not null).Select(e => e.Platform!.ToString()).Distinct());
        return list.Length == 0 ? "none" : list;
    }

    // ---------------------------------------------------------------- blobs

    private sealed class DownloadProgress
    {
        public long Written;
    }

    private async Task<bool> DownloadFromAsync(Endpoint endpoint, ImageReference reference, Descriptor blob, RegistryCredentials? credentials,
        Stream destination, DownloadProgress progress, CancellationToken cancellationToken)
    {
        string what = $"blob {blob.Digest}";
        long offset = progress.Written;
        if (offset > 0)
            Log.Resuming(_logger, blob.Digest, offset, endpoint.Display);

        using HttpResponseMessage response = await SendAsync(endpoint, reference.Repository, baseUri =>
        {
            var request = new HttpRequestMessage(HttpMethod.Get, new Uri(baseUri, $"v2/{reference.Repository}/blobs/{blob.Digest}"));
            if (offset > 0)
                request.Headers.Range = new RangeHeaderValue(offset, null);
            return request;
        }, credentials, what, cancellationToken).ConfigureAwait(false);

        if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && offset > 0 && offset >= blob.Size)
            return true;
        EnsureSuccess(response, endpoint, what);

        long skip = 0;
        if (offset > 0)
        {
            if (response.StatusCode == HttpStatusCode.PartialContent && response.Content.Headers.ContentRange?.From is long from)
            {
                if (from > offset)
                    throw new TransientException($"server answered the range request from byte {offset} with bytes from {from}");
                skip = offset - from;
            }
            else
            {
                Log.RangeIgnored(_logger, endpoint.Display, blob.Digest, offset);
                skip = offset;
            }
        }

        Stream body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (body.ConfigureAwait(false))
        {
            byte[] buffer = new byte[128 * 1024];
            using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            while (true)
            {
                stall.CancelAfter(_options.NoProgressTimeout);
                int n;
                try
                {
                    n = await body.ReadAsync(buffer, stall.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new TransientException(
                        $"no data for {_options.NoProgressTimeout.TotalSeconds:0.#} s after {progress.Written} of {blob.Size} bytes");
                }
                catch (Exception ex) when (ex is IOException or HttpRequestException)
                {
                    throw new TransientException($"connection failed after {progress.Written} of {blob.Size} bytes: {ex.Message}", ex);
                }
                if (n == 0)
                    break;
                int start = 0;
                if (skip > 0)
                {
                    int drop = (int)Math.Min(skip, n);
                    skip -= drop;
                    start = drop;
                }
                if (n - start > 0)
                {
                    if (blob.Size > 0 && progress.Written + (n - start) > blob.Size)
                        throw NacelleException.FailedPrecondition(
                            $"{what} from {endpoint.Display} is larger than the {blob.Size} bytes its descriptor says");
                    await destination.WriteAsync(buffer.AsMemory(start, n - start), cancellationToken).ConfigureAwait(false);
                    progress.Written += n - start;
                }
            }
        }

        if (blob.Size > 0 && progress.Written < blob.Size)
            throw new TransientException($"connection closed after {progress.Written} of {blob.Size} bytes");
        Log.BlobDownloaded(_logger, blob.Digest, progress.Written, endpoint.Display);
        return true;
    }

    // ---------------------------------------------------------------- endpoints, retries

    /// <summary>
    /// One place a registry's content may come from. <paramref name="Attempts"/>: a mirror followed by another endpoint gets
    /// one (the next endpoint is the better retry), the last endpoint the configured budget. <paramref name="CredentialHost"/>:
    /// the host whose node credentials apply when the pull brings none.
    /// </summary>
    private sealed record Endpoint(string Display, bool IsMirror, int Attempts, string CredentialHost, HttpClient Client,
        Func<CancellationToken, Task<Uri>> BaseUri);

    /// <summary>A failure worth retrying on the same endpoint (connection error, 5xx, 429, stall).</summary>
    private sealed class TransientException(string message, Exception? inner = null) : Exception(message, inner);

    private async Task<T> OverEndpointsAsync<T>(ImageReference reference, string what, Func<Endpoint, CancellationToken, Task<T>> action,
        CancellationToken cancellationToken)
    {
        IReadOnlyList<Endpoint> endpoints = EndpointsFor(reference.Domain);
        for (int e = 0; ; e++)
        {
            Endpoint endpoint = endpoints[e];
            try
            {
                return await WithRetriesAsync(endpoint, what, action, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (endpoint.IsMirror && e < endpoints.Count - 1 && !cancellationToken.IsCancellationRequested)
            {
                Log.MirrorFailed(_logger, endpoint.Display, what, ex.Message);
            }
            catch (NacelleException ex) when (endpoint.IsMirror)
            {
                // The last mirror of a registry without fallback: say why the origin was not tried.
                throw new NacelleException(ex.Kind,
                    $"{ex.Message} (registry {reference.Domain} is served by its mirrors only: fallback = false)", ex);
            }
        }
    }

    private async Task<T> WithRetriesAsync<T>(Endpoint endpoint, string what, Func<Endpoint, CancellationToken, Task<T>> action,
        CancellationToken cancellationToken)
    {
        int maxAttempts = endpoint.Attempts;
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await action(endpoint, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsTransient(ex, cancellationToken))
            {
                string reason = Describe(ex);
                if (attempt >= maxAttempts)
                    throw new NacelleException(ErrorKind.Unavailable,
                        $"{what} from {endpoint.Display} failed after {attempt} attempt(s): {reason}", ex);
                TimeSpan delay = _options.InitialBackoff * Math.Pow(2, attempt - 1);
                Log.Retrying(_logger, what, endpoint.Display, attempt, maxAttempts, reason, (long)delay.TotalMilliseconds);
                await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private static bool IsTransient(Exception ex, CancellationToken cancellationToken) =>
        ex is TransientException or HttpRequestException or IOException ||
        (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested);

    private static string Describe(Exception ex)
    {
        string message = ex.Message;
        for (Exception? inner = ex.InnerException; inner is not null && ex is HttpRequestException; inner = inner.InnerException)
        {
            if (!message.Contains(inner.Message, StringComparison.Ordinal))
                message += " (" + inner.Message + ")";
        }
        return message;
    }

    private IReadOnlyList<Endpoint> EndpointsFor(string domain)
    {
        RegistryHostConfig? config = FindHost(domain);
        List<(string Display, bool IsMirror, string CredentialHost, HttpClient Client, Func<CancellationToken, Task<Uri>> BaseUri)> found = [];
        foreach (string mirror in config?.Mirrors ?? [])
        {
            Uri baseUri = EndpointBase(mirror, $"registry mirror '{mirror}' for {domain}");
            HttpClient client = ClientFor(FindHost(baseUri.Authority));
            found.Add((baseUri.ToString().TrimEnd('/'), true, baseUri.Authority, client, _ => Task.FromResult(baseUri)));
        }

        if (config is { Fallback: false })
        {
            // Air-gapped: the mirrors only; the origin is never contacted, not even on a miss.
            if (found.Count == 0)
                throw NacelleException.FailedPrecondition($"registry {domain} has fallback = false and no mirrors: there is nowhere to pull from");
        }
        else if (!string.IsNullOrEmpty(config?.Server))
        {
            // The registry is served from another URL, with this host's TLS settings; its own host is never contacted.
            Uri serverUri = EndpointBase(config.Server, $"registry server '{config.Server}' for {domain}");
            found.Add((serverUri.ToString().TrimEnd('/'), false, serverUri.Authority, ClientFor(config), _ => Task.FromResult(serverUri)));
        }
        else
        {
            string host = OriginHost(domain);
            HttpClient originClient = ClientFor(config);
            found.Add((host, false, domain, originClient, ct => OriginBaseAsync(host, config, originClient, ct)));
        }

        return [.. found.Select((e, i) => new Endpoint(e.Display, e.IsMirror, e.IsMirror && i < found.Count - 1 ? 1 : _options.MaxAttempts,
            e.CredentialHost, e.Client, e.BaseUri))];
    }

    /// <summary>The base URL of a mirror or server URL (an optional path prefix kept, a trailing /v2 dropped).</summary>
    private static Uri EndpointBase(string url, string what)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out Uri? uri) || uri.Scheme is not ("http" or "https"))
            throw NacelleException.InvalidArgument($"{what} is not an http(s) URL");
        string path = uri.AbsolutePath.TrimEnd('/');
        if (path.EndsWith("/v2", StringComparison.Ordinal))
            path = path[..^3];
        return new Uri($"{uri.Scheme}://{uri.Authority}{path}/");
    }

    /// <summary>The host that serves <paramref name="domain"/>: docker.io is served by registry-1.docker.io.</summary>
    internal static string OriginHost(string domain) => domain == ImageReference.DockerHubDomain ? DockerHubEndpoint : domain;

    /// <summary>Whether a registry host (with optional port) is on loopback: localhost, 127.0.0.0/8 or ::1.</summary>
    internal static bool IsLoopbackHost(string host) => IsLoopback(host);

    private RegistryHostConfig? FindHost(string domain)
    {
        foreach (RegistryHostConfig h in _options.Hosts)
        {
            if (string.Equals(h.Host, domain, StringComparison.OrdinalIgnoreCase))
                return h;
            if (domain == ImageReference.DockerHubDomain && h.Host is "registry-1.docker.io" or "index.docker.io")
                return h;
        }
        return null;
    }

    private Task<Uri> OriginBaseAsync(string host, RegistryHostConfig? config, HttpClient client, CancellationToken cancellationToken)
    {
        if (config?.PlainHttp == true)
            return Task.FromResult(new Uri($"http://{host}/"));
        if (!IsLoopback(host))
            return Task.FromResult(new Uri($"https://{host}/"));
        // Loopback: HTTPS first, plain HTTP when TLS cannot be spoken (as Docker does). Decided once per host.
        // A failed probe is forgotten so the next attempt probes again.
        Lazy<Task<Uri>> lazy = _originBases.GetOrAdd(host, h => new Lazy<Task<Uri>>(() => ProbeLoopbackAsync(h, client)));
        if (lazy.Value.IsCompleted && !lazy.Value.IsCompletedSuccessfully)
        {
            _originBases.TryRemove(new KeyValuePair<string, Lazy<Task<Uri>>>(host, lazy));
            lazy = _originBases.GetOrAdd(host, h => new Lazy<Task<Uri>>(() => ProbeLoopbackAsync(h, client)));
        }
        return lazy.Value.WaitAsync(cancellationToken);
    }

    private async Task<Uri> ProbeLoopbackAsync(string host, HttpClient client)
    {
        var https = new Uri($"https://{host}/");
        using var timeout = new CancellationTokenSource(_options.NoProgressTimeout);
        try
        {
            using HttpResponseMessage r = await client.GetAsync(new Uri(https, "v2/"), HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
            return https;
        }
        catch (Exception tlsError) when (tlsError is HttpRequestException or IOException or OperationCanceledException)
        {
            var http = new Uri($"http://{host}/");
            try
            {
                using var t2 = new CancellationTokenSource(_options.NoProgressTimeout);
                using HttpResponseMessage r = await client.GetAsync(new Uri(http, "v2/"), HttpCompletionOption.ResponseHeadersRead, t2.Token).ConfigureAwait(false);
                if (r.StatusCode is HttpStatusCode.OK or HttpStatusCode.Unauthorized)
                {
                    Log.PlainHttpFallback(_logger, host, Describe(tlsError));
                    return http;
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException or OperationCanceledException)
            {
            }
            // Neither works: report the HTTPS failure (e.g. an untrusted certificate), which is the informative one.
            if (IsTlsFailure(tlsError))
                throw new NacelleException(ErrorKind.Unavailable, $"registry {host}: TLS connection failed: {Describe(tlsError)}", tlsError);
            throw new TransientException(Describe(tlsError), tlsError);
        }
    }

    private static bool IsTlsFailure(Exception ex)
    {
        for (Exception? e = ex; e is not null; e = e.InnerException)
        {
            if (e is AuthenticationException)
                return true;
        }
        return ex is HttpRequestException { HttpRequestError: HttpRequestError.SecureConnectionError };
    }

    private static bool IsLoopback(string host)
    {
        string name = host;
        if (name.StartsWith('['))
        {
            int close = name.IndexOf(']');
            name = close > 0 ? name[1..close] : name;
        }
        else
        {
            int colon = name.LastIndexOf(':');
            if (colon >= 0)
                name = name[..colon];
        }
        if (name.Equals("localhost", StringComparison.OrdinalIgnoreCase))
            return true;
        return IPAddress.TryParse(name, out IPAddress? ip) && IPAddress.IsLoopback(ip);
    }

    // ---------------------------------------------------------------- HTTP clients and TLS

    private HttpClient ClientFor(RegistryHostConfig? config)
    {
        string key = config is null ? "" : $"{config.Host}|{config.SkipVerify}|{config.CaFile}|{config.ClientCertFile}|{config.ClientKeyFile}";
        return _clients.GetOrAdd(key, _ => new HttpClient(CreateHandler(config), disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan });
    }

    private static SocketsHttpHandler CreateHandler(RegistryHostConfig? config)
    {
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = true, // the handler drops the Authorization header when following a redirect
            MaxAutomaticRedirections = 10,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = TimeSpan.FromSeconds(30),
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            UseCookies = false,
        };
        if (config is null)
            return handler;

        if (config.SkipVerify)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true;
        }
        else if (!string.IsNullOrEmpty(config.CaFile))
        {
            X509Certificate2Collection roots = new();
            try
            {
                roots.ImportFromPemFile(config.CaFile);
            }
            catch (Exception ex) when (ex is IOException or CryptographicException or UnauthorizedAccessException)
            {
                throw new NacelleException(ErrorKind.InvalidArgument, $"registry {config.Host}: cannot read CA file {config.CaFile}: {ex.Message}", ex);
            }
            if (roots.Count == 0)
                throw NacelleException.InvalidArgument($"registry {config.Host}: CA file {config.CaFile} holds no PEM certificate");
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, presented, errors) =>
                ValidateWithExtraRoots(certificate, presented, errors, roots);
        }

        if (!string.IsNullOrEmpty(config.ClientCertFile))
        {
            if (string.IsNullOrEmpty(config.ClientKeyFile))
                throw NacelleException.InvalidArgument($"registry {config.Host}: a client certificate needs ClientKeyFile too");
            try
            {
                X509Certificate2 cert = X509Certificate2.CreateFromPemFile(config.ClientCertFile, config.ClientKeyFile);
                handler.SslOptions.ClientCertificates = [cert];
            }
            catch (Exception ex) when (ex is IOException or CryptographicException or UnauthorizedAccessException)
            {
                throw new NacelleException(ErrorKind.InvalidArgument,
                    $"registry {config.Host}: cannot load client certificate {config.ClientCertFile} / key {config.ClientKeyFile}: {ex.Message}", ex);
            }
        }
        return handler;
    }

    private static bool ValidateWithExtraRoots(X509Certificate? certificate, X509Chain? presented, SslPolicyErrors errors, X509Certificate2Collection roots)
    {
        if (errors == SslPolicyErrors.None)
            return true;
        if (certificate is null || (errors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) != 0)
            return false;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (presented is not null)
        {
            foreach (X509ChainElement element in presented.ChainElements)
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
        }
        using var leaf = new X509Certificate2(certificate);
        return chain.Build(leaf);
    }

    // ---------------------------------------------------------------- authentication

    private sealed record CachedToken(string Token, DateTimeOffset Expires);

    private async Task<HttpResponseMessage> SendAsync(Endpoint endpoint, string repository, Func<Uri, HttpRequestMessage> build,
        RegistryCredentials? credentials, string what, CancellationToken cancellationToken)
    {
        // The pull's own credentials (kubelet's) go to every endpoint; without them, the node's for this endpoint's host.
        credentials ??= _options.NodeCredentials?.For(endpoint.CredentialHost);
        Uri baseUri = await endpoint.BaseUri(cancellationToken).ConfigureAwait(false);
        AuthChallenge? challenge = await PingAsync(endpoint, baseUri, cancellationToken).ConfigureAwait(false);
        string scope = $"repository:{repository}:pull";

        for (int round = 0; ; round++)
        {
            using HttpRequestMessage request = build(baseUri);
            AuthenticationHeaderValue? auth = await AuthorizationAsync(endpoint, challenge, scope, credentials, forceNewToken: round > 0, cancellationToken)
                .ConfigureAwait(false);
            request.Headers.Authorization = auth;
            HttpResponseMessage response = await SendWithHeaderTimeoutAsync(endpoint.Client, request, cancellationToken).ConfigureAwait(false);
            if (response.StatusCode != HttpStatusCode.Unauthorized || round > 0)
                return response;

            // 401: the registry may want a different scheme or scope than the ping said; retry once with what it asks now.
            AuthChallenge? fresh = ChallengeOf(response);
            if (fresh is null || (auth is not null && !fresh.IsBearer) || credentials?.RegistryToken is not null)
                return response;
            challenge = fresh;
            if (fresh.IsBearer && !string.IsNullOrEmpty(fresh.Scope))
                scope = fresh.Scope;
            response.Dispose();
        }
    }

    private async Task<HttpResponseMessage> SendWithHeaderTimeoutAsync(HttpClient client, HttpRequestMessage request, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.NoProgressTimeout);
        try
        {
            return await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TransientException($"no response within {_options.NoProgressTimeout.TotalSeconds:0.#} s");
        }
    }

    private async Task<AuthChallenge?> PingAsync(Endpoint endpoint, Uri baseUri, CancellationToken cancellationToken)
    {
        string key = baseUri.ToString();
        if (_pings.TryGetValue(key, out AuthChallenge? known))
            return known;
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(baseUri, "v2/"));
        using HttpResponseMessage response = await SendWithHeaderTimeoutAsync(endpoint.Client, request, cancellationToken).ConfigureAwait(false);
        AuthChallenge? challenge;
        if (response.StatusCode == HttpStatusCode.Unauthorized)
            challenge = ChallengeOf(response);
        else if (IsTransientStatus(response.StatusCode))
            throw new TransientException($"/v2/ answered {(int)response.StatusCode} {response.ReasonPhrase}");
        else
            challenge = null; // 200, or a registry that does not implement the ping (404): anonymous until a request says otherwise
        Log.Pinged(_logger, endpoint.Display, challenge?.Scheme ?? "none");
        _pings[key] = challenge;
        return challenge;
    }

    private static AuthChallenge? ChallengeOf(HttpResponseMessage response)
    {
        if (!response.Headers.TryGetValues("WWW-Authenticate", out IEnumerable<string>? values))
            return null;
        List<AuthChallenge> all = [.. values.SelectMany(AuthChallenge.Parse)];
        return all.FirstOrDefault(c => c.IsBearer) ?? all.FirstOrDefault(c => c.IsBasic);
    }

    private async Task<AuthenticationHeaderValue?> AuthorizationAsync(Endpoint endpoint, AuthChallenge? challenge, string scope,
        RegistryCredentials? credentials, bool forceNewToken, CancellationToken cancellationToken)
    {
        if (!string.IsNullOrEmpty(credentials?.RegistryToken))
            return new AuthenticationHeaderValue("Bearer", credentials.RegistryToken);
        if (challenge is null)
            return null;
        (string User, string Password)? basic = BasicOf(credentials);
        if (challenge.IsBasic)
            return basic is { } b ? new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{b.User}:{b.Password}"))) : null;
        if (!challenge.IsBearer)
            return null;

        string realm = challenge.Realm ?? throw NacelleException.FailedPrecondition($"registry {endpoint.Display} asks for a bearer token but names no realm");
        string service = challenge.Service ?? "";
        string key = $"{realm}|{service}|{scope}|{Fingerprint(credentials)}";
        if (!forceNewToken && _tokens.TryGetValue(key, out CachedToken? cached) && cached.Expires > DateTimeOffset.UtcNow)
            return new AuthenticationHeaderValue("Bearer", cached.Token);

        CachedToken token = await FetchTokenAsync(endpoint, realm, service, scope, basic, credentials?.IdentityToken, cancellationToken).ConfigureAwait(false);
        _tokens[key] = token;
        return new AuthenticationHeaderValue("Bearer", token.Token);
    }

    private async Task<CachedToken> FetchTokenAsync(Endpoint endpoint, string realm, string service, string scope,
        (string User, string Password)? basic, string? identityToken, CancellationToken cancellationToken)
    {
        if (!Uri.TryCreate(realm, UriKind.Absolute, out Uri? realmUri) || realmUri.Scheme is not ("http" or "https"))
            throw NacelleException.FailedPrecondition($"registry {endpoint.Display} names an invalid token realm '{realm}'");
        HttpClient client = FindHost(realmUri.Authority) is { } realmConfig ? ClientFor(realmConfig) : endpoint.Client;

        HttpRequestMessage request;
        if (!string.IsNullOrEmpty(identityToken))
        {
            request = new HttpRequestMessage(HttpMethod.Post, realmUri)
            {
                Content = new FormUrlEncodedContent(new Dictionary<string, string>
                {
                    ["grant_type"] = "refresh_token",
                    ["refresh_token"] = identityToken,
                    ["service"] = service,
                    ["scope"] = scope,
                    ["client_id"] = "nacelle",
                }),
            };
        }
        else
        {
            string query = $"service={Uri.EscapeDataString(service)}&scope={Uri.EscapeDataString(scope)}";
            var builder = new UriBuilder(realmUri) { Query = string.IsNullOrEmpty(realmUri.Query) ? query : realmUri.Query.TrimStart('?') + "&" + query };
            request = new HttpRequestMessage(HttpMethod.Get, builder.Uri);
            if (basic is { } b)
                request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{b.User}:{b.Password}")));
        }

        using (request)
        {
            using HttpResponseMessage response = await SendWithHeaderTimeoutAsync(client, request, cancellationToken).ConfigureAwait(false);
            if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
                throw new NacelleException(response.StatusCode == HttpStatusCode.Forbidden ? ErrorKind.PermissionDenied : ErrorKind.Unauthenticated,
                    $"token server {realmUri.GetLeftPart(UriPartial.Path)} refused {(basic is null && identityToken is null ? "anonymous access" : "the credentials")} for scope {scope} ({(int)response.StatusCode})");
            if (IsTransientStatus(response.StatusCode))
                throw new TransientException($"token server answered {(int)response.StatusCode} {response.ReasonPhrase}");
            if (!response.IsSuccessStatusCode)
                throw NacelleException.FailedPrecondition(
                    $"token server {realmUri.GetLeftPart(UriPartial.Path)} answered {(int)response.StatusCode} {response.ReasonPhrase} for scope {scope}");
            byte[] body = await ReadAllAsync(response, 1024 * 1024, "token response", cancellationToken).ConfigureAwait(false);
            TokenResponseJson? parsed;
            try
            {
                parsed = JsonSerializer.Deserialize(body, ImageJsonContext.Default.TokenResponseJson);
            }
            catch (JsonException)
            {
                parsed = null;
            }
            string? token = !string.IsNullOrEmpty(parsed?.Token) ? parsed.Token : parsed?.AccessToken;
            if (string.IsNullOrEmpty(token))
                throw NacelleException.FailedPrecondition($"token server {realmUri.GetLeftPart(UriPartial.Path)} answered without a token");
            int expiresIn = parsed!.ExpiresIn >= 60 ? parsed.ExpiresIn : 60; // the distribution spec's minimum
            Log.TokenFetched(_logger, realmUri.GetLeftPart(UriPartial.Path), scope, expiresIn);
            // Keep a margin so a token does not expire between the cache lookup and the request.
            return new CachedToken(token, DateTimeOffset.UtcNow.AddSeconds(expiresIn - Math.Min(30, expiresIn / 4)));
        }
    }

    private static (string User, string Password)? BasicOf(RegistryCredentials? credentials)
    {
        if (credentials is null)
            return null;
        if (!string.IsNullOrEmpty(credentials.Username))
            return (credentials.Username, credentials.Password ?? "");
        if (!string.IsNullOrEmpty(credentials.Auth))
        {
            string decoded;
            try
            {
                decoded = Encoding.UTF8.GetString(Convert.FromBase64String(credentials.Auth));
            }
            catch (FormatException)
            {
                throw NacelleException.InvalidArgument("registry auth is not valid base64 of \"user:password\"");
            }
            int colon = decoded.IndexOf(':');
            if (colon <= 0)
                throw NacelleException.InvalidArgument("registry auth does not decode to \"user:password\"");
            return (decoded[..colon], decoded[(colon + 1)..]);
        }
        return null;
    }

    private static string Fingerprint(RegistryCredentials? credentials)
    {
        if (credentials is null)
            return "anonymous";
        string material = $"{credentials.Username}\n{credentials.Password}\n{credentials.Auth}\n{credentials.IdentityToken}";
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(material)))[..16];
    }

    // ---------------------------------------------------------------- responses

    private static bool IsTransientStatus(HttpStatusCode status) => (int)status >= 500 || status == HttpStatusCode.TooManyRequests || status == HttpStatusCode.RequestTimeout;

    private static void EnsureSuccess(HttpResponseMessage response, Endpoint endpoint, string what)
    {
        if (response.IsSuccessStatusCode)
            return;
        int code = (int)response.StatusCode;
        string status = $"{code} {response.ReasonPhrase}";
        if (IsTransientStatus(response.StatusCode))
            throw new TransientException($"{endpoint.Display} answered {status}");
        throw response.StatusCode switch
        {
            HttpStatusCode.NotFound => NacelleException.NotFound($"{what} not found at {endpoint.Display} ({status})"),
            HttpStatusCode.Unauthorized => NacelleException.Unauthenticated(
                $"{what}: registry {endpoint.Display} requires authentication; the credentials given, if any, were not accepted ({status})"),
            HttpStatusCode.Forbidden => NacelleException.PermissionDenied($"{what}: registry {endpoint.Display} denied access ({status})"),
            HttpStatusCode.BadRequest => NacelleException.InvalidArgument($"{what}: registry {endpoint.Display} rejected the request ({status})"),
            _ => NacelleException.FailedPrecondition($"{what}: registry {endpoint.Display} answered {status}"),
        };
    }

    private async Task<byte[]> ReadAllAsync(HttpResponseMessage response, int limit, string what, CancellationToken cancellationToken)
    {
        Stream body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (body.ConfigureAwait(false))
        {
            using var buffer = new MemoryStream();
            byte[] chunk = new byte[64 * 1024];
            using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            while (true)
            {
                stall.CancelAfter(_options.NoProgressTimeout);
                int n;
                try
                {
                    n = await body.ReadAsync(chunk, stall.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new TransientException($"no data for {_options.NoProgressTimeout.TotalSeconds:0.#} s while reading {what}");
                }
                if (n == 0)
                    return buffer.ToArray();
                if (buffer.Length + n > limit)
                    throw NacelleException.FailedPrecondition($"{what} is larger than {limit} bytes");
                buffer.Write(chunk, 0, n);
            }
        }
    }
}
