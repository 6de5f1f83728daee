using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Nacelle.CriServer.Streaming;
using Nacelle.Tests.Support.Streaming;
using Nacelle.Tests.Support.Registry;

namespace Nacelle.Tests.Kernel.Streaming;

/// <summary>
/// The streaming server over WebSocket against the Kubernetes Python client (Debian's python3-kubernetes:
/// kubernetes.stream.ws_client) for v4/v5 exec and port-forward, and against .NET's ClientWebSocket for negotiation,
/// base64 framing, resize, TLS and refusals.
/// </summary>
public sealed class WebSocketClientTests : IAsyncLifetime
{
    private StreamServerScope _server = null!;

    public async ValueTask InitializeAsync() => _server = await StreamServerScope.StartAsync();

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    private static JsonElement Python(params string[] arguments)
    {
        StreamClients.RequirePythonClient();
        var (exit, stdout, stderr) = StreamClients.Run(StreamClients.Program(StreamClients.Python, [StreamClients.WsClient, .. arguments]),
            TimeSpan.FromMinutes(3));
        Assert.True(exit == 0 && stdout.Length > 0, $"wsclient.py failed ({exit}): {stdout} {stderr}");
        var result = JsonDocument.Parse(stdout).RootElement;
        Assert.False(result.TryGetProperty("exception", out var exception), $"wsclient.py: {exception}");
        return result;
    }

    [Theory]
    [InlineData("v4.channel.k8s.io")]
    [InlineData("v5.channel.k8s.io")]
    public void PythonExecGetsOutputAndTheExitCode(string protocol)
    {
        var url = _server.Exec(stdout: true, stderr: true, command: ["/bin/sh", "-c", "echo out; echo err >&2; exit 3"]);
        var result = Python("exec", url, protocol);
        Assert.Equal("out\n", result.GetProperty("stdout").GetString());
        Assert.Equal("err\n", result.GetProperty("stderr").GetString());
        Assert.Equal(3, result.GetProperty("returncode").GetInt32());

        url = _server.Exec(stdout: true, command: ["/bin/echo", "fine"]);
        result = Python("exec", url, protocol);
        Assert.Equal("fine\n", result.GetProperty("stdout").GetString());
        Assert.Equal(0, result.GetProperty("returncode").GetInt32());
    }

    [Fact]
    public void PythonV5CloseSignalEndsStdin()
    {
        var url = _server.Exec(stdin: true, stdout: true, command: ["/bin/sh", "-c", "cat; echo eof"]);
        var result = Python("exec", url, StreamProtocols.V5, "--stdin", "typed text\n", "--close-stdin");
        Assert.Equal("typed text\neof\n", result.GetProperty("stdout").GetString());
        Assert.Equal(0, result.GetProperty("returncode").GetInt32());
    }

    [Fact]
    public void PythonTerminalExecIsResized()
    {
        const string script = "for i in $(seq 100); do s=$(stty size); [ \"$s\" = \"40 120\" ] && { echo \"size $s\"; exit 0; }; sleep 0.05; done; exit 1";
        var url = _server.Exec(stdout: true, tty: true, command: ["/bin/sh", "-c", script]);
        var result = Python("exec", url, StreamProtocols.V4, "--resize", "120x40");
        Assert.Contains("size 40 120", result.GetProperty("stdout").GetString());
        Assert.Equal(0, result.GetProperty("returncode").GetInt32());
    }

    [Fact]
    public async Task PythonPortForwardCarriesDataIntact()
    {
        using var echo = new EchoServer();
        var url = _server.PortForward(echo.Port);
        var result = Python("portforward", url, echo.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "10000000");
        Assert.Equal(10_000_000, result.GetProperty("sent").GetInt64());
        Assert.Equal(10_000_000, result.GetProperty("received").GetInt64());
        Assert.Equal(result.GetProperty("sentsha").GetString(), result.GetProperty("receivedsha").GetString());
        Assert.Equal(JsonValueKind.Null, result.GetProperty("error").ValueKind);
        Assert.True(await SpdyGoClientTests.Eventually(() => echo.Open == 0 && _server.Server.Limits.Open == 0), "a connection stayed open");
    }

    // ------------------------------------------------------------------ .NET's ClientWebSocket

