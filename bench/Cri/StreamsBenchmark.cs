using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Nacelle.Tests.Support;
using Nacelle.Tests.Support.Registry;
using Nacelle.Tests.Support.Streaming;
using Runtime.V1;

namespace Nacelle.Bench.Cri;

/// <summary>
/// Streams through nacelle's streaming server against references measured in the same run. Exec round trip of
/// <c>echo hi</c> in a running container: the Exec rpc plus the client's whole session (connect, upgrade, streams, output,
/// exit status) over SPDY (Go on Debian's spdystream, timed inside the client from its dial to the exit status) and over
/// WebSocket (.NET's ClientWebSocket, v5.channel.k8s.io), against ExecSync and <c>runc exec</c> of the same command.
/// Port-forward: a server in a pod on the test bridge writes N bytes; the Go client reads and counts them through a
/// port-forward (timed inside the client; not hashed, as the reference does not hash either), against a direct TCP copy of
/// the same size over the host's loopback in this process.
/// </summary>
internal static class StreamsBenchmark
{
    private const string ServerPort = "9001";

    public static async Task RunAsync(BenchOptions options, CriSession cri, RuncReference reference)
    {
        var (spdyClient, why) = StreamClients.SpdyClientBuild;
        if (spdyClient is null)
        {
            throw new InvalidOperationException($"the Go SPDY client cannot be built: {why}");
        }

        await using var registry = await RegistryServer.StartAsync();
        if (options.RegistryPidFile is not null)
        {
            await File.WriteAllTextAsync(options.RegistryPidFile, registry.ProcessId.ToString(CultureInfo.InvariantCulture));
        }

        using (var pusher = registry.CreatePusher())
        {
            await TestImages.PushBusyboxAsync(pusher, "bench/busybox", "latest");
        }

        var image = $"{registry.Host}/bench/busybox:latest";
        await cri.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = image } });
        var runtime = cri.Runtime;

        // One pod on the test bridge: a sleeping container to exec in, and a server that writes the port-forward payload
        // (dd from /dev/zero straight into the accepted socket, as nc -e makes it the program's stdout).
        var bytes = options.ForwardBytes;
        var blocks = bytes / 65536;
        var podConfig = cri.PodConfig("streams");
        Directory.CreateDirectory(podConfig.LogDirectory);
        var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig })).PodSandboxId;
        var sleeper = CriSession.ContainerConfig("sleeper", image);
        var containerId = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = sleeper, SandboxConfig = podConfig }))
            .ContainerId;
        await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = containerId });
        var server = CriSession.ContainerConfig("server", image);
        server.Command.Clear();
        server.Command.Add(["nc", "-ll", "-p", ServerPort, "-e", "dd", "if=/dev/zero", "bs=65536", $"count={blocks}"]);
        var serverId = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = server, SandboxConfig = podConfig }))
            .ContainerId;
        await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = serverId });

        var runcPod = await reference.RunPodAsync("streams");
        await reference.CreateContainerAsync(runcPod, "sleeper");
        await reference.StartContainerAsync(runcPod, "sleeper");

        var s = new Dictionary<string, Samples>();
        Samples S(string name) => s.TryGetValue(name, out var v) ? v : s[name] = new Samples();
        for (var i = 0; i < options.Warmup + options.Iterations; i++)
        {
            var m = new Dictionary<string, double>
            {
                ["spdy"] = await SpdyExecAsync(runtime, spdyClient, containerId, options.Work),
                ["websocket"] = await WebSocketExecAsync(runtime, containerId),
                ["execsync"] = await ExecSyncAsync(runtime, containerId),
                ["runc exec"] = await TimeAsync(() => reference.ExecAsync(runcPod, "sleeper")),
            };
            Record(i >= options.Warmup, i + 1, m);
        }

        var forwards = Math.Max(1, options.ForwardIterations);
        for (var i = 0; i < 1 + forwards; i++)
        {
            Record(i > 0, i + 1, new Dictionary<string, double>
            {
                ["port-forward"] = await PortForwardAsync(runtime, spdyClient, pod, bytes, options.Work),
                ["direct"] = await DirectCopyAsync(bytes),
            });
        }

        await reference.DeleteContainerAsync(runcPod, "sleeper");
        await reference.RemovePodAsync(runcPod);

        Console.WriteLine();
        Console.WriteLine($"## Streams: exec {options.Iterations} round trips after {options.Warmup} warm-ups; port-forward {forwards} copies after 1 warm-up");
        Console.WriteLine();
        Console.WriteLine(await Machine.DescribeAsync(options.Runc));
        Console.WriteLine("Exec round trip of `echo hi` in a running busybox container, output checked: the Exec rpc plus the client's session (dial,");
        Console.WriteLine("upgrade, streams, output, exit status). SPDY: Go on Debian's spdystream, timed inside the client (its start not counted);");
        Console.WriteLine("WebSocket: .NET's ClientWebSocket with v5.channel.k8s.io. References: ExecSync of the same command, `runc exec` in a");
        Console.WriteLine("runc container joined to a pod's namespaces. Ratio: median / ExecSync median.");
        Console.WriteLine();
        Table.Header("exec round trip", "median ms", "p90 ms", "vs ExecSync");
        Table.LatencyRow("Exec over SPDY (v4.channel.k8s.io)", S("spdy"), S("execsync"));
        Table.LatencyRow("Exec over WebSocket (v5.channel.k8s.io)", S("websocket"), S("execsync"));
        Table.LatencyRow("ExecSync", S("execsync"), S("execsync"));
        Table.LatencyRow("runc exec", S("runc exec"), S("execsync"));
        Console.WriteLine();
        Console.WriteLine(FormattableString.Invariant(
            $"Port-forward: {bytes >> 20} MiB written by `dd` (through `nc -e`) in a pod on the test bridge, read by the Go client through a"));
        Console.WriteLine("port-forward (SPDY, timed inside the client from its dial, the bytes counted as the reference counts them, not hashed:");
        Console.WriteLine("Go 1.19's SHA-256 is slower than the copy); reference: the same number of bytes copied over a TCP connection on the");
        Console.WriteLine("host's 127.0.0.1 within this process. Ratio: throughput / direct throughput (aim: at least 0.5).");
        Console.WriteLine();
        Table.Header("copy", "median MiB/s", "worst MiB/s", "vs direct");
        ThroughputRow("port-forward (SPDY)", S("port-forward"), S("direct"), bytes);
        ThroughputRow("direct loopback TCP", S("direct"), S("direct"), bytes);

        void Record(bool measured, int round, Dictionary<string, double> m)
        {
            if (measured)
            {
                foreach (var (name, ms) in m)
                {
                    S(name).Add(ms);
                }
            }

            Console.Error.WriteLine($"{(measured ? "run" : "warm-up")} {round}: " +
                string.Join(", ", m.Select(kv => FormattableString.Invariant($"{kv.Key} {kv.Value:F1}"))));
        }
    }

    /// <summary>MiB/s of the median and of the slowest copy (times in <paramref name="samples"/>, ms).</summary>
    private static void ThroughputRow(string name, Samples samples, Samples reference, long bytes)
    {
        double Rate(double ms) => bytes / (1 << 20) / (ms / 1000);
        var ratio = reference.Count == 0 ? "-" : Table.F(Rate(samples.Median) / Rate(reference.Median), 2) + "x";
        Table.Row(name, Table.F(Rate(samples.Median)), Table.F(Rate(samples.Percentile(1.0))), ratio);
    }

    private static async Task<double> TimeAsync(Func<Task> action)
    {
        var t0 = Stopwatch.GetTimestamp();
        await action();
        return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
    }

    private static async Task<string> ExecUrlAsync(RuntimeService.RuntimeServiceClient runtime, string containerId) =>
        (await runtime.ExecAsync(new ExecRequest { ContainerId = containerId, Cmd = { "echo", "hi" }, Stdout = true })).Url;

    /// <summary>The Exec rpc, then the Go client's session as it times it itself.</summary>
    private static async Task<double> SpdyExecAsync(RuntimeService.RuntimeServiceClient runtime, string client, string containerId, string work)
    {
        var t0 = Stopwatch.GetTimestamp();
        var url = await ExecUrlAsync(runtime, containerId);
        var rpc = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        var infoFile = Path.Combine(work, "spdy-exec.info");
        var result = await Processes.RunAsync(client, ["exec", "-url", url, "-info", infoFile]);
        var info = GoInfo.Read(infoFile);
        if (result.Stdout != "hi\n" || info["exitcode"] != "0")
        {
            throw new InvalidOperationException($"SPDY exec: stdout '{result.Stdout}', {info}");
        }

        return rpc + double.Parse(info["elapsedms"]!, CultureInfo.InvariantCulture);
    }

    /// <summary>The Exec rpc and a whole WebSocket session: stdout (channel 1) and the status (channel 3) until the close.</summary>
    private static async Task<double> WebSocketExecAsync(RuntimeService.RuntimeServiceClient runtime, string containerId)
    {
        var t0 = Stopwatch.GetTimestamp();
        var url = await ExecUrlAsync(runtime, containerId);
        using var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol("v5.channel.k8s.io");
        await socket.ConnectAsync(new Uri(url.Replace("http://", "ws://", StringComparison.Ordinal)), CancellationToken.None);
        var stdout = new StringBuilder();
        var status = new StringBuilder();
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var message = new MemoryStream();
            WebSocketReceiveResult received;
            do
            {
                received = await socket.ReceiveAsync(buffer, CancellationToken.None);
                message.Write(buffer, 0, received.Count);
            }
            while (!received.EndOfMessage);

            if (received.MessageType == WebSocketMessageType.Close)
            {
                break;
            }

            var data = message.ToArray();
            if (data.Length > 1)
            {
                (data[0] == 1 ? stdout : data[0] == 3 ? status : new StringBuilder()).Append(Encoding.UTF8.GetString(data, 1, data.Length - 1));
            }
        }

        await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        var elapsed = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        if (stdout.ToString() != "hi\n" || !status.ToString().Contains("\"Success\"", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"WebSocket exec: stdout '{stdout}', status '{status}'");
        }

        return elapsed;
    }

    private static async Task<double> ExecSyncAsync(RuntimeService.RuntimeServiceClient runtime, string containerId)
    {
        var t0 = Stopwatch.GetTimestamp();
        var result = await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = containerId, Cmd = { "echo", "hi" }, Timeout = 10 });
        var elapsed = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        if (result.ExitCode != 0 || result.Stdout.ToStringUtf8() != "hi\n")
        {
            throw new InvalidOperationException($"ExecSync: exit {result.ExitCode}, stdout '{result.Stdout.ToStringUtf8()}'");
        }

        return elapsed;
    }

    /// <summary>The PortForward rpc and the Go client reading every byte (its own timing from the dial).</summary>
    private static async Task<double> PortForwardAsync(RuntimeService.RuntimeServiceClient runtime, string client, string pod, long bytes, string work)
    {
        var t0 = Stopwatch.GetTimestamp();
        var url = (await runtime.PortForwardAsync(new PortForwardRequest { PodSandboxId = pod })).Url;
        var rpc = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        var infoFile = Path.Combine(work, "spdy-forward.info");
        await Processes.RunAsync(client, ["portforward", "-url", url, "-port", ServerPort, "-bytes", "0", "-count-only", "-info", infoFile]);
        var info = GoInfo.Read(infoFile);
        var line = info.Lines.FirstOrDefault(l => l.StartsWith("conn=", StringComparison.Ordinal)) ?? "";
        if (!line.Contains($" received={bytes} ", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"port-forward: expected {bytes} bytes: {info}");
        }

        return rpc + double.Parse(info["elapsedms"]!, CultureInfo.InvariantCulture);
    }

    /// <summary>The same number of bytes from a listener to a client on 127.0.0.1, in this process.</summary>
    private static async Task<double> DirectCopyAsync(long bytes)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var t0 = Stopwatch.GetTimestamp();
        var serve = Task.Run(async () =>
        {
            using var connection = await listener.AcceptSocketAsync();
            var block = new byte[65536];
            for (long sent = 0; sent < bytes; sent += block.Length)
            {
                await connection.SendAsync(block.AsMemory(0, (int)Math.Min(block.Length, bytes - sent)));
            }

            connection.Shutdown(SocketShutdown.Both);
        });
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port));
        var buffer = new byte[65536];
        long received = 0;
        int n;
        while ((n = await client.ReceiveAsync(buffer)) > 0)
        {
            received += n;
        }

        await serve;
        var elapsed = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        return received == bytes ? elapsed : throw new InvalidOperationException($"direct copy: {received} of {bytes} bytes");
    }
}
