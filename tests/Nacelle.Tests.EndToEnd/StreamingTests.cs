using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Grpc.Core;
using Nacelle.Tests.EndToEnd.Infrastructure;
using Nacelle.Tests.Support;
using Nacelle.Tests.Support.Registry;
using Nacelle.Tests.Support.Streaming;
using Runtime.V1;

namespace Nacelle.Tests.EndToEnd;

/// <summary>
/// Exec, Attach and PortForward through the real daemon, with clients nacelle did not write: a Go program on the SPDY
/// library Kubernetes uses (Debian's spdystream) and Python's kubernetes.stream (WebSocket). The processes run in real
/// containers under the pod's monitor; port-forward reaches servers inside pods on a test CNI bridge and in host-network
/// pods. Also ExecSync's output limit, which the daemon now reads from the process's pipes itself.
/// </summary>
public sealed class StreamingTests : IAsyncLifetime
{
    private RegistryServer _registry = null!;
    private string _image = null!;
    private readonly string _cgroupParent = "/nacelle-e2e-streams-" + Guid.NewGuid().ToString("N")[..8];
    private readonly string _logDirectory = Directory.CreateTempSubdirectory("nacelle-e2e-stream-logs-").FullName;
    private readonly string _temp = Directory.CreateTempSubdirectory("nacelle-e2e-streams-").FullName;

    public async ValueTask InitializeAsync()
    {
        _registry = await RegistryServer.StartAsync();
        using var pusher = _registry.CreatePusher();
        await TestImages.PushBusyboxAsync(pusher, "e2e/busybox", "streams");
        _image = $"{_registry.Host}/e2e/busybox:streams";
    }

    public async ValueTask DisposeAsync()
    {
        await _registry.DisposeAsync();
        TestCgroups.RemoveTree(_cgroupParent);
        Directory.Delete(_logDirectory, recursive: true);
        Directory.Delete(_temp, recursive: true);
    }

