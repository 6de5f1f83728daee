using System.Net;
using System.Net.Sockets;

namespace Nacelle.CriServer.Hosting;

/// <summary>A TCP address the daemon listens on, with the configuration key that sets it and how to do without it.</summary>
/// <param name="Alternative">Appended to the fix, e.g. "or metrics.enabled = false"; empty when the listener is required.</param>
internal sealed record ListenAddress(IPEndPoint EndPoint, string Key, string Alternative);

/// <summary>
/// Turns "cannot listen" into one line naming the setting and the fix. <see cref="EnsureAvailable"/> binds each address
/// once before the host starts (with SO_REUSEADDR, as Kestrel binds), so a port held by another process is reported
/// before anything else happens; <see cref="Explain"/> covers the short window in which another process could take it
/// between that check and Kestrel's bind.
/// </summary>
internal static class ListenAddresses
{
    public static void EnsureAvailable(IEnumerable<ListenAddress> addresses)
    {
        foreach (var address in addresses)
        {
            using var probe = new Socket(address.EndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            probe.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            try
            {
                probe.Bind(address.EndPoint);
                probe.Listen();
            }
            catch (SocketException e)
            {
                throw Failure(address, e.SocketErrorCode, e.Message);
            }
        }
    }

    /// <summary>The start failure for a bind error Kestrel reported, or null when it is not about one of <paramref name="addresses"/>.</summary>
    public static DaemonStartException? Explain(Exception error, IEnumerable<ListenAddress> addresses)
    {
        SocketException? socketError = null;
        for (var e = error; e is not null; e = e.InnerException)
        {
            socketError ??= e as SocketException;
        }

        var address = addresses.FirstOrDefault(a => error.Message.Contains(a.EndPoint.ToString(), StringComparison.Ordinal));
        if (address is null)
        {
            return null;
        }

        return Failure(address, socketError?.SocketErrorCode ?? SocketError.AddressAlreadyInUse, socketError?.Message ?? error.Message);
    }

    private static DaemonStartException Failure(ListenAddress address, SocketError code, string message)
    {
        var what = $"{address.Key} {address.EndPoint}";
        var alternative = address.Alternative.Length > 0 ? " " + address.Alternative : string.Empty;
        return code switch
        {
            SocketError.AddressAlreadyInUse => new DaemonStartException(ExitCodes.InUse,
                $"{what} is already in use by another process (another nacelle?); stop it, or set {address.Key} to a free port{alternative}"),
            SocketError.AddressNotAvailable => new DaemonStartException(ExitCodes.Configuration,
                $"{what}: no interface of this host has that address; set {address.Key} to an address of this host (127.0.0.1 keeps it local){alternative}"),
            SocketError.AccessDenied => new DaemonStartException(ExitCodes.Configuration,
                $"{what}: permission denied (ports below 1024 need CAP_NET_BIND_SERVICE); set {address.Key} to a port above 1023{alternative}"),
            _ => new DaemonStartException(ExitCodes.Configuration, $"{what}: cannot listen ({message}); set {address.Key} to another address{alternative}"),
        };
    }
}
