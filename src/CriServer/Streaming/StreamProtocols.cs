namespace Nacelle.CriServer.Streaming;

/// <summary>
/// The channel protocols spoken, newest first, and negotiation: the newest protocol both sides speak wins.
/// SPDY names them in <c>X-Stream-Protocol-Version</c> headers, WebSocket in <c>Sec-WebSocket-Protocol</c>.
/// </summary>
internal static class StreamProtocols
{
    /// <summary>v1: stdin, stdout, stderr and error streams; the error stream carries a failure's message.</summary>
    public const string V1 = "channel.k8s.io";

    /// <summary>v2: as v1 without v1's quirks (kubelet resets v1's error stream and closes its stdin stream early).</summary>
    public const string V2 = "v2.channel.k8s.io";

    /// <summary>v3: adds the resize stream.</summary>
    public const string V3 = "v3.channel.k8s.io";

    /// <summary>v4: the error stream carries a JSON metav1.Status with the exit code.</summary>
    public const string V4 = "v4.channel.k8s.io";

    /// <summary>v5 (WebSocket only): adds the close signal, a message [255, channel] that ends that channel's input.</summary>
    public const string V5 = "v5.channel.k8s.io";

    /// <summary>WebSocket text framing: channel digit + base64 data; v1 error semantics.</summary>
    public const string Base64 = "base64.channel.k8s.io";

    /// <summary>WebSocket text framing with v4 error semantics.</summary>
    public const string V4Base64 = "v4.base64.channel.k8s.io";

    /// <summary>Port forwarding (SPDY; also accepted as a WebSocket subprotocol with binary channels).</summary>
    public const string PortForward = "portforward.k8s.io";

    public static readonly IReadOnlyList<string> SpdyRemoteCommand = [V4, V3, V2, V1];

    public static readonly IReadOnlyList<string> SpdyPortForward = [PortForward];

    public static readonly IReadOnlyList<string> WebSocketRemoteCommand = [V5, V4, V4Base64, V1, Base64];

    public static readonly IReadOnlyList<string> WebSocketPortForward = [V4, V4Base64, PortForward];

    /// <summary>The newest of <paramref name="supported"/> (newest first) that the client offers, or null. Offers may be
    /// repeated headers and comma-separated lists.</summary>
    public static string? Negotiate(IEnumerable<string?> offered, IReadOnlyList<string> supported)
    {
        ArgumentNullException.ThrowIfNull(offered);
        ArgumentNullException.ThrowIfNull(supported);
        var offers = offered
            .SelectMany(o => (o ?? string.Empty).Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            .ToHashSet(StringComparer.Ordinal);
        return supported.FirstOrDefault(offers.Contains);
    }

    /// <summary>Whether the error stream carries a JSON Status (v4 and later).</summary>
    public static bool HasStatusJson(string protocol) => protocol is V4 or V5 or V4Base64;

    /// <summary>Whether a SPDY client of this protocol opens a resize stream for a terminal (v3 and later; every
    /// WebSocket protocol has the resize channel).</summary>
    public static bool SpdyHasResize(string protocol) => protocol is V3 or V4;
}
