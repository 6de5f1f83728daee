using Microsoft.Extensions.Logging;

namespace Nacelle.CriServer.Streaming;

/// <summary>Source-generated log messages of the streaming server. Event ids 6xxx.</summary>
internal static partial class StreamLog
{
    [LoggerMessage(EventId = 6000, Level = LogLevel.Information, Message = "streaming server (exec, attach, port-forward) listening on {BaseUrl}")]
    public static partial void Listening(ILogger logger, string baseUrl);

    [LoggerMessage(EventId = 6001, Level = LogLevel.Information, Message = "{Kind} stream for pod {PodId} connected over {Transport} ({Protocol})")]
    public static partial void StreamConnected(ILogger logger, string kind, string podId, string transport, string protocol);

    [LoggerMessage(EventId = 6002, Level = LogLevel.Information, Message = "{Kind} stream for pod {PodId} ended: {Reason}")]
    public static partial void StreamEnded(ILogger logger, string kind, string podId, string reason);

    [LoggerMessage(EventId = 6003, Level = LogLevel.Information, Message = "stream request refused with {Status}: {Reason}")]
    public static partial void Refused(ILogger logger, int status, string reason);

    [LoggerMessage(EventId = 6004, Level = LogLevel.Warning, Message = "SPDY session error, answered with GOAWAY: {Reason}")]
    public static partial void SpdySessionError(ILogger logger, string reason);

    [LoggerMessage(EventId = 6005, Level = LogLevel.Information, Message = "SPDY stream {StreamId} refused: {Reason}")]
    public static partial void SpdyStreamRefused(ILogger logger, int streamId, string reason);

    [LoggerMessage(EventId = 6006, Level = LogLevel.Warning, Message = "WebSocket protocol error, connection closed: {Reason}")]
    public static partial void WebSocketProtocolError(ILogger logger, string reason);

    [LoggerMessage(EventId = 6007, Level = LogLevel.Information, Message = "port-forward to pod {PodId}: {Reason}")]
    public static partial void PortForwardFailed(ILogger logger, string podId, string reason);

    [LoggerMessage(EventId = 6008, Level = LogLevel.Error, Message = "{Kind} stream failed: {Reason}")]
    public static partial void StreamFailed(ILogger logger, Exception exception, string kind, string reason);
}
