using System.Net.Sockets;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Nacelle.CriServer.Streaming.Spdy;

/// <summary>
/// The HTTP/1.1 upgrade to SPDY/3.1 as Kubernetes clients make it: <c>Connection: Upgrade</c>, <c>Upgrade:
/// SPDY/3.1</c> and one <c>X-Stream-Protocol-Version</c> header per protocol the client speaks. The answer is 101
/// with the chosen protocol, 400 for a request that is no SPDY upgrade, 403 (with
/// <c>X-Accepted-Stream-Protocol-Versions</c>) when no protocol is shared. A client that names no protocol gets the
/// oldest, as kubelet does.
/// </summary>
internal static class SpdyUpgrade
{
    public const string ProtocolHeader = "X-Stream-Protocol-Version";
    public const string AcceptedProtocolsHeader = "X-Accepted-Stream-Protocol-Versions";
    public const string UpgradeToken = "SPDY/3.1";

    /// <summary>Why the request is not a SPDY upgrade, or null.</summary>
    public static string? NotAnUpgrade(IHeaderDictionary headers)
    {
        ArgumentNullException.ThrowIfNull(headers);
        var connection = headers.Connection.ToString()
            .Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (!connection.Contains("upgrade", StringComparer.OrdinalIgnoreCase))
        {
            return "unable to upgrade: missing 'Connection: Upgrade' in the request";
        }

        return string.Equals(headers.Upgrade.ToString(), UpgradeToken, StringComparison.OrdinalIgnoreCase)
            ? null
            : $"unable to upgrade: 'Upgrade: {headers.Upgrade}' is not {UpgradeToken} (or use a WebSocket)";
    }

    /// <summary>Negotiates, answers 101 and returns the chosen protocol, the connection and, when nothing (no TLS) sits
    /// between that connection and its socket, the socket; or answers the refusal and returns null.</summary>
    public static async Task<(string Protocol, Stream Transport, Socket? Socket)?> AcceptAsync(HttpContext context, IReadOnlyList<string> supported)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(supported);
        if (NotAnUpgrade(context.Request.Headers) is { } why)
        {
            await RefuseAsync(context, StatusCodes.Status400BadRequest, why).ConfigureAwait(false);
            return null;
        }

        var offered = context.Request.Headers[ProtocolHeader];
        string protocol;
        if (offered.Count == 0)
        {
            protocol = supported[^1];
        }
        else if (StreamProtocols.Negotiate(offered, supported) is { } chosen)
        {
            protocol = chosen;
            context.Response.Headers[ProtocolHeader] = chosen;
        }
        else
        {
            context.Response.Headers[AcceptedProtocolsHeader] = supported.ToArray();
            await RefuseAsync(context, StatusCodes.Status403Forbidden,
                $"unable to upgrade: unable to negotiate protocol: client supports [{string.Join(' ', offered.ToArray())}], server supports [{string.Join(' ', supported)}]")
                .ConfigureAwait(false);
            return null;
        }

        var upgrade = context.Features.Get<IHttpUpgradeFeature>();
        if (upgrade is null || !upgrade.IsUpgradableRequest)
        {
            context.Response.Headers.Remove(ProtocolHeader);
            await RefuseAsync(context, StatusCodes.Status400BadRequest, "unable to upgrade: this request cannot be upgraded (HTTP/1.1 without a body is needed)")
                .ConfigureAwait(false);
            return null;
        }

        context.Response.Headers.Upgrade = UpgradeToken;
        var transport = await upgrade.UpgradeAsync().ConfigureAwait(false);
        var socket = context.Request.IsHttps ? null : context.Features.Get<IConnectionSocketFeature>()?.Socket;
        return (protocol, transport, socket);
    }

    public static async Task RefuseAsync(HttpContext context, int status, string message)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        await context.Response.WriteAsync(message + "\n", context.RequestAborted).ConfigureAwait(false);
    }
}
