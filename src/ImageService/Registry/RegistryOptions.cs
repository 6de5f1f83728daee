namespace Nacelle.ImageService.Registry;

/// <summary>How to reach one registry host: mirrors, plain HTTP, TLS trust and client certificates.</summary>
public sealed class RegistryHostConfig
{
    /// <summary>The registry host as it appears in image references, e.g. <c>registry.example:5000</c> or <c>docker.io</c>.</summary>
    public required string Host { get; init; }

    /// <summary>Mirror endpoint URLs (<c>https://mirror.example</c>, <c>http://127.0.0.1:5001</c>), tried in order before the origin.</summary>
    public IReadOnlyList<string> Mirrors { get; init; } = [];

    /// <summary>
    /// A URL that serves this registry in place of its own host (as containerd's hosts.toml <c>server</c> and CRI-O's
    /// <c>location</c>): after the mirrors, requests go here and never to <see cref="Host"/> itself. Null: the host.
    /// </summary>
    public string? Server { get; init; }

    /// <summary>
    /// Whether the origin (<see cref="Server"/>, or the host itself) is tried after the mirrors. False: the mirrors only,
    /// for air-gapped nodes that must never reach out on a miss.
    /// </summary>
    public bool Fallback { get; init; } = true;

    /// <summary>Talk plain HTTP to the origin. Loopback hosts fall back to HTTP without it.</summary>
    public bool PlainHttp { get; init; }

    /// <summary>Do not verify the server's TLS certificate (insecure; for test setups).</summary>
    public bool SkipVerify { get; init; }

    /// <summary>A PEM bundle of CA certificates trusted for this host in addition to the system CAs.</summary>
    public string? CaFile { get; init; }

    /// <summary>A PEM client certificate for mutual TLS (with <see cref="ClientKeyFile"/>).</summary>
    public string? ClientCertFile { get; init; }

    /// <summary>The PEM private key of <see cref="ClientCertFile"/>.</summary>
    public string? ClientKeyFile { get; init; }
}

/// <summary>Registry client settings: per-host configuration, timeouts and retry policy.</summary>
public sealed class RegistryOptions
{
    /// <summary>Per-host settings; hosts not listed use HTTPS with the system CAs (loopback may fall back to HTTP).</summary>
    public IReadOnlyList<RegistryHostConfig> Hosts { get; init; } = [];

    /// <summary>
    /// Node credentials: a Docker <c>config.json</c> (<c>auths</c>) used for an endpoint when the pull carries no
    /// credentials of its own (kubelet sends none). Null: none.
    /// </summary>
    public NodeCredentials? NodeCredentials { get; init; }

    /// <summary>An attempt fails when no byte (or no response header) arrives for this long.</summary>
    public TimeSpan NoProgressTimeout { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Attempts per endpoint for transient failures (connection errors, 5xx, 429, stalls); at least 1.</summary>
    public int MaxAttempts { get; init; } = 4;

    /// <summary>The first retry waits this long; each further retry doubles it.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(200);
}
