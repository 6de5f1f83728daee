using System.Net.Sockets;
using Grpc.Net.Client;

namespace Runtime.V1;

/// <summary>A gRPC channel to a CRI endpoint on a unix socket, as kubelet and crictl connect (HTTP/2, no TLS).</summary>
public static class CriChannel
{
    /// <summary>The largest message the channel takes or sends: kubelet's (16 MiB; an ExecSync answer can be that big),
    /// not gRPC's 4 MiB default.</summary>
    public const int MaxMessageSize = 16 << 20;

    /// <summary>A channel to the CRI socket at <paramref name="socketPath"/>; responses up to
    /// <paramref name="maxReceiveMessageSize"/> bytes (default <see cref="MaxMessageSize"/>).</summary>
    public static GrpcChannel ForUnixSocket(string socketPath, int? maxReceiveMessageSize = null)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };

        // The authority is not used for routing on a unix socket; "localhost" is what CRI clients send.
        return GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            MaxReceiveMessageSize = maxReceiveMessageSize ?? MaxMessageSize,
            MaxSendMessageSize = MaxMessageSize,
        });
    }
}
