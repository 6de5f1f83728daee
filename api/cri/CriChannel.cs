using System.Net.Sockets;
using Grpc.Net.Client;

namespace Runtime.V1;

/// <summary>A gRPC channel to a CRI endpoint on a unix socket, as kubelet and crictl connect (HTTP/2, no TLS).</summary>
public static class CriChannel
{
    /// <summary>The largest message the channel takes or sends: kubelet's (16 MiB; an ExecSync answer can be that big),
    /// not gRPC's 4 MiB default.</summary>
    public const int MaxMessageSize = 16 << 20;

    public static GrpcChannel ForUnixSocket(string socketPath)
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
            MaxReceiveMessageSize = MaxMessageSize,
            MaxSendMessageSize = MaxMessageSize,
        });
    }
}