    private static async Task<ClientWebSocket> ConnectAsync(string url, params string[] protocols)
    {
        var socket = new ClientWebSocket();
        foreach (var protocol in protocols)
        {
            socket.Options.AddSubProtocol(protocol);
        }

        socket.Options.RemoteCertificateValidationCallback = (_, _, _, _) => true;
        await socket.ConnectAsync(new Uri(url.Replace("http", "ws", StringComparison.Ordinal)), CancellationToken.None);
        return socket;
    }

    /// <summary>Every message until the server closes: (channel, data) in order.</summary>
    private static async Task<List<(int Channel, byte[] Data)>> ReceiveAllAsync(ClientWebSocket socket, bool base64 = false)
    {
        var messages = new List<(int, byte[])>();
        var buffer = new byte[64 * 1024];
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        var message = new MemoryStream();
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, timeout.Token);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, timeout.Token);
                return messages;
            }

            message.Write(buffer, 0, result.Count);
            if (!result.EndOfMessage)
            {
                continue;
            }

            var bytes = message.ToArray();
            message.SetLength(0);
            messages.Add(base64
                ? (bytes[0] - '0', Convert.FromBase64String(Encoding.ASCII.GetString(bytes, 1, bytes.Length - 1)))
                : (bytes[0], bytes[1..]));
        }
    }

    private static string Channel(List<(int Channel, byte[] Data)> messages, int channel) =>
        Encoding.UTF8.GetString(messages.Where(m => m.Channel == channel).SelectMany(m => m.Data).ToArray());

    [Fact]
    public async Task NegotiationPicksV5OverV4AndAnnouncesTheSessionOnStdout()
    {
        var url = _server.Exec(stdout: true, command: ["/bin/sh", "-c", "exit 5"]);
        using var socket = await ConnectAsync(url, StreamProtocols.V4, StreamProtocols.V5);
        Assert.Equal(StreamProtocols.V5, socket.SubProtocol);
        var messages = await ReceiveAllAsync(socket);
        Assert.Equal((1, 0), (messages[0].Channel, messages[0].Data.Length));
        Assert.Contains("\"reason\":\"NonZeroExitCode\"", Channel(messages, 3));
        Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);
    }

    [Fact]
    public async Task Base64ChannelsCarryTextFramesAndTheOldErrorText()
    {
        var url = _server.Exec(stdin: true, stdout: true, command: ["/bin/sh", "-c", "read line; echo \"got $line\"; exit 2"]);
        using var socket = await ConnectAsync(url, StreamProtocols.Base64);
        Assert.Equal(StreamProtocols.Base64, socket.SubProtocol);
        await socket.SendAsync(Encoding.ASCII.GetBytes("0" + Convert.ToBase64String("hello\n"u8)), WebSocketMessageType.Text, true, CancellationToken.None);
        var messages = await ReceiveAllAsync(socket, base64: true);
        Assert.Equal("got hello\n", Channel(messages, 1));
        Assert.Equal("command terminated with non-zero exit code: exit code 2", Channel(messages, 3));
    }

    [Fact]
    public async Task AnUnknownSubprotocolIsRefusedAndNothingRuns()
    {
        var url = _server.Exec(stdout: true, command: ["/bin/true"]);
        var e = await Assert.ThrowsAsync<WebSocketException>(() => ConnectAsync(url, "v9.channel.k8s.io"));
        Assert.Contains("400", e.Message);
        Assert.Equal(0, _server.Backend.Started);

        // The token was used by that attempt.
        e = await Assert.ThrowsAsync<WebSocketException>(() => ConnectAsync(url, StreamProtocols.V4));
        Assert.Contains("404", e.Message);
    }

    [Fact]
    public async Task AttachRunsTheContainersCommandOverTheSameProtocol()
    {
        _server.Backend.AttachCommands["container-7"] = ["/bin/sh", "-c", "echo attached"];
        var url = _server.Server.Register(new AttachStream("container-7", "pod-1", false, true, false, false));
        using var socket = await ConnectAsync(url, StreamProtocols.V4);
        var messages = await ReceiveAllAsync(socket);
        Assert.Equal("attached\n", Channel(messages, 1));
        Assert.Equal("{\"metadata\":{},\"status\":\"Success\"}", Channel(messages, 3));
    }

    [Fact]
    public async Task AClientThatDropsTheConnectionKillsTheCommand()
    {
        var url = _server.Exec(stdout: true, command: ["/bin/sh", "-c", "echo $$; exec sleep 600"]);
        var socket = await ConnectAsync(url, StreamProtocols.V4);
        var buffer = new byte[256];
        var pid = 0;
        while (pid == 0)
        {
            var result = await socket.ReceiveAsync(buffer, CancellationToken.None);
            if (result.Count > 1 && buffer[0] == 1)
            {
                pid = int.Parse(Encoding.ASCII.GetString(buffer, 1, result.Count - 1).Trim(), System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        socket.Abort();
        socket.Dispose();
        Assert.True(await SpdyGoClientTests.Eventually(() => !Directory.Exists($"/proc/{pid}")), $"exec process {pid} outlived its client");
        Assert.True(await SpdyGoClientTests.Eventually(() => _server.Server.Limits.Open == 0));
    }

    [Fact]
    public async Task PortForwardPrefixesEachChannelWithItsPortAndTellsFailures()
    {
        using var echo = new EchoServer();
        _server.Backend.RefusedPorts[9] = "connection refused by the test";
        var url = _server.PortForward();
        using var socket = await ConnectAsync(url + $"?ports={echo.Port},9", StreamProtocols.V4);
        await socket.SendAsync(new byte[] { 0, (byte)'p', (byte)'i', (byte)'n', (byte)'g' }, WebSocketMessageType.Binary, true, CancellationToken.None);
        var buffer = new byte[1024];
        var messages = new List<(int Channel, byte[] Data)>();
        while (!messages.Any(m => m.Channel == 0 && m.Data.SequenceEqual("ping"u8.ToArray())) || !messages.Any(m => m.Channel == 3 && m.Data.Length > 2))
        {
            var result = await socket.ReceiveAsync(buffer, CancellationToken.None);
            messages.Add((buffer[0], buffer[1..result.Count]));
        }

        var port = BitConverter.GetBytes((ushort)echo.Port);
        Assert.Equal([(0, port), (1, port), (2, new byte[] { 9, 0 }), (3, new byte[] { 9, 0 })],
            messages.Take(4).Select(m => (m.Channel, m.Data)).ToList(), new ChannelDataComparer());
        Assert.Contains("connection refused by the test", Channel(messages, 3));
    }

    [Fact]
    public async Task PortForwardRefusesPortsTheRequestDidNotGrant()
    {
        var url = _server.PortForward(80);
        var e = await Assert.ThrowsAsync<WebSocketException>(() => ConnectAsync(url + "?ports=22", StreamProtocols.V4));
        Assert.Contains("400", e.Message);
    }

    [Fact]
    public async Task TheServerSpeaksTlsWhenGivenACertificate()
    {
        using var authority = TestCertificateAuthority.Create();
        var directory = Directory.CreateTempSubdirectory("nacelle-stream-tls-").FullName;
        try
        {
            var (cert, key) = authority.IssueServerCertificate().WriteTo(directory, "stream");
            await using var tls = await StreamServerScope.StartAsync(new StreamingOptions { CertFile = cert, KeyFile = key });
            var url = tls.Exec(stdout: true, command: ["/bin/echo", "secret"]);
            Assert.StartsWith("https://127.0.0.1:", url);
            using var socket = await ConnectAsync(url, StreamProtocols.V4);
            Assert.Equal("secret\n", Channel(await ReceiveAllAsync(socket), 1));

            var client = StreamClients.SpdyClient();
            var infoFile = Path.Combine(directory, "info");
            var (_, stdout, _) = StreamClients.Run(StreamClients.Program(client, "exec", "-url", tls.Exec(command: ["/bin/echo", "spdy too"]), "-info", infoFile),
                TimeSpan.FromMinutes(1));
            Assert.Equal("spdy too\n", stdout);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private sealed class ChannelDataComparer : IEqualityComparer<(int Channel, byte[] Data)>
    {
        public bool Equals((int Channel, byte[] Data) x, (int Channel, byte[] Data) y) => x.Channel == y.Channel && x.Data.SequenceEqual(y.Data);

        public int GetHashCode((int Channel, byte[] Data) obj) => obj.Channel;
    }
}
