using System.Text.Json;
using Nacelle.Common;
using Nacelle.ImageService.References;

namespace Nacelle.ImageService.Registry;

/// <summary>
/// Registry credentials kept on the node, in the Docker <c>config.json</c> format kubelet's own credential file uses:
/// <c>{"auths": {"registry.example:5000": {"auth": "&lt;base64 user:password&gt;"}, ...}}</c>, where an entry may instead
/// carry <c>username</c>/<c>password</c>, an <c>identitytoken</c> (a refresh token for the registry's token server) or a
/// <c>registrytoken</c>. Keys may be written as hosts or URLs (<c>https://index.docker.io/v1/</c> is Docker Hub).
/// Credential helpers (<c>credHelpers</c>, <c>credsStore</c>) run programs and are refused. The file is read again when
/// it changes, so rotated credentials apply to the next pull. Nothing read here is ever logged.
/// </summary>
public sealed class NodeCredentials
{
    private readonly Lock _gate = new();
    private (DateTime Modified, long Length, IReadOnlyDictionary<string, RegistryCredentials> Entries)? _loaded;

    public NodeCredentials(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Path = path;
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>Reads the file now; throws InvalidArgument naming the file and what is wrong (used at daemon start).</summary>
    public int Validate() => Current().Count;

    /// <summary>
    /// The credentials for <paramref name="host"/> (host[:port] as in image names or mirror URLs), or null. Throws
    /// FailedPrecondition when the file became unreadable or invalid since it was last read.
    /// </summary>
    public RegistryCredentials? For(string host)
    {
        IReadOnlyDictionary<string, RegistryCredentials> entries;
        try
        {
            entries = Current();
        }
        catch (NacelleException e)
        {
            throw NacelleException.FailedPrecondition(e.Message);
        }

        return entries.TryGetValue(NormaliseHost(host), out var credentials) ? credentials : null;
    }

    /// <summary>A config.json key (host, host:port or URL) as the registry host it names; Docker Hub's names are docker.io.</summary>
    public static string NormaliseHost(string key)
    {
        var host = key.Trim();
        var scheme = host.IndexOf("://", StringComparison.Ordinal);
        if (scheme >= 0)
        {
            host = host[(scheme + 3)..];
        }

        var slash = host.IndexOf('/');
        if (slash >= 0)
        {
            host = host[..slash];
        }

        host = host.ToLowerInvariant();
        return host is "index.docker.io" or "registry-1.docker.io" or "registry.hub.docker.com" ? ImageReference.DockerHubDomain : host;
    }

    private IReadOnlyDictionary<string, RegistryCredentials> Current()
    {
        FileInfo info;
        try
        {
            info = new FileInfo(Path);
            if (!info.Exists)
            {
                throw Invalid("the file does not exist");
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Invalid(e.Message);
        }

        lock (_gate)
        {
            if (_loaded is { } loaded && loaded.Modified == info.LastWriteTimeUtc && loaded.Length == info.Length)
            {
                return loaded.Entries;
            }
        }

        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(Path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Invalid($"cannot read it: {e.Message}");
        }

        var entries = Parse(bytes);
        lock (_gate)
        {
            _loaded = (info.LastWriteTimeUtc, info.Length, entries);
        }

        return entries;
    }

    private Dictionary<string, RegistryCredentials> Parse(byte[] bytes)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(bytes);
        }
        catch (JsonException e)
        {
            // Only the position: the parser's message may quote the content, which holds secrets.
            throw Invalid($"not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1})");
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw Invalid("expected a JSON object with \"auths\"");
            }

            foreach (var helperKey in new[] { "credHelpers", "credsStore" })
            {
                if (root.TryGetProperty(helperKey, out var helpers) && IsSet(helpers))
                {
                    throw Invalid($"\"{helperKey}\" names credential helper programs, which nacelle does not run; " +
                        "write the registries' credentials under \"auths\" instead");
                }
            }

            var entries = new Dictionary<string, RegistryCredentials>(StringComparer.Ordinal);
            if (!root.TryGetProperty("auths", out var auths) || auths.ValueKind == JsonValueKind.Null)
            {
                return entries;
            }

            if (auths.ValueKind != JsonValueKind.Object)
            {
                throw Invalid("\"auths\" must be an object keyed by registry");
            }

            foreach (var entry in auths.EnumerateObject())
            {
                var host = NormaliseHost(entry.Name);
                if (host.Length == 0 || entry.Value.ValueKind != JsonValueKind.Object)
                {
                    throw Invalid($"auths entry \"{entry.Name}\" must name a registry and be an object");
                }

                var credentials = new RegistryCredentials(
                    Text(entry, "username"), Text(entry, "password"), Text(entry, "auth"), Text(entry, "identitytoken"), Text(entry, "registrytoken"));
                if (credentials.Auth is { } auth && !IsUserPassword(auth))
                {
                    throw Invalid($"auths entry \"{entry.Name}\": \"auth\" is not base64 of \"user:password\"");
                }

                if (credentials is { Username: null, Auth: null, IdentityToken: null, RegistryToken: null })
                {
                    throw Invalid($"auths entry \"{entry.Name}\" has none of auth, username, identitytoken, registrytoken");
                }

                // Two spellings of one registry (docker.io and https://index.docker.io/v1/): the first wins, as in Docker.
                entries.TryAdd(host, credentials);
            }

            return entries;
        }
    }

    private string? Text(JsonProperty entry, string name)
    {
        if (!entry.Value.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.String)
        {
            throw Invalid($"auths entry \"{entry.Name}\": \"{name}\" must be a string");
        }

        var text = value.GetString();
        return string.IsNullOrEmpty(text) ? null : text;
    }

    private static bool IsSet(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Object => value.EnumerateObject().Any(),
        JsonValueKind.String => value.GetString()!.Length > 0,
        JsonValueKind.Null => false,
        _ => true,
    };

    private static bool IsUserPassword(string auth)
    {
        try
        {
            var decoded = System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(auth));
            return decoded.IndexOf(':') > 0;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    private NacelleException Invalid(string why) => NacelleException.InvalidArgument($"registry.auth_file {Path}: {why}");
}
