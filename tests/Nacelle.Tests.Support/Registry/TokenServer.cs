using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Nacelle.Tests.Support.Registry;

/// <summary>
/// A registry token server in the test process: issues RS256 JWTs for docker-registry's <c>auth.token</c>, signed by
/// a key whose self-signed certificate the registry trusts (its rootcertbundle). GET with optional Basic credentials,
/// or POST <c>grant_type=refresh_token</c> with the configured identity token. Counts requests per scope.
/// </summary>
public sealed class TokenServer : IAsyncDisposable
{
    private readonly RSA _key;
    private readonly string _keyId;
    private readonly ConcurrentDictionary<string, int> _requestsByScope = new(StringComparer.Ordinal);
    private LoopbackHttpServer? _http;
    private int _total;

    private TokenServer(string service, string issuer, string? username, string? password, string? identityToken, bool allowAnonymous)
    {
        Service = service;
        Issuer = issuer;
        Username = username;
        Password = password;
        IdentityToken = identityToken;
        AllowAnonymous = allowAnonymous;
        _key = RSA.Create(2048);
        var request = new CertificateRequest("CN=nacelle test token signer", _key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        DateTimeOffset now = DateTimeOffset.UtcNow;
        using X509Certificate2 cert = request.CreateSelfSigned(now.AddHours(-1), now.AddDays(7));
        SigningCertificatePem = cert.ExportCertificatePem();
        _keyId = LibtrustKeyId(_key.ExportSubjectPublicKeyInfo());
    }

    /// <summary>The <c>service</c> (JWT audience) the registry expects.</summary>
    public string Service { get; }

    /// <summary>The JWT issuer the registry expects.</summary>
    public string Issuer { get; }

    /// <summary>The user accepted with Basic credentials (null: none configured).</summary>
    public string? Username { get; }

    /// <summary>The password of <see cref="Username"/>.</summary>
    public string? Password { get; }

    /// <summary>The refresh token accepted by POST (null: POST refused).</summary>
    public string? IdentityToken { get; }

    /// <summary>Whether tokens are issued without credentials.</summary>
    public bool AllowAnonymous { get; }

    /// <summary>The certificate of the signing key, for the registry's rootcertbundle.</summary>
    public string SigningCertificatePem { get; }

    /// <summary>The token endpoint (the registry's realm).</summary>
    public Uri Realm => new(_http!.BaseUri, "token");

    /// <summary>Lifetime of issued tokens, in seconds (the expires_in answer).</summary>
    public int ExpiresInSeconds { get; set; } = 300;

    /// <summary>Token requests served (any outcome) for exactly this scope string.</summary>
    public int RequestsFor(string scope) => _requestsByScope.GetValueOrDefault(scope);

    /// <summary>All token requests served.</summary>
    public int TotalRequests => Volatile.Read(ref _total);

    /// <summary>Starts a token server on loopback.</summary>
    public static async Task<TokenServer> StartAsync(string service = "nacelle-test-registry", string issuer = "nacelle-test-issuer",
        string? username = null, string? password = null, string? identityToken = null, bool allowAnonymous = true)
    {
        var server = new TokenServer(service, issuer, username, password, identityToken, allowAnonymous);
        server._http = await LoopbackHttpServer.StartAsync(server.HandleAsync).ConfigureAwait(false);
        return server;
    }

    private async Task HandleAsync(HttpContext context)
    {
        if (context.Request.Path != "/token")
        {
            context.Response.StatusCode = 404;
            return;
        }
        Interlocked.Increment(ref _total);
        List<string> scopes;
        bool authorised;
        if (HttpMethods.IsPost(context.Request.Method))
        {
            IFormCollection form = await context.Request.ReadFormAsync().ConfigureAwait(false);
            scopes = [.. form["scope"].SelectMany(s => (s ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries))];
            string grant = form["grant_type"].ToString();
            authorised = grant switch
            {
                "refresh_token" => IdentityToken is not null && form["refresh_token"] == IdentityToken,
                "password" => Username is not null && form["username"] == Username && form["password"] == Password,
                _ => false,
            };
        }
        else
        {
            scopes = [.. context.Request.Query["scope"].SelectMany(s => (s ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries))];
            string header = context.Request.Headers.Authorization.ToString();
            if (header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
            {
                string decoded = Encoding.UTF8.GetString(Convert.FromBase64String(header[6..].Trim()));
                authorised = Username is not null && decoded == $"{Username}:{Password}";
            }
            else
            {
                authorised = AllowAnonymous;
            }
        }
        foreach (string scope in scopes)
            _requestsByScope.AddOrUpdate(scope, 1, (_, n) => n + 1);
        if (!authorised)
        {
            context.Response.StatusCode = 401;
            return;
        }

        string token = Sign(scopes);
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["token"] = token,
            ["access_token"] = token,
            ["expires_in"] = ExpiresInSeconds,
            ["issued_at"] = DateTimeOffset.UtcNow.ToString("O"),
        })).ConfigureAwait(false);
    }

    private string Sign(IEnumerable<string> scopes)
    {
        List<Dictionary<string, object>> access = [];
        foreach (string scope in scopes)
        {
            int first = scope.IndexOf(':');
            int last = scope.LastIndexOf(':');
            if (first < 0 || last <= first)
                continue;
            access.Add(new Dictionary<string, object>
            {
                ["type"] = scope[..first],
                ["name"] = scope[(first + 1)..last],
                ["actions"] = scope[(last + 1)..].Split(','),
            });
        }
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        string header = JsonSerializer.Serialize(new Dictionary<string, object> { ["typ"] = "JWT", ["alg"] = "RS256", ["kid"] = _keyId });
        string claims = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["iss"] = Issuer,
            ["sub"] = Username ?? "anonymous",
            ["aud"] = Service,
            ["exp"] = now + ExpiresInSeconds,
            ["nbf"] = now - 60,
            ["iat"] = now,
            ["jti"] = Convert.ToHexString(RandomNumberGenerator.GetBytes(8)),
            ["access"] = access,
        });
        string signingInput = Base64Url(Encoding.UTF8.GetBytes(header)) + "." + Base64Url(Encoding.UTF8.GetBytes(claims));
        byte[] signature = _key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return signingInput + "." + Base64Url(signature);
    }

    private static string Base64Url(byte[] data) => Convert.ToBase64String(data).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    // docker-registry finds trusted keys by a "libtrust" key id: base32 of the first 30 bytes of the SHA-256 of the
    // DER SubjectPublicKeyInfo, without padding, in groups of four joined by ':'.
    private static string LibtrustKeyId(byte[] subjectPublicKeyInfo)
    {
        byte[] hash = SHA256.HashData(subjectPublicKeyInfo)[..30];
        const string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        var bits = new StringBuilder();
        int buffer = 0, count = 0;
        foreach (byte b in hash)
        {
            buffer = (buffer << 8) | b;
            count += 8;
            while (count >= 5)
            {
                bits.Append(alphabet[(buffer >> (count - 5)) & 31]);
                count -= 5;
            }
        }
        if (count > 0)
            bits.Append(alphabet[(buffer << (5 - count)) & 31]);
        string encoded = bits.ToString();
        return string.Join(':', Enumerable.Range(0, encoded.Length / 4).Select(i => encoded.Substring(i * 4, 4)));
    }

    /// <summary>Stops the server and disposes the key.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_http is not null)
            await _http.DisposeAsync().ConfigureAwait(false);
        _key.Dispose();
    }
}
