using Microsoft.Extensions.Logging;

namespace Nacelle.ImageService.Registry;

/// <summary>Source-generated log messages of the registry client. Event ids 3000-3099. Never logs credentials or tokens.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 3000, Level = LogLevel.Debug, Message = "resolving {Reference} for platform {Platform}")]
    public static partial void Resolving(ILogger logger, string reference, string platform);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Information,
        Message = "resolved {Reference} to {TopDigest} ({TopMediaType}); manifest {ManifestDigest} for {Platform}, {LayerCount} layers")]
    public static partial void Resolved(ILogger logger, string reference, string topDigest, string topMediaType, string manifestDigest, string platform, int layerCount);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Debug, Message = "registry endpoint {Endpoint} answers /v2/ with auth scheme {Scheme}")]
    public static partial void Pinged(ILogger logger, string endpoint, string scheme);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Information,
        Message = "loopback registry {Host} does not speak HTTPS ({Reason}); using plain HTTP")]
    public static partial void PlainHttpFallback(ILogger logger, string host, string reason);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Debug, Message = "fetched a registry token from {Realm} for scope {Scope}, valid {ExpiresInSeconds} s")]
    public static partial void TokenFetched(ILogger logger, string realm, string scope, int expiresInSeconds);

    [LoggerMessage(EventId = 3005, Level = LogLevel.Warning,
        Message = "{What} from {Endpoint} failed (attempt {Attempt} of {MaxAttempts}): {Reason}; retrying in {DelayMs} ms")]
    public static partial void Retrying(ILogger logger, string what, string endpoint, int attempt, int maxAttempts, string reason, long delayMs);

    [LoggerMessage(EventId = 3006, Level = LogLevel.Warning, Message = "mirror {Mirror} could not serve {What}: {Reason}; trying the next endpoint")]
    public static partial void MirrorFailed(ILogger logger, string mirror, string what, string reason);

    [LoggerMessage(EventId = 3007, Level = LogLevel.Debug, Message = "downloaded blob {Digest} ({Bytes} bytes) from {Endpoint}")]
    public static partial void BlobDownloaded(ILogger logger, string digest, long bytes, string endpoint);

    [LoggerMessage(EventId = 3008, Level = LogLevel.Information, Message = "resuming blob {Digest} at byte {Offset} from {Endpoint}")]
    public static partial void Resuming(ILogger logger, string digest, long offset, string endpoint);

    [LoggerMessage(EventId = 3009, Level = LogLevel.Debug, Message = "{Endpoint} ignored the range request for {Digest}; skipping {Offset} bytes already written")]
    public static partial void RangeIgnored(ILogger logger, string endpoint, string digest, long offset);
}
