using System.Net.Sockets;
using System.Text;

namespace Nacelle.CriServer.Hosting;

/// <summary>sd_notify(3) without libsystemd: a datagram to $NOTIFY_SOCKET ('@' prefix = abstract namespace).</summary>
internal static class SystemdNotifier
{
    public static string? SocketPath => Environment.GetEnvironmentVariable("NOTIFY_SOCKET") is { Length: > 0 } path ? path : null;

    /// <summary>Sends a state such as "READY=1"; does nothing when not started by systemd.</summary>
    public static void Notify(string state)
    {
        if (SocketPath is not { } path)
        {
            return;
        }

        var address = path[0] == '@' ? "\0" + path[1..] : path;
        using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        socket.SendTo(Encoding.UTF8.GetBytes(state), new UnixDomainSocketEndPoint(address));
    }
}
