using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.Sandbox.Monitor;

namespace Nacelle.Tests.Unit.Monitor;

/// <summary>
/// The daemon keeps talking to monitors an older daemon started (an upgrade while pods run): the hello names the newest
/// version the daemon speaks, and a version 1 monitor, which refuses anything but 1, is asked again for version 1.
/// </summary>
public sealed class MonitorVersionTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("nacelle-hello-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A listening unix socket standing in for a monitor's.</summary>
    private Socket Listen(out string path, int backlog)
    {
        path = Path.Combine(_dir, "m.sock");
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(backlog);
        return listener;
    }

    /// <summary>A monitor as protocol version 1 answered hellos: only version 1 (or none) is accepted.</summary>
    private async Task<List<int?>> ServeVersionOneAsync(Socket listener, CancellationToken cancellationToken)
    {
        var asked = new List<int?>();
        using var connection = await listener.AcceptAsync(cancellationToken);
        using var stream = new NetworkStream(connection);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            var request = JsonSerializer.Deserialize(line, MonitorJson.Default.MonitorRequest)!;
            asked.Add(request.Version);
            var answer = request.Version is { } v && v != 1
                ? new MonitorResponse { Id = request.Id, Ok = false, ErrorKind = "FailedPrecondition", Error = $"monitor speaks protocol version 1, not {v}" }
                : new MonitorResponse { Id = request.Id, Ok = true, Version = 1, PodId = "p", MonitorPid = 1 };
            await stream.WriteAsync(MonitorProtocol.Encode(answer, MonitorJson.Default.MonitorResponse), cancellationToken);
            if (answer.Ok)
            {
                break;
            }
        }

        return asked;
    }

    [Fact]
    public async Task A_version_1_monitor_is_spoken_to_in_version_1()
    {
        using var listener = Listen(out var path, backlog: 1);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var server = ServeVersionOneAsync(listener, timeout.Token);

        await using var client = new MonitorClient(path);
        var answer = await client.ConnectAsync(TimeSpan.FromSeconds(10), timeout.Token);
        Assert.Equal(1, answer.Version);
        Assert.Equal(1, client.ProtocolVersion);
        Assert.Equal([MonitorProtocol.Version, 1], await server);
    }

    [Fact]
    public void The_protocol_range_is_sane()
    {
        Assert.True(MonitorProtocol.MinVersion >= 1);
        Assert.True(MonitorProtocol.MinVersion <= MonitorProtocol.Version);
        Assert.Equal(2, MonitorProtocol.Version);
    }

    /// <summary>
    /// A request the caller cancels while the monitor is still working on it: its late answer must not be taken for the
    /// next request's (that failed as Internal "pod monitor answered request 1, expected 2" until the connection broke).
    /// </summary>
    [Fact]
    public async Task A_request_cancelled_before_its_answer_does_not_leave_the_answer_for_the_next_one()
    {
        using var listener = Listen(out var path, backlog: 4);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var release = new TaskCompletionSource();
        var lateAnswerWritten = new TaskCompletionSource();

        // Answers every request at once, except request 1, answered only once released (on its own connection).
        async Task ServeAsync(Socket connection)
        {
            using (connection)
            await using (var stream = new NetworkStream(connection))
            using (var reader = new StreamReader(stream, Encoding.UTF8))
            {
                try
                {
                    while (await reader.ReadLineAsync(timeout.Token) is { } line)
                    {
                        var request = JsonSerializer.Deserialize(line, MonitorJson.Default.MonitorRequest)!;
                        if (request.Id == 1)
                        {
                            await release.Task.WaitAsync(timeout.Token);
                        }

                        var answer = new MonitorResponse { Id = request.Id, Ok = true, PodId = "p" };
                        await stream.WriteAsync(MonitorProtocol.Encode(answer, MonitorJson.Default.MonitorResponse), timeout.Token);
                        if (request.Id == 1)
                        {
                            lateAnswerWritten.TrySetResult();
                        }
                    }
                }
                catch (Exception e) when (e is IOException or OperationCanceledException)
                {
                    lateAnswerWritten.TrySetResult(); // the client closed the connection first (or the test ended)
                }
            }
        }

        var served = Task.Run(async () =>
        {
            var connections = new List<Task>();
            try
            {
                while (true)
                {
                    connections.Add(ServeAsync(await listener.AcceptAsync(timeout.Token)));
                }
            }
            catch (OperationCanceledException)
            {
                await Task.WhenAll(connections);
            }
        });

        await using var client = new MonitorClient(path);
        using (var giveUp = new CancellationTokenSource(TimeSpan.FromMilliseconds(200)))
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.SendAsync(new MonitorRequest { Op = MonitorProtocol.State }, giveUp.Token));
        }

        release.SetResult();
        await lateAnswerWritten.Task.WaitAsync(timeout.Token);
        var next = await client.SendAsync(new MonitorRequest { Op = MonitorProtocol.List }, timeout.Token);
        Assert.Equal(2, next.Id);
        await timeout.CancelAsync();
        await served;
    }
}
