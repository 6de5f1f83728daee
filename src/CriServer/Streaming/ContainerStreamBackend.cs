using System.Net.Sockets;
using Nacelle.Sandbox.Streams;

namespace Nacelle.CriServer.Streaming;

/// <summary>The daemon's stream backend: the streaming server's calls, handed to the pods' side
/// (<see cref="ContainerStreams"/>: the monitor's stdio descriptors, sockets made in the pod's network namespace).</summary>
internal sealed class ContainerStreamBackend(ContainerStreams streams) : IStreamBackend
{
    public Task<int> ExecAsync(ExecStream request, StreamIo io, CancellationToken cancellationToken) =>
        streams.ExecAsync(request.ContainerId, request.Command, io, cancellationToken);

    public Task<int> AttachAsync(AttachStream request, StreamIo io, CancellationToken cancellationToken) =>
        streams.AttachAsync(request.ContainerId, io, cancellationToken);

    public Task<Socket> OpenPortAsync(string podId, int port, CancellationToken cancellationToken) =>
        streams.OpenPortAsync(podId, port, cancellationToken);
}
