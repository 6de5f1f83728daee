namespace Nacelle.CriServer.Configuration;

/// <summary>
/// An invalid configuration. The message names where (file and line, or flag), which key and why,
/// e.g. "/etc/nacelle/config.toml: metrics.address: '127.0.0.1' is not host:port".
/// </summary>
public sealed class ConfigException : Exception
{
    public ConfigException(string source, string? key, string reason)
        : base(key is null ? $"{source}: {reason}" : $"{source}: {key}: {reason}")
    {
        Origin = source;
        Key = key;
        Reason = reason;
    }

    /// <summary>The file (or flag, or "defaults") the bad value came from.</summary>
    public string Origin { get; }

    /// <summary>The dotted key (e.g. "metrics.address"), or null for a syntax error.</summary>
    public string? Key { get; }

    public string Reason { get; }
}
