using System.Net.Sockets;
using System.Text;
using Grpc.Core;
using Nacelle.ContainerCore.Interop;
using Nacelle.Tests.EndToEnd.Infrastructure;
using Runtime.V1;

namespace Nacelle.Tests.EndToEnd;

/// <summary>Socket ownership, start refusal, systemd notification and graceful shutdown.</summary>
public sealed class LifecycleTests
{
    [Fact]
    public async Task ASecondDaemonOnTheSameSocketIsRefused()
    {
        await using var first = await DaemonProcess.StartAsync();
        var otherDir = Directory.CreateTempSubdirectory("nacelle-e2e-").FullName;
        try
        {
            // Same socket, different root/state: the lock beside the socket refuses it.
            var config = Path.Combine(otherDir, "config.toml");
            await File.WriteAllTextAsync(config, "[metrics]\nenabled = false\n");
            var (exit, _, stderr) = await DaemonProcess.RunToExitAsync(
                "--config", config,
                "--socket", first.Socket, "--root", Path.Combine(otherDir, "root"), "--state", Path.Combine(otherDir, "state"));
            Assert.Equal(3, exit); // in use
            Assert.Contains($"grpc.socket {first.Socket}: another nacelle is running for this socket", stderr);
        }
        finally
        {
            Directory.Delete(otherDir, recursive: true);
        }

        // The first one is unharmed.
        await first.Client.Runtime.VersionAsync(new VersionRequest());
        Assert.True(File.Exists(first.Socket));
    }