    private async Task<PodSession> StartAsync(string toml = "", string? directory = null)
    {
        var session = new PodSession(await DaemonProcess.StartAsync(toml, directory: directory));
        await session.Daemon.Client.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = _image } });
        return session;
    }

    private PodSandboxConfig Pod(string name, NamespaceMode network = NamespaceMode.Node) => new()
    {
        Metadata = new PodSandboxMetadata { Name = name, Namespace = "e2e-streams", Uid = Guid.NewGuid().ToString(), Attempt = 0 },
        Hostname = name,
        LogDirectory = Path.Combine(_logDirectory, name + "-" + Guid.NewGuid().ToString("N")[..6]),
        Linux = new LinuxPodSandboxConfig
        {
            CgroupParent = _cgroupParent,
            SecurityContext = new LinuxSandboxSecurityContext
            {
                NamespaceOptions = new NamespaceOption { Network = network, Pid = NamespaceMode.Container, Ipc = NamespaceMode.Pod },
            },
        },
    };

    private sealed record Running(string PodId, string ContainerId, string LogPath);

    /// <summary>A pod with one running container.</summary>
    private async Task<Running> RunAsync(PodSession session, string name, string[] command, bool tty = false, bool stdin = false,
        bool stdinOnce = false, NamespaceMode network = NamespaceMode.Node, string handler = "")
    {
        var podConfig = Pod(name, network);
        var pod = (await session.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig, RuntimeHandler = handler })).PodSandboxId;
        var config = new ContainerConfig
        {
            Metadata = new ContainerMetadata { Name = name },
            Image = new ImageSpec { Image = _image },
            LogPath = $"{name}/0.log",
            Tty = tty,
            Stdin = stdin,
            StdinOnce = stdinOnce,
            Linux = new LinuxContainerConfig
            {
                SecurityContext = new LinuxContainerSecurityContext
                {
                    Seccomp = new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.RuntimeDefault },
                },
            },
        };
        config.Command.Add(command);
        config.Envs.Add(new KeyValue { Key = "GREETING", Value = Google.Protobuf.ByteString.CopyFromUtf8("hello-env") });
        var id = (await session.Runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = config, SandboxConfig = podConfig }))
            .ContainerId;
        await session.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
        return new Running(pod, id, Path.Combine(podConfig.LogDirectory, name, "0.log"));
    }

    private static async Task<string> ExecUrlAsync(PodSession session, string container, string[] command, bool stdin = false, bool stdout = true,
        bool stderr = false, bool tty = false)
    {
        var request = new ExecRequest { ContainerId = container, Stdin = stdin, Stdout = stdout, Stderr = stderr, Tty = tty };
        request.Cmd.Add(command);
        return (await session.Runtime.ExecAsync(request)).Url;
    }

    private sealed record GoRun(int Exit, string Stdout, string Stderr, GoInfo Info)
    {
        public override string ToString() => $"client exit {Exit}, stderr: {Stderr}, info: {Info}";
    }

    /// <summary>Runs the Go SPDY client to completion (exec or portforward mode).</summary>
    private async Task<GoRun> GoAsync(string stdin, params string[] arguments)
    {
        var client = StreamClients.SpdyClient();
        var infoFile = Path.Combine(_temp, Guid.NewGuid().ToString("N"));
        var (exit, stdout, stderr) = await Task.Run(() =>
            StreamClients.Run(StreamClients.Program(client, [.. arguments, "-info", infoFile]), TimeSpan.FromMinutes(4), stdin));
        return new GoRun(exit, stdout, stderr, GoInfo.Read(infoFile));
    }

    /// <summary>Starts the Go SPDY client in the background (stdout redirected, stdin kept open).</summary>
    private (Process Process, string InfoFile) StartGo(params string[] arguments)
    {
        var client = StreamClients.SpdyClient();
        var infoFile = Path.Combine(_temp, Guid.NewGuid().ToString("N"));
        var info = StreamClients.Program(client, [.. arguments, "-info", infoFile]);
        info.RedirectStandardOutput = info.RedirectStandardError = info.RedirectStandardInput = true;
        info.UseShellExecute = false;
        return (Process.Start(info)!, infoFile);
    }

    private static void Stop(Process process)
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
        }

        process.WaitForExit();
        process.Dispose();
    }

    /// <summary>Runs the Python kubernetes.stream client; its one JSON line.</summary>
    private static async Task<JsonElement> PythonAsync(params string[] arguments)
    {
        StreamClients.RequirePythonClient();
        var (_, stdout, stderr) = await Task.Run(() =>
            StreamClients.Run(StreamClients.Program(StreamClients.Python, [StreamClients.WsClient, .. arguments]), TimeSpan.FromMinutes(4)));
        using var document = JsonDocument.Parse(stdout.Trim() is { Length: > 0 } line ? line : "{}");
        var result = document.RootElement.Clone();
        Assert.False(result.TryGetProperty("exception", out var exception), $"python client: {exception} {stderr}");
        return result;
    }

    private static async Task<ExecSyncResponse> ShAsync(PodSession session, string container, string script, long timeout = 20) =>
        await session.Runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = container, Cmd = { "/bin/sh", "-c", script }, Timeout = timeout });

    /// <summary>Polls <paramref name="condition"/> for up to 30 s.</summary>
    private static async Task<bool> EventuallyAsync(Func<Task<bool>> condition)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            if (await condition())
            {
                return true;
            }

            await Task.Delay(100);
        }

        return false;
    }

    [Fact]
    public async Task Exec_without_a_terminal_keeps_stdout_and_stderr_apart_and_reports_exit_codes_0_3_and_137()
    {
        await using var session = await StartAsync();
        var app = await RunAsync(session, "exec-codes", ["sleep", "3600"]);

        var run = await GoAsync("", "exec", "-url",
            await ExecUrlAsync(session, app.ContainerId, ["/bin/sh", "-c", "echo out; echo err >&2; echo $GREETING"], stderr: true), "-stdout", "-stderr");
        Assert.True(run.Exit == 0, run.ToString());
        Assert.Equal("v4.channel.k8s.io", run.Info["protocol"]);
        // The container's environment.
        Assert.Equal("out\nhello-env\n", run.Stdout);
        Assert.Equal("err\n", run.Stderr);
        Assert.Equal("0", run.Info["exitcode"]);

        foreach (var (script, code) in new[] { ("exit 3", 3), ("kill -9 $$", 137) })
        {
            run = await GoAsync("", "exec", "-url", await ExecUrlAsync(session, app.ContainerId, ["/bin/sh", "-c", script]));
            Assert.Equal(code.ToString(CultureInfo.InvariantCulture), run.Info["exitcode"]);
            Assert.Contains("\"reason\":\"NonZeroExitCode\"", run.Info["error"]);
        }

        // The same over WebSocket (v5.channel.k8s.io) with the Python client.
        var ws = await PythonAsync("exec", await ExecUrlAsync(session, app.ContainerId, ["/bin/sh", "-c", "echo out; echo err >&2; exit 3"], stderr: true),
            "v5.channel.k8s.io");
        Assert.Equal("out\n", ws.GetProperty("stdout").GetString());
        Assert.Equal("err\n", ws.GetProperty("stderr").GetString());
        Assert.Equal(3, ws.GetProperty("returncode").GetInt32());

        // An unknown command is the exec's failure, told to the client.
        run = await GoAsync("", "exec", "-url", await ExecUrlAsync(session, app.ContainerId, ["/no/such/program"]));
        Assert.NotEqual("0", run.Info["exitcode"]);
        Assert.Contains("no/such/program", run.Info["error"]);
    }

    [Fact]
    public async Task Exec_stdin_reaches_the_process_and_the_clients_end_of_input_closes_it()
    {
        await using var session = await StartAsync();
        var app = await RunAsync(session, "exec-stdin", ["sleep", "3600"]);

        var run = await GoAsync("hello\nworld\n", "exec", "-url",
            await ExecUrlAsync(session, app.ContainerId, ["/bin/sh", "-c", "cat; echo done"], stdin: true), "-stdin");
        Assert.True(run.Exit == 0, run.ToString());
        Assert.Equal("hello\nworld\ndone\n", run.Stdout);
        Assert.Equal("0", run.Info["exitcode"]);

        // v5's close signal ends stdin over WebSocket.
        var ws = await PythonAsync("exec", await ExecUrlAsync(session, app.ContainerId, ["/bin/sh", "-c", "wc -c; exit 5"], stdin: true),
            "v5.channel.k8s.io", "--stdin", "12345", "--close-stdin");
        Assert.Equal("5\n", ws.GetProperty("stdout").GetString());
        Assert.Equal(5, ws.GetProperty("returncode").GetInt32());
    }

    private const string Runc = "/usr/sbin/runc";

    /// <summary>A daemon with Debian's runc as runtime handler "runc" when <paramref name="handler"/> names it.</summary>
    private async Task<PodSession> StartWithHandlerAsync(string handler)
    {
        if (handler.Length == 0)
        {
            return await StartAsync();
        }

        Assert.SkipUnless(File.Exists(Runc), $"{Runc} is not installed (Debian's runc, scripts/install-deps.sh --test)");
        return await StartAsync($"[runtime.handlers.{handler}]\ntype = \"oci\"\npath = \"{Runc}\"\n");
    }

    /// <summary>Under the built-in core the helper opens the pty; under runc (a handler) runc does and sends its master
    /// over the monitor's console socket: the client cannot tell them apart.</summary>
    [Theory]
    [InlineData("")]
    [InlineData("runc")]
    public async Task Exec_with_a_terminal_gets_a_pty_of_the_container_sized_by_every_resize(string handler)
    {
        await using var session = await StartWithHandlerAsync(handler);
        var app = await RunAsync(session, "exec-tty", ["sleep", "3600"], handler: handler);

        // The sizes go out right after the streams open; stty sees the latest one within the loop.
        var script = "tty; i=0; while [ $i -lt 30 ]; do stty size; i=$((i+1)); sleep 0.1; done";
        var run = await GoAsync("", "exec", "-url", await ExecUrlAsync(session, app.ContainerId, ["/bin/sh", "-c", script], stdin: true, tty: true),
            "-stdin", "-tty", "-resize", "100x30,120x40");
        Assert.True(run.Exit == 0, run.ToString());
        Assert.Equal("0", run.Info["exitcode"]);
        var lines = run.Stdout.Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches("^/dev/pts/[0-9]+$", lines[0]);
        Assert.Contains("40 120", lines);

        // The Python client sends its size before the command reads it.
        var ws = await PythonAsync("exec", await ExecUrlAsync(session, app.ContainerId, ["/bin/sh", "-c", "sleep 1; stty size"], stdin: true, tty: true),
            "v5.channel.k8s.io", "--resize", "90x20");
        Assert.Contains("20 90", ws.GetProperty("stdout").GetString());

        // A terminal's end of input is its VEOF (^D): a program reading lines from it sees end of file and ends. (cat keeps the
        // terminal in canonical mode. An interactive shell would switch it to raw mode for its line editor, and input
        // that arrived before the switch, the ^D included, was already taken by the canonical line discipline: the ^D
        // then reaches the shell as a NUL byte and it waits for more, as it would behind any terminal.)
        run = await GoAsync("hello-tty\n", "exec", "-url", await ExecUrlAsync(session, app.ContainerId, ["cat"], stdin: true, tty: true),
            "-stdin", "-tty");
        Assert.True(run.Info["exitcode"] == "0", run.ToString());
        Assert.Contains("hello-tty", run.Stdout);

        // A program that switched its terminal to raw mode reads every byte as a key press: the client's end of input
        // (here 2 s after its input) types nothing into it, where a ^D used to arrive as a fourth byte.
        ws = await PythonAsync("exec", await ExecUrlAsync(session, app.ContainerId,
                ["/bin/sh", "-c", "stty raw -echo; timeout 4 cat > /tmp/typed; od -An -tx1 /tmp/typed"], stdin: true, tty: true),
            "v5.channel.k8s.io", "--stdin", "abc", "--close-stdin-after", "2");
        var typed = ws.GetProperty("stdout").GetString();
        Assert.Contains("61 62 63", typed, StringComparison.Ordinal);
        Assert.DoesNotContain("04", typed, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Attach_follows_the_output_while_the_log_keeps_every_line_and_ends_with_the_exit_code()
    {
        await using var session = await StartAsync();
        var app = await RunAsync(session, "attach-log",
            ["/bin/sh", "-c", "sleep 1; i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); sleep 0.02; done; exit 7"]);

        var request = new AttachRequest { ContainerId = app.ContainerId, Stdout = true, Stderr = true };
        var url = (await session.Runtime.AttachAsync(request)).Url;
        var run = await GoAsync("", "exec", "-url", url, "-stdout", "-stderr");

        Assert.True(run.Exit == 0, run.ToString());
        Assert.Equal("7", run.Info["exitcode"]);
        // The attach sees a tail of the output, in order and without gaps (its first line may be cut).
        var seen = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).ToList();
        Assert.True(seen.Count > 50, $"the attach saw {seen.Count} lines: {run.Stdout}");
        var first = int.Parse(seen[0]["line-".Length..], CultureInfo.InvariantCulture);
        Assert.Equal(Enumerable.Range(first, 300 - first).Select(i => $"line-{i}"), seen);
        // The log has every line, once, in order.
        var logged = CriLogs(app.LogPath).Where(l => l.StartsWith("line-", StringComparison.Ordinal)).ToList();
        Assert.Equal(Enumerable.Range(0, 300).Select(i => $"line-{i}"), logged);
    }

    /// <summary>The text of each line of a CRI log file (timestamp, stream and tag stripped).</summary>
    private static List<string> CriLogs(string path) =>
        [.. File.ReadAllLines(path).Select(l => l.Split(' ', 4)).Where(p => p.Length == 4).Select(p => p[3])];

    [Theory]
    [InlineData("")]
    [InlineData("runc")]
    public async Task Attach_to_a_tty_container_types_into_its_terminal(string handler)
    {
        await using var session = await StartWithHandlerAsync(handler);
        var app = await RunAsync(session, "attach-tty", ["/bin/sh", "-c", "tty; read line; echo got-$line; exit 4"], tty: true, stdin: true, handler: handler);
        await WaitForLogTextAsync(app.LogPath, "/dev/pts/");

        var url = (await session.Runtime.AttachAsync(new AttachRequest { ContainerId = app.ContainerId, Stdin = true, Stdout = true, Tty = true })).Url;
        var run = await GoAsync("hello\n", "exec", "-url", url, "-stdin", "-tty");

        Assert.Equal("4", run.Info["exitcode"]);
        Assert.Contains("got-hello\r\n", run.Stdout);
        await WaitForLogTextAsync(app.LogPath, "got-hello");
        Assert.Contains(CriLogs(app.LogPath), l => l.TrimEnd('\r') == "got-hello");
        Assert.DoesNotContain(" stderr ", File.ReadAllText(app.LogPath)); // a terminal has one output stream
    }

    private static async Task WaitForLogTextAsync(string path, string text)
    {
        static string Text(string path) => File.Exists(path) ? File.ReadAllText(path) : "";
        for (var i = 0; i < 200 && !Text(path).Contains(text, StringComparison.Ordinal); i++)
        {
            await Task.Delay(50);
        }

        Assert.Contains(text, Text(path));
    }

    [Fact]
    public async Task Attach_writes_stdin_to_a_container_created_with_stdin()
    {
        await using var session = await StartAsync();
        var app = await RunAsync(session, "attach-stdin", ["/bin/sh", "-c", "read line; echo got-$line; exit 4"], stdin: true);

        var url = (await session.Runtime.AttachAsync(new AttachRequest { ContainerId = app.ContainerId, Stdin = true, Stdout = true })).Url;
        var run = await GoAsync("hello\n", "exec", "-url", url, "-stdin", "-stdout");

        Assert.Equal("4", run.Info["exitcode"]);
        Assert.Equal("got-hello\n", run.Stdout);
        Assert.Contains("got-hello", CriLogs(app.LogPath));

        // A container created without stdin refuses an attach that wants it.
        var other = await RunAsync(session, "attach-no-stdin", ["sleep", "3600"]);
        var e = await Assert.ThrowsAsync<RpcException>(async () =>
            await session.Runtime.AttachAsync(new AttachRequest { ContainerId = other.ContainerId, Stdin = true, Stdout = true }));
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Contains("without stdin", e.Status.Detail);
    }

    [Fact]
    public async Task Two_attaches_both_see_the_output_and_a_stdin_once_container_reads_end_of_input_after_the_first()
    {
        await using var session = await StartAsync();
        // Ticks until told to read; then echoes its input until end of file, which only comes when the stdin_once
        // attach's client ends its input (the monitor keeps no copy of the write end).
        var app = await RunAsync(session, "attach-once",
            ["/bin/sh", "-c", "while [ ! -e /tmp/go ]; do echo tick; sleep 0.2; done; while read l; do echo got-$l; done; echo stdin-closed; exit 5"],
            stdin: true, stdinOnce: true);

        var watcherUrl = (await session.Runtime.AttachAsync(new AttachRequest { ContainerId = app.ContainerId, Stdout = true })).Url;
        var (watcher, watcherInfo) = StartGo("exec", "-url", watcherUrl, "-stdout");
        try
        {
            Assert.Equal("tick", await watcher.StandardOutput.ReadLineAsync()); // attached
            var writerUrl = (await session.Runtime.AttachAsync(new AttachRequest { ContainerId = app.ContainerId, Stdin = true, Stdout = true })).Url;
            var writing = GoAsync("one\ntwo\n", "exec", "-url", writerUrl, "-stdin", "-stdout");
            Assert.Equal(0, (await ShAsync(session, app.ContainerId, "touch /tmp/go")).ExitCode);

            var writer = await writing;
            Assert.True(writer.Info["exitcode"] == "5", writer.ToString());
            Assert.EndsWith("got-one\ngot-two\nstdin-closed\n", writer.Stdout);

            // The first attach saw the same output, from its first tick on.
            var rest = await watcher.StandardOutput.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.EndsWith("got-one\ngot-two\nstdin-closed\n", rest);
            await watcher.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal("5", GoInfo.Read(watcherInfo)["exitcode"]);
        }
        finally
        {
            Stop(watcher);
        }

        // And the log has it all, next to the attaches.
        var logged = CriLogs(app.LogPath);
        Assert.Equal(["got-one", "got-two", "stdin-closed"], logged.SkipWhile(l => l == "tick"));
    }

    [Fact]
    public async Task PortForward_reaches_servers_inside_a_pod_on_the_bridge_and_carries_100_MB_intact()
    {
        Assert.SkipUnless(TestBridge.Available, "the CNI plugins (containernetworking-plugins), ip and iptables are needed: scripts/install-deps.sh --test");
        var directory = Directory.CreateTempSubdirectory("nacelle-e2e-").FullName;
        await using var bridge = new TestBridge(directory);
        await using var session = await StartAsync(bridge.InstallInto(directory), directory);
        var web = await RunAsync(session, "pf-web",
            ["/bin/sh", "-c", "mkdir -p /www && echo hello-from-the-pod > /www/index.html && (nc -ll -p 9000 -e /bin/cat &) && exec httpd -f -p 8080 -h /www"],
            network: NamespaceMode.Pod);
        Assert.True(await EventuallyAsync(async () => (await ShAsync(session, web.ContainerId, "wget -q -O - http://127.0.0.1:8080/")).ExitCode == 0),
            "httpd did not come up in the pod");

        var url = (await session.Runtime.PortForwardAsync(new PortForwardRequest { PodSandboxId = web.PodId })).Url;
        var page = Path.Combine(_temp, "page");
        var run = await GoAsync("", "portforward", "-url", url, "-port", "8080", "-request", "\"GET / HTTP/1.0\\r\\n\\r\\n\"", "-save", page);
        Assert.True(run.Exit == 0, run.ToString());
        Assert.Contains("hello-from-the-pod", await File.ReadAllTextAsync(page));

        // 100 MB each way through the pod's echo server (nc running cat), checked end to end.
        url = (await session.Runtime.PortForwardAsync(new PortForwardRequest { PodSandboxId = web.PodId, Port = { 9000 } })).Url;
        run = await GoAsync("", "portforward", "-url", url, "-port", "9000", "-bytes", (100L << 20).ToString(CultureInfo.InvariantCulture));
        var line = Assert.Single(run.Info.Lines, l => l.StartsWith("conn=", StringComparison.Ordinal));
        Assert.Matches($"sent={100L << 20} sentsha=([0-9a-f]{{64}}) received={100L << 20} receivedsha=\\1 error=\"\"", line);

        // WebSocket (Python client) to the same server.
        url = (await session.Runtime.PortForwardAsync(new PortForwardRequest { PodSandboxId = web.PodId })).Url;
        var ws = await PythonAsync("portforward", url, "9000", (1 << 20).ToString(CultureInfo.InvariantCulture));
        Assert.Equal(1 << 20, ws.GetProperty("received").GetInt32());
        Assert.Equal(ws.GetProperty("sentsha").GetString(), ws.GetProperty("receivedsha").GetString());

        // A port nothing listens on: the client hears why on the error stream.
        url = (await session.Runtime.PortForwardAsync(new PortForwardRequest { PodSandboxId = web.PodId })).Url;
        run = await GoAsync("", "portforward", "-url", url, "-port", "8081", "-bytes", "10");
        Assert.Contains("127.0.0.1:8081", Assert.Single(run.Info.Lines, l => l.StartsWith("conn=", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task PortForward_reaches_a_server_of_a_host_network_pod()
    {
        await using var session = await StartAsync();
        var port = Ports.FreeLoopbackPort();
        var web = await RunAsync(session, "pf-host",
            ["/bin/sh", "-c", $"mkdir -p /www && echo hello-from-the-host-pod > /www/index.html && exec httpd -f -p 127.0.0.1:{port} -h /www"]);
        Assert.True(await EventuallyAsync(async () => (await ShAsync(session, web.ContainerId, $"wget -q -O - http://127.0.0.1:{port}/")).ExitCode == 0),
            "httpd did not come up");

        var url = (await session.Runtime.PortForwardAsync(new PortForwardRequest { PodSandboxId = web.PodId, Port = { port } })).Url;
        var page = Path.Combine(_temp, "host-page");
        var run = await GoAsync("", "portforward", "-url", url, "-port", port.ToString(CultureInfo.InvariantCulture),
            "-request", "\"GET / HTTP/1.0\\r\\n\\r\\n\"", "-save", page);
        Assert.True(run.Exit == 0, run.ToString());
        Assert.Contains("hello-from-the-host-pod", await File.ReadAllTextAsync(page));
    }

    [Fact]
    public async Task Twenty_streams_at_once_each_get_their_own_output_and_exit_code()
    {
        await using var session = await StartAsync();
        var app = await RunAsync(session, "many", ["sleep", "3600"]);
        var urls = new List<string>();
        for (var i = 0; i < 20; i++)
        {
            urls.Add(await ExecUrlAsync(session, app.ContainerId, ["/bin/sh", "-c", $"echo start-{i}; sleep 1; echo end-{i}; exit {i}"]));
        }

        var runs = await Task.WhenAll(urls.Select(url => GoAsync("", "exec", "-url", url)));

        for (var i = 0; i < 20; i++)
        {
            Assert.Equal($"start-{i}\nend-{i}\n", runs[i].Stdout);
            Assert.Equal(i.ToString(CultureInfo.InvariantCulture), runs[i].Info["exitcode"]);
        }
    }

    [Fact]
    public async Task A_used_token_is_refused_and_runs_nothing()
    {
        await using var session = await StartAsync();
        var app = await RunAsync(session, "token", ["sleep", "3600"]);
        var url = await ExecUrlAsync(session, app.ContainerId, ["/bin/sh", "-c", "echo ran >> /tmp/runs"]);

        var first = await GoAsync("", "exec", "-url", url);
        Assert.Equal("0", first.Info["exitcode"]);
        var second = await GoAsync("", "exec", "-url", url);
        Assert.Equal("404", second.Info["http"]);

        Assert.Equal("1", (await ShAsync(session, app.ContainerId, "wc -l < /tmp/runs")).Stdout.ToStringUtf8().Trim());
    }

    [Fact]
    public async Task A_client_that_goes_away_leaves_no_process_behind()
    {
        await using var session = await StartAsync();
        var app = await RunAsync(session, "vanish", ["sleep", "3600"]);

        foreach (var tty in new[] { false, true })
        {
            var marker = tty ? "4321" : "1234";
            var (client, _) = StartGo("exec", "-url",
                await ExecUrlAsync(session, app.ContainerId, ["/bin/sh", "-c", $"echo ready; exec sleep {marker}"], stdin: true, tty: tty),
                "-stdin", tty ? "-tty" : "-stdout");
            try
            {
                Assert.StartsWith("ready", await client.StandardOutput.ReadLineAsync());
                Assert.Contains($"sleep {marker}", (await ShAsync(session, app.ContainerId, "ps -o args")).Stdout.ToStringUtf8());
            }
            finally
            {
                Stop(client);
            }

            Assert.True(await EventuallyAsync(async () =>
                    !(await ShAsync(session, app.ContainerId, "ps -o args")).Stdout.ToStringUtf8().Contains($"sleep {marker}", StringComparison.Ordinal)),
                $"sleep {marker} still runs after its client went away (tty: {tty})");
        }
    }

    [Fact]
    public async Task A_daemon_restart_ends_open_streams_and_leaves_containers_and_their_logs_alone()
    {
        var directory = Directory.CreateTempSubdirectory("nacelle-e2e-").FullName;
        await using var session = await StartAsync(directory: directory);
        var app = await RunAsync(session, "restart",
            ["/bin/sh", "-c", "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.1; done"]);
        var (exec, execInfo) = StartGo("exec", "-url", await ExecUrlAsync(session, app.ContainerId, ["/bin/sh", "-c", "echo ready; exec sleep 5678"]));
        var (attach, _) = StartGo("exec", "-url",
            (await session.Runtime.AttachAsync(new AttachRequest { ContainerId = app.ContainerId, Stdout = true })).Url);
        try
        {
            Assert.Equal("ready", await exec.StandardOutput.ReadLineAsync());
            Assert.StartsWith("tick-", await attach.StandardOutput.ReadLineAsync());

            Assert.Equal(0, await session.Daemon.StopAsync());
            // Both clients see their streams end with the daemon.
            using (var ended = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
            {
                await exec.WaitForExitAsync(ended.Token);
                await attach.WaitForExitAsync(ended.Token);
            }

            Assert.NotEqual("0", GoInfo.Read(execInfo)["exitcode"]);
            var ticksAtStop = CriLogs(app.LogPath).Count;
            session.Daemon = await DaemonProcess.RestartAsync(session.Daemon);

            var status = await session.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = app.ContainerId });
            Assert.Equal(ContainerState.ContainerRunning, status.Status.State);
            Assert.True(await EventuallyAsync(() => Task.FromResult(CriLogs(app.LogPath).Count > ticksAtStop + 5)), "the log stopped growing");
            var ticks = CriLogs(app.LogPath);
            Assert.Equal(Enumerable.Range(0, ticks.Count).Select(i => $"tick-{i}"), ticks);
            // The exec's process went with its stream.
            Assert.True(await EventuallyAsync(async () =>
                !(await ShAsync(session, app.ContainerId, "ps -o args")).Stdout.ToStringUtf8().Contains("sleep 5678", StringComparison.Ordinal)),
                "the exec's process outlived its stream");
        }
        finally
        {
            Stop(exec);
            Stop(attach);
        }
    }

    [Fact]
    public async Task Stream_limits_refuse_with_a_message_naming_the_setting()
    {
        await using var session = await StartAsync("[stream]\nmax_streams_per_pod = 1\n");
        var app = await RunAsync(session, "limits", ["sleep", "3600"]);
        var pending = await ExecUrlAsync(session, app.ContainerId, ["echo", "later"]);
        var (held, _) = StartGo("exec", "-url", await ExecUrlAsync(session, app.ContainerId, ["/bin/sh", "-c", "echo ready; exec sleep 600"]));
        try
        {
            Assert.Equal("ready", await held.StandardOutput.ReadLineAsync());

            var e = await Assert.ThrowsAsync<RpcException>(async () => await ExecUrlAsync(session, app.ContainerId, ["true"]));
            Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
            Assert.Contains("stream.max_streams_per_pod = 1", e.Status.Detail);

            // A URL handed out before the limit was reached is refused when used (HTTP 429), naming it too.
            var refused = await GoAsync("", "exec", "-url", pending);
            Assert.Equal("429", refused.Info["http"]);
            Assert.Contains("stream.max_streams_per_pod", refused.Info["body"]);
        }
        finally
        {
            Stop(held);
        }

        // Once the stream is gone, the pod may stream again.
        Assert.True(await EventuallyAsync(async () =>
        {
            try
            {
                await ExecUrlAsync(session, app.ContainerId, ["true"]);
                return true;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.ResourceExhausted)
            {
                return false;
            }
        }), "the ended stream was never released");
    }

    [Fact]
    public async Task ExecSync_answers_5_MB_of_output_and_refuses_20_MB_with_ResourceExhausted()
    {
        await using var session = await StartAsync();
        var app = await RunAsync(session, "execsync-size", ["sleep", "3600"]);

        var five = await ShAsync(session, app.ContainerId, "dd if=/dev/zero bs=1048576 count=5 2>/dev/null; echo tail >&2; exit 2", timeout: 60);
        Assert.Equal(2, five.ExitCode);
        Assert.Equal(5 << 20, five.Stdout.Length);
        Assert.True(five.Stdout.Span.IndexOfAnyExcept((byte)0) < 0, "the output is not what dd wrote");
        Assert.Equal("tail\n", five.Stderr.ToStringUtf8());

        var e = await Assert.ThrowsAsync<RpcException>(async () =>
            await ShAsync(session, app.ContainerId, "dd if=/dev/zero bs=1048576 count=20 2>/dev/null", timeout: 60));
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.Contains("more output than ExecSync can answer", e.Status.Detail);
        Assert.Contains("Exec", e.Status.Detail);

        // A timeout still kills the command: DeadlineExceeded.
        e = await Assert.ThrowsAsync<RpcException>(async () => await ShAsync(session, app.ContainerId, "echo started; sleep 30", timeout: 1));
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        Assert.True(await EventuallyAsync(async () =>
            !(await ShAsync(session, app.ContainerId, "ps -o args")).Stdout.ToStringUtf8().Contains("sleep 30", StringComparison.Ordinal)));
    }

    /// <summary>Regression (found by the CRI fuzzer, seed 20261205): a command that ended at once but left a background
    /// child holding its stdout was answered DeadlineExceeded when the child outlived the timeout, as if the command had
    /// hung. The timeout is the command's: its exit and what it wrote are the answer, and the child goes on.</summary>
    [Fact]
    public async Task ExecSync_answers_a_commands_exit_while_a_background_child_still_holds_its_output()
    {
        await using var session = await StartAsync();
        var app = await RunAsync(session, "execsync-child", ["sleep", "3600"]);

        var answer = await ShAsync(session, app.ContainerId, "echo before; (sleep 0.2; echo late) & exec sleep 30 >/dev/null & echo after; exit 3", timeout: 5);
        Assert.Equal(3, answer.ExitCode);
        Assert.Equal("before\nafter\nlate\n", answer.Stdout.ToStringUtf8());

        // The child kept the pipe past the timeout: still the command's exit, and the child runs on.
        answer = await ShAsync(session, app.ContainerId, "sleep 20 & echo spawned", timeout: 2);
        Assert.Equal(0, answer.ExitCode);
        Assert.Equal("spawned\n", answer.Stdout.ToStringUtf8());
        Assert.Contains("sleep 20", (await ShAsync(session, app.ContainerId, "ps -o args")).Stdout.ToStringUtf8(), StringComparison.Ordinal);
    }
}
