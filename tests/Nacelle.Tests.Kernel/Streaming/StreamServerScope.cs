using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Nacelle.CriServer.Streaming;

namespace Nacelle.Tests.Kernel.Streaming;

/// <summary>An in-process streaming server on loopback with the host backend.</summary>
internal sealed class StreamServerScope : IAsyncDisposable
{
    private StreamServerScope(StreamingServer server, HostStreamBackend backend)
    {
        Server = server;
        Backend = backend;
    }

    public StreamingServer Server { get; }

    public HostStreamBackend Backend { get; }

    public static async Task<StreamServerScope> StartAsync(StreamingOptions? options = null)
    {
        var backend = new HostStreamBackend();
        var server = new StreamingServer(options ?? new StreamingOptions(), backend, NullLoggerFactory.Instance);
        await server.StartAsync();
        return new StreamServerScope(server, backend);
    }

    public string Exec(bool stdin = false, bool stdout = true, bool stderr = false, bool tty = false, string pod = "pod-1", params string[] command) =>
        Server.Register(new ExecStream("container-1", pod, command, stdin, stdout, stderr, tty));

    public string PortForward(params int[] ports) => Server.Register(new PortForwardStream("pod-1", ports));

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        Backend.Dispose();
    }
}

/// <summary>A TCP echo server on loopback: each connection gets back what it sends, and is closed once the client
/// has finished sending (after the echo).</summary>
internal sealed class EchoServer : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private int _open;

    public EchoServer()
    {
        _listener.Start();
        _ = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Connections accepted and not yet closed.</summary>
    public int Open => Volatile.Read(ref _open);

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var client = await _listener.AcceptSocketAsync(_stop.Token);
                _ = EchoAsync(client);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // stopped
        }
    }

    private async Task EchoAsync(Socket client)
    {
        Interlocked.Increment(ref _open);
        using (client)
        {
            var buffer = new byte[64 * 1024];
            try
            {
                while (true)
                {
                    var read = await client.ReceiveAsync(buffer, _stop.Token);
                    if (read == 0)
                    {
                        break;
                    }

                    await client.SendAsync(buffer.AsMemory(0, read), _stop.Token);
                }

                client.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException)
            {
                // the client went away
            }
        }

        Interlocked.Decrement(ref _open);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        _stop.Dispose();
    }
}
