using Grpc.Net.Client;
using Runtime.V1;

namespace Nacelle.Tests.EndToEnd.Infrastructure;

/// <summary>Both CRI service clients over one unix-socket channel.</summary>
internal sealed class CriClient(string socketPath) : IDisposable
{
    private readonly GrpcChannel _channel = CriChannel.ForUnixSocket(socketPath);

    public RuntimeService.RuntimeServiceClient Runtime => new(_channel);

    public Runtime.V1.ImageService.ImageServiceClient Images => new(_channel);

    public void Dispose() => _channel.Dispose();
}
