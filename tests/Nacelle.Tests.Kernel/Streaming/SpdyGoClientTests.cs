using System.Diagnostics;
using Nacelle.CriServer.Streaming;
using Nacelle.Tests.Support.Registry;
using Nacelle.Tests.Support.Streaming;

namespace Nacelle.Tests.Kernel.Streaming;

/// <summary>
/// The streaming server over SPDY/3.1 against a client on the SPDY library Kubernetes uses (Debian's spdystream):
/// exec with and without a terminal, stdin, resize, exit codes, every channel protocol version, port-forward with
/// checksums, concurrency, single-use tokens, and a client that vanishes mid-stream.
/// </summary>
public sealed class SpdyGoClientTests : IAsyncLifetime
{
    private StreamServerScope _server = null!;
    private readonly string _temp = Directory.CreateTempSubdirectory("nacelle-spdy-").FullName;

    public async ValueTask InitializeAsync() => _server = await StreamServerScope.StartAsync();

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_temp, recursive: true);
    }

    private (GoInfo Info, string Stdout, string Stderr, int Exit) Go(string stdin, params string[] arguments)
    {
        var client = StreamClients.SpdyClient();
        var infoFile = Path.Combine(_temp, Guid.NewGuid().ToString("N"));
        var (exit, stdout, stderr) = StreamClients.Run(StreamClients.Program(client, [.. arguments, "-info", infoFile]), TimeSpan.FromMinutes(3), stdin);
        return (GoInfo.Read(infoFile), stdout, stderr, exit);
    }

    [Fact]
    public void ExecWithoutTerminalKeepsStdoutAndStderrApartAndSucceeds()
    {
        var url = _server.Exec(stdout: true, stderr: true, command: ["/bin/sh", "-c", "echo out; echo err >&2"]);
        var (info, stdout, stderr, exit) = Go("", "exec", "-url", url, "-stdout", "-stderr");
        Assert.True(exit == 0, $"client failed: {stderr} {info}");
        Assert.Equal("v4.channel.k8s.io", info["protocol"]);
        Assert.Equal("out\n", stdout);
        Assert.Equal("err\n", stderr);
        Assert.Equal("0", info["exitcode"]);
        Assert.Equal("{\"metadata\":{},\"status\":\"Success\"}", info["error"]);
    }

    [Theory]
    [InlineData("exit 3", 3)]
    [InlineData("kill -9 $$", 137)]
    public void ExecReportsTheExitCodeInTheV4Status(string script, int expected)
    {
        var url = _server.Exec(command: ["/bin/sh", "-c", script]);
        var (info, _, stderr, _) = Go("", "exec", "-url", url);
        Assert.True(info["exitcode"] is not null, $"no exit code: {stderr} {info}");
        Assert.Equal(expected.ToString(System.Globalization.CultureInfo.InvariantCulture), info["exitcode"]);
        Assert.Contains("\"reason\":\"NonZeroExitCode\"", info["error"]);
    }

    [Fact]
    public void StdinReachesTheCommandAndItsEndClosesIt()
    {
        var url = _server.Exec(stdin: true, stdout: true, command: ["/bin/sh", "-c", "cat; echo done"]);
        var (info, stdout, stderr, _) = Go("hello through stdin\n", "exec", "-url", url, "-stdin");
        Assert.True(info["exitcode"] == "0", $"{stderr} {info}");
        Assert.Equal("hello through stdin\ndone\n", stdout);
    }

    [Fact]
    public void TerminalExecSeesTheSizeTheClientSends()
    {
        // stty reads the terminal's size; the loop waits for the resize to land (it is asynchronous to stdout).
        const string script = "for i in $(seq 100); do s=$(stty size); [ \"$s\" = \"30 100\" ] && { echo \"size $s\"; exit 0; }; sleep 0.05; done; echo \"size $(stty size)\"; exit 1";
        var url = _server.Exec(stdout: true, tty: true, command: ["/bin/sh", "-c", script]);
        var (info, stdout, stderr, _) = Go("", "exec", "-url", url, "-tty", "-resize", "100x30");
        Assert.True(info["exitcode"] == "0", $"{stdout} {stderr} {info}");
        Assert.Contains("size 30 100", stdout);
    }

    [Fact]
    public void TerminalExecEchoesInputOnOneStream()
    {
        var url = _server.Exec(stdin: true, stdout: true, tty: true, command: ["/bin/sh", "-c", "read line; echo \"got $line\""]);
        var (info, stdout, stderr, _) = Go("typed\n", "exec", "-url", url, "-stdin", "-tty");
        Assert.True(info["exitcode"] == "0", $"{stdout} {stderr} {info}");
        Assert.Contains("got typed", stdout);
    }

    [Theory]
    [InlineData("v4.channel.k8s.io,v3.channel.k8s.io,v2.channel.k8s.io,channel.k8s.io", "v4.channel.k8s.io")]
    [InlineData("channel.k8s.io,v2.channel.k8s.io,v3.channel.k8s.io", "v3.channel.k8s.io")]
    [InlineData("v2.channel.k8s.io", "v2.channel.k8s.io")]
    [InlineData("channel.k8s.io", "channel.k8s.io")]
    public void NegotiationPicksTheNewestSharedProtocol(string offered, string expected)
    {
        var url = _server.Exec(command: ["/bin/echo", "hi"]);
        var (info, stdout, _, _) = Go("", "exec", "-url", url, "-protocols", offered);
        Assert.Equal(expected, info["protocol"]);
        Assert.Equal("hi\n", stdout);
    }

    [Fact]
    public void ProtocolsBeforeV4CarryOnlyAFailuresMessage()
    {
        var url = _server.Exec(command: ["/bin/sh", "-c", "exit 3"]);
        var (info, _, _, _) = Go("", "exec", "-url", url, "-protocols", "v3.channel.k8s.io");
        Assert.Equal("command terminated with non-zero exit code: exit code 3", info["error"]);

        url = _server.Exec(command: ["/bin/true"]);
        (info, _, _, _) = Go("", "exec", "-url", url, "-protocols", "v2.channel.k8s.io");
        Assert.Equal("", info["error"]);
    }

    [Fact]
    public void AnUnsharedProtocolIsRefusedWith403()
    {
        var url = _server.Exec(command: ["/bin/true"]);
        var (info, _, _, _) = Go("", "exec", "-url", url, "-protocols", "v9.channel.k8s.io");
        Assert.Equal("403", info["http"]);
        Assert.Contains("unable to negotiate protocol", info["body"]);
        Assert.Equal(0, _server.Backend.Started);
    }

    [Fact]
    public void ATokenWorksOnceThen404AndNothingRuns()
    {
        var url = _server.Exec(command: ["/bin/echo", "once"]);
        var (first, stdout, _, _) = Go("", "exec", "-url", url);
        Assert.Equal("once\n", stdout);
        Assert.Equal("0", first["exitcode"]);

        var (second, _, _, _) = Go("", "exec", "-url", url);
        Assert.Equal("404", second["http"]);
        var (unknown, _, _, _) = Go("", "exec", "-url", url[..^4] + "AAAA");
        Assert.Equal("404", unknown["http"]);
        var (wrongKind, _, _, _) = Go("", "exec", "-url", _server.PortForward(80).Replace("/portforward/", "/exec/", StringComparison.Ordinal));
        Assert.Equal("404", wrongKind["http"]);
        Assert.Equal(1, _server.Backend.Started);
    }

    [Fact]
    public async Task TwentyConcurrentExecsEachGetTheirOwnOutput()
    {
        var runs = Enumerable.Range(0, 20).Select(i => Task.Run(() =>
        {
            var url = _server.Exec(stdout: true, command: ["/bin/sh", "-c", $"sleep 0.2; echo stream-{i}"]);
            return (i, Go("", "exec", "-url", url));
        }));
        foreach (var (i, (info, stdout, stderr, _)) in await Task.WhenAll(runs))
        {
            Assert.True(info["exitcode"] == "0", $"stream {i}: {stderr} {info}");
            Assert.Equal($"stream-{i}\n", stdout);
        }

        // A stream's lease goes when its handler ends, which may be just after its client has read everything (seen in
        // CI: one still open at the first look).
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (_server.Server.Limits.Open != 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        Assert.Equal(0, _server.Server.Limits.Open);
    }

    [Fact]
    public async Task AClientThatVanishesMidStreamKillsTheCommand()
    {
        var client = StreamClients.SpdyClient();
        var url = _server.Exec(stdout: true, command: ["/bin/sh", "-c", "echo $$; exec sleep 600"]);
        var info = StreamClients.Program(client, "exec", "-url", url, "-info", Path.Combine(_temp, "vanish"));
        info.RedirectStandardOutput = true;
        info.RedirectStandardInput = true;
        using var process = Process.Start(info)!;
        var pid = int.Parse((await process.StandardOutput.ReadLineAsync())!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(Directory.Exists($"/proc/{pid}"));

        process.Kill();
        await process.WaitForExitAsync();
        Assert.True(await Eventually(() => !Directory.Exists($"/proc/{pid}")), $"exec process {pid} outlived its client");
        Assert.True(await Eventually(() => _server.Backend.Cancelled == 1 && _server.Server.Limits.Open == 0),
            $"cancelled {_server.Backend.Cancelled}, open {_server.Server.Limits.Open}");
    }

    [Fact]
    public async Task PortForwardCarries100MegabytesBothWaysIntact()
    {
        using var echo = new EchoServer();
        var url = _server.PortForward(echo.Port);
        var (info, _, stderr, _) = Go("", "portforward", "-url", url, "-port", echo.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-bytes", (100 * 1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture));
        var line = Assert.Single(info.Lines, l => l.StartsWith("conn=", StringComparison.Ordinal));
        var fields = Fields(line);
        Assert.True(fields["sent"] == "104857600", $"{stderr} {info}");
        Assert.Equal(fields["sent"], fields["received"]);
        Assert.Equal(fields["sentsha"], fields["receivedsha"]);
        Assert.Equal("\"\"", fields["error"]);
        Assert.True(await Eventually(() => echo.Open == 0), "the pod-side connection stayed open");
    }

    [Fact]
    public async Task PortForwardOverTlsCarriesDataBothWaysIntact()
    {
        // Under TLS the session's frames go through the TLS stream (the plain-TCP path writes to the socket itself).
        using var authority = TestCertificateAuthority.Create();
        var (cert, key) = authority.IssueServerCertificate().WriteTo(_temp, "stream");
        await using var tls = await StreamServerScope.StartAsync(new StreamingOptions { CertFile = cert, KeyFile = key });
        using var echo = new EchoServer();
        var url = tls.PortForward(echo.Port);
        Assert.StartsWith("https://", url);
        var (info, _, stderr, _) = Go("", "portforward", "-url", url, "-port", echo.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-connections", "2", "-bytes", (10 * 1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture));
        var lines = info.Lines.Where(l => l.StartsWith("conn=", StringComparison.Ordinal)).ToList();
        Assert.True(lines.Count == 2, $"{stderr} {info}");
        foreach (var fields in lines.Select(Fields))
        {
            Assert.Equal("10485760", fields["sent"]);
            Assert.Equal(fields["sent"], fields["received"]);
            Assert.Equal(fields["sentsha"], fields["receivedsha"]);
            Assert.Equal("\"\"", fields["error"]);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void PortForwardServesManyConnectionsInOneSession(bool withoutRequestIds)
    {
        using var echo = new EchoServer();
        var url = _server.PortForward();
        var port = echo.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var (info, _, stderr, _) = withoutRequestIds
            ? Go("", "portforward", "-url", url, "-port", port, "-connections", "1", "-bytes", "100000", "-no-request-id")
            : Go("", "portforward", "-url", url, "-port", port, "-connections", "8", "-bytes", "1000000");
        var lines = info.Lines.Where(l => l.StartsWith("conn=", StringComparison.Ordinal)).ToList();
        Assert.True(lines.Count == (withoutRequestIds ? 1 : 8), $"{stderr} {info}");
        foreach (var fields in lines.Select(Fields))
        {
            Assert.Equal(fields["sent"], fields["received"]);
            Assert.Equal(fields["sentsha"], fields["receivedsha"]);
        }
    }

    [Fact]
    public void PortForwardTellsAFailedConnectionOnTheErrorStream()
    {
        _server.Backend.RefusedPorts[7] = "nothing listens on port 7";
        var url = _server.PortForward(7, 8);
        var (info, _, _, _) = Go("", "portforward", "-url", url, "-port", "7", "-bytes", "10");
        Assert.Contains("nothing listens on port 7", Fields(Assert.Single(info.Lines, l => l.StartsWith("conn=", StringComparison.Ordinal)))["error"]);

        // A port the request did not grant is refused the same way.
        url = _server.PortForward(7);
        (info, _, _, _) = Go("", "portforward", "-url", url, "-port", "22", "-bytes", "10");
        Assert.Contains("port 22 is not one this port-forward was granted", Fields(info.Lines.Single(l => l.StartsWith("conn=", StringComparison.Ordinal)))["error"]);
    }

    [Fact]
    public async Task TheStreamLimitRefusesWith429()
    {
        await using var limited = await StreamServerScope.StartAsync(new StreamingOptions { MaxStreams = 4, MaxStreamsPerPod = 1 });
        var client = StreamClients.SpdyClient();
        var holding = limited.Exec(command: ["/bin/sh", "-c", "echo up; exec sleep 600"]);
        var info = StreamClients.Program(client, "exec", "-url", holding, "-info", Path.Combine(_temp, "holding"));
        info.RedirectStandardOutput = true;
        info.RedirectStandardInput = true;
        using var first = Process.Start(info)!;
        Assert.Equal("up", await first.StandardOutput.ReadLineAsync());

        var refused = Assert.Throws<Nacelle.Common.NacelleException>(() => limited.Exec(command: ["/bin/true"]));
        Assert.Equal(Nacelle.Common.ErrorKind.ResourceExhausted, refused.Kind);

        // A URL handed out before the limit was reached is refused when it is used.
        var otherPod = limited.Exec(pod: "pod-2", command: ["/bin/true"]);
        var samePod = limited.Server.Register(new ExecStream("container-1", "pod-2", ["/bin/true"], false, true, false, false));
        var (ok, _, _, _) = Go("", "exec", "-url", otherPod);
        Assert.Equal("0", ok["exitcode"]);
        Assert.True(await Eventually(() => limited.Server.Limits.Open == 1), "the finished exec kept its lease");
        var held = StreamClients.Program(client, "exec", "-url", limited.Exec(pod: "pod-2", command: ["/bin/sh", "-c", "echo up; exec sleep 600"]),
            "-info", Path.Combine(_temp, "held"));
        held.RedirectStandardOutput = true;
        held.RedirectStandardInput = true;
        using var second = Process.Start(held)!;
        Assert.Equal("up", await second.StandardOutput.ReadLineAsync());
        var (tooMany, _, _, _) = Go("", "exec", "-url", samePod);
        Assert.Equal("429", tooMany["http"]);
        Assert.Contains("max_streams_per_pod", tooMany["body"]);

        first.Kill();
        second.Kill();
        Assert.True(await Eventually(() => limited.Server.Limits.Open == 0), "leases were not returned");
    }

    [Fact]
    public async Task AnIdleConnectionIsClosedAndItsCommandKilled()
    {
        await using var idle = await StreamServerScope.StartAsync(new StreamingOptions { IdleTimeout = TimeSpan.FromSeconds(1) });
        var url = idle.Exec(command: ["/bin/sh", "-c", "echo $$; exec sleep 600"]);
        var (info, stdout, _, _) = Go("", "exec", "-url", url);
        var pid = int.Parse(stdout.Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.NotEqual("0", info["exitcode"]);
        Assert.True(await Eventually(() => !Directory.Exists($"/proc/{pid}")), "the idle exec's process survived");
        Assert.Equal(1, idle.Backend.Cancelled);
    }

    /// <summary>The fields of a "conn=" line; error (quoted, may hold spaces) comes last.</summary>
    private static Dictionary<string, string> Fields(string line)
    {
        var error = line.IndexOf(" error=", StringComparison.Ordinal);
        var fields = line[..error].Split(' ').Select(f => f.Split('=', 2)).ToDictionary(f => f[0], f => f[1]);
        fields["error"] = line[(error + " error=".Length)..];
        return fields;
    }

    /// <summary>Waits up to 20 s for <paramref name="condition"/>.</summary>
    internal static async Task<bool> Eventually(Func<bool> condition)
    {
        for (var i = 0; i < 200; i++)
        {
            if (condition())
            {
                return true;
            }

            await Task.Delay(100);
        }

        return condition();
    }
}
