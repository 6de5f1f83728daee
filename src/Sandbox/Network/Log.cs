using Microsoft.Extensions.Logging;

namespace Nacelle.Sandbox.Network;

/// <summary>Source-generated log messages of the CNI client. Event ids 5000-5099.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 5000, Level = LogLevel.Debug, Message = "CNI {Command} {Plugin} for pod {PodId} ({IfName}) in {ElapsedMs} ms")]
    public static partial void PluginRan(ILogger logger, string command, string plugin, string podId, string ifName, long elapsedMs);

    [LoggerMessage(EventId = 5001, Level = LogLevel.Information, Message = "pod {PodId} attached to network {Network}: {Ips}")]
    public static partial void PodAttached(ILogger logger, string podId, string network, string ips);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Information, Message = "pod {PodId} detached from network {Network} (config from {Source})")]
    public static partial void PodDetached(ILogger logger, string podId, string network, string source);

    [LoggerMessage(EventId = 5003, Level = LogLevel.Warning, Message = "CNI DEL {Plugin} for pod {PodId} failed with the netns gone, ignored: {Reason}")]
    public static partial void DeleteIgnored(ILogger logger, string plugin, string podId, string reason);

    [LoggerMessage(EventId = 5004, Level = LogLevel.Information, Message = "CNI network readiness changed: ready={Ready} network={Network}: {Message}")]
    public static partial void ReadinessChanged(ILogger logger, bool ready, string network, string message);

    [LoggerMessage(EventId = 5005, Level = LogLevel.Warning, Message = "CNI config {Path} skipped: {Reason}")]
    public static partial void ConfigSkipped(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 5006, Level = LogLevel.Warning, Message = "CNI result cache {Path} unreadable, ignored: {Reason}")]
    public static partial void CacheUnreadable(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 5007, Level = LogLevel.Warning, Message = "CNI plugin {Plugin} {Command} timed out after {TimeoutMs} ms and was killed")]
    public static partial void PluginTimedOut(ILogger logger, string plugin, string command, long timeoutMs);

    [LoggerMessage(EventId = 5008, Level = LogLevel.Information, Message = "default network pod CIDR set to {Cidr}")]
    public static partial void PodCidrUpdated(ILogger logger, string cidr);

    [LoggerMessage(EventId = 5009, Level = LogLevel.Warning, Message = "CNI conf dir watcher error, relying on the periodic re-scan: {Reason}")]
    public static partial void WatcherError(ILogger logger, string reason);

    [LoggerMessage(EventId = 5010, Level = LogLevel.Warning, Message = "undoing CNI ADD of pod {PodId} on {Network} failed: {Reason}")]
    public static partial void UndoFailed(ILogger logger, string podId, string network, string reason);
}