    [Fact]
    public async Task ALiveListenerThatIsNotNacelleIsNotStolen()
    {
        var dir = Directory.CreateTempSubdirectory("nacelle-e2e-").FullName;
        var path = Path.Combine(dir, "nacelle.sock");
        using var squatter = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        squatter.Bind(new UnixDomainSocketEndPoint(path));
        squatter.Listen();

        await using var daemon = await DaemonProcess.StartAsync(directory: dir, waitUntilServing: false);
        Assert.Equal(3, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60))); // in use
        Assert.Contains($"grpc.socket {path}: another process is already serving this socket", daemon.Output);
        Assert.Equal(FileKind.Socket, FileKinds.Of(path));
    }

    [Fact]
    public async Task AStaleSocketIsReplaced()
    {
        var dir = Directory.CreateTempSubdirectory("nacelle-e2e-").FullName;
        var path = Path.Combine(dir, "nacelle.sock");
        using (var dead = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            // .NET unlinks the file of a socket it bound when the socket is closed; a crashed daemon leaves it
            // behind. Renaming the bound socket's file away from .NET's bookkeeping reproduces the crash's leftover.
            dead.Bind(new UnixDomainSocketEndPoint(path + ".tmp"));
            File.Move(path + ".tmp", path);
        }

        Assert.Equal(FileKind.Socket, FileKinds.Of(path));
        await using var daemon = await DaemonProcess.StartAsync(directory: dir);
        await daemon.Client.Runtime.VersionAsync(new VersionRequest());
        Assert.Contains("removed stale socket", daemon.Output);
    }

    [Fact]
    public async Task SomethingElseAtTheSocketPathIsRefusedAndKept()
    {
        var dir = Directory.CreateTempSubdirectory("nacelle-e2e-").FullName;
        var path = Path.Combine(dir, "nacelle.sock");
        await File.WriteAllTextAsync(path, "precious");

        await using var daemon = await DaemonProcess.StartAsync(directory: dir, waitUntilServing: false);
        Assert.Equal(4, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60))); // a path nacelle needs is unusable
        Assert.Contains("not a unix socket", daemon.Output);
        Assert.Equal("precious", await File.ReadAllTextAsync(path));
    }

    [Theory]
    [InlineData(Signals.SIGTERM)]
    [InlineData(Signals.SIGINT)]
    public async Task ASignalStopsCleanlyAndRemovesTheSocket(int signal)
    {
        await using var daemon = await DaemonProcess.StartAsync();
        Assert.True(File.Exists(daemon.Socket));

        Assert.Equal(0, await daemon.StopAsync(signal));
        Assert.False(File.Exists(daemon.Socket));
        Assert.Contains("stopped; socket", daemon.Output);
    }

    [Fact]
    public async Task CallsInFlightAtShutdownFinishOrAreRefusedCleanly()
    {
        // Debug level: the daemon logs every Status call it answers, so its side can be checked too.
        await using var daemon = await DaemonProcess.StartAsync(extraArgs: ["--log-level", "debug"]);
        using var stop = new CancellationTokenSource();
        var answered = 0;
        var failures = new System.Collections.Concurrent.ConcurrentBag<RpcException>();
        const int clients = 8;
        using var warm = new CountdownEvent(clients);

        async Task Hammer()
        {
            using var client = new CriClient(daemon.Socket);
            var first = true;
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await client.Runtime.StatusAsync(new StatusRequest { Verbose = true }, deadline: DateTime.UtcNow.AddSeconds(10));
                    Interlocked.Increment(ref answered);
                    if (first)
                    {
                        first = false;
                        warm.Signal();
                    }
                }
                catch (RpcException e)
                {
                    failures.Add(e);
                    return; // the daemon is going away: this client is done
                }
            }
        }

        var hammers = Enumerable.Range(0, clients).Select(_ => Task.Run(Hammer)).ToArray();
        Assert.True(warm.Wait(TimeSpan.FromSeconds(60)), "the clients never got an answer");
        await Task.Delay(200);
        var exit = await daemon.StopAsync(Signals.SIGTERM);
        stop.Cancel();
        await Task.WhenAll(hammers);

        Assert.Equal(0, exit);
        Assert.False(File.Exists(daemon.Socket));

        // A call either got its answer or was refused before the server took it: Unavailable, or a transport error
        // the .NET client reports when its request races the server's GOAWAY. No call was cut off half way.
        Assert.All(failures, e => Assert.True(
            e.StatusCode == StatusCode.Unavailable || e.Status.DebugException is HttpRequestException,
            $"{e.StatusCode}: {e.Status.Detail}"));

        // The server's side: every Status call it received completed OK, and at least every answered one is logged.
        var output = daemon.Output;
        Assert.DoesNotMatch(@"Status (Internal|Cancelled|Unavailable|Unknown)", output);
        var served = System.Text.RegularExpressions.Regex.Matches(output, @"Status OK in").Count;
        Assert.True(served >= answered, $"server logged {served} answered Status calls, clients received {answered}");
    }

    [Fact]
    public async Task SystemdIsToldReadyOnlyOnceTheSocketServes()
    {
        var dir = Directory.CreateTempSubdirectory("nacelle-e2e-").FullName;
        var notifyPath = Path.Combine(dir, "notify.sock");
        using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        notify.Bind(new UnixDomainSocketEndPoint(notifyPath));

        await using var daemon = await DaemonProcess.StartAsync(
            directory: dir, waitUntilServing: false,
            environment: new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notifyPath });

        var message = await ReceiveAsync(notify, TimeSpan.FromSeconds(60));
        Assert.Equal("READY=1", message);
        // No retry: READY=1 means the socket already answers.
        using (var client = new CriClient(daemon.Socket))
        {
            var version = await client.Runtime.VersionAsync(new VersionRequest());
            Assert.Equal("nacelle", version.RuntimeName);
        }

        Signals.Send(daemon.Process.Id, Signals.SIGTERM);
        Assert.Equal("STOPPING=1", await ReceiveAsync(notify, TimeSpan.FromSeconds(30)));
        Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(30)));
    }

    private static async Task<string> ReceiveAsync(Socket socket, TimeSpan timeout)
    {
        var buffer = new byte[4096];
        using var cancel = new CancellationTokenSource(timeout);
        var received = await socket.ReceiveAsync(buffer, SocketFlags.None, cancel.Token);
        return Encoding.UTF8.GetString(buffer, 0, received);
    }
}
