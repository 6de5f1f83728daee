using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Nacelle.Common.PodMonitor;
using Nacelle.Sandbox.Monitor;

namespace Nacelle.Tests.Unit.Monitor;

/// <summary>
/// Regression (seen once the exit watch started with the pod: StopPodSandbox cancels the watch's refresh while its list
/// request waits for the answer): a request cancelled after it was sent left its answer on the connection, and the next
/// request read that answer and failed with "pod monitor answered request N, expected N+1".
/// </summary>
public sealed class MonitorClientCancellationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("nacelle-cancel-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task A_request_cancelled_before_its_answer_leaves_no_answer_for_the_next_one()
    {
        var path = Path.Combine(_dir, "m.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(4);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        // A monitor that answers every request in order, the "state" one only once released.
        _ = Task.Run(async () =>
        {
            while (!timeout.IsCancellationRequested)
            {
                var connection = await listener.AcceptAsync(timeout.Token);
                _ = Task.Run(async () =>
                {
                    using var socket = connection;
                    await using var stream = new NetworkStream(socket);
                    using var reader = new StreamReader(stream, Encoding.UTF8);
                    while (await reader.ReadLineAsync(timeout.Token) is { } line)
                    {
                        var request = JsonSerializer.Deserialize(line, MonitorJson.Default.MonitorRequest)!;
                        if (request.Op == MonitorProtocol.State)
                        {
                            await release.Task;
                        }

                        var answer = new MonitorResponse { Id = request.Id, Ok = true, Version = MonitorProtocol.Version, PodId = "p", MonitorPid = 1 };
                        await stream.WriteAsync(MonitorProtocol.Encode(answer, MonitorJson.Default.MonitorResponse), timeout.Token);
                    }
                });
            }
        });

        await using var client = new MonitorClient(path);
        await client.ConnectAsync(TimeSpan.FromSeconds(10), timeout.Token);
        using var cancel = new CancellationTokenSource();
        var slow = client.SendAsync(new MonitorRequest { Op = MonitorProtocol.State, ContainerId = "c" }, cancel.Token);
        await Task.Delay(200, timeout.Token);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => slow);

        release.SetResult(); // its answer comes now, after the client gave up on it
        await Task.Delay(200, timeout.Token);
        var next = await client.SendAsync(new MonitorRequest { Op = MonitorProtocol.List }, timeout.Token);
        Assert.True(next.Ok);
    }
}
