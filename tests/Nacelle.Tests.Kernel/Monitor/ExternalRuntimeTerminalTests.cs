using System.Text;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Runtime.Oci;
using Nacelle.ContainerCore.Spec;
using Nacelle.Monitor.Logging;
using Nacelle.Tests.Support.CriLogs;

namespace Nacelle.Tests.Kernel.Monitor;

/// <summary>
/// Terminals under an external OCI runtime (Debian's runc as the handler), against a real nacelle-monitor: runc gets a
/// --console-socket from the monitor and sends the pty master of the container's (or exec's) terminal over it; the
/// monitor then serves that master as it serves the built-in core's: the CRI log as stdout, attach with stdin, an
/// exec-stream's "pty" with the window size asked and resizes. A runtime that connects and sends no master fails the
/// create naming the handler, with its process killed and its socket gone.
/// </summary>
public sealed class ExternalRuntimeTerminalTests
{
    private const string Runc = "/usr/sbin/runc";

    private static ExternalRuntime RuncIn(MonitorPodFixture pod) => new("runc", Runc, Path.Combine(pod.Scope.Root, "runc"), []);

    [Fact]
    public async Task A_tty_container_under_runc_has_a_pts_terminal_logged_as_stdout_and_takes_attach_stdin()
    {
        Assert.SkipUnless(File.Exists(Runc), $"{Runc} is not installed (Debian's runc, scripts/install-deps.sh --test)");
        await using var pod = await MonitorPodFixture.StartAsync();
        var spec = pod.Scope.Spec(
            "tty; [ -t 0 ] && echo stdin-tty; [ -t 1 ] && echo stdout-tty; stty size; echo to-stderr >&2; read line; echo \"got:$line\"; exec sleep 1000");
        spec.Process!.Terminal = true;
        spec.Process.ConsoleSize = new SpecConsoleSize { Height = 40, Width = 100 };
        var logPath = Path.Combine(pod.Scope.Root, "tty.log");
        var running = await pod.RunAsync("c1", spec, logPath, RuncIn(pod), stdin: true);
        Assert.Equal("Running", running.Status);
        Assert.Equal(pod.Monitor.Pid, MonitorPodFixture.ParentOf(running.Pid)); // runc exited; the monitor adopted the init

        var lines = await WaitForLogAsync(logPath, "to-stderr");
        Assert.All(lines, l => Assert.Equal(CriLogStream.Stdout, l.Stream));
        var texts = lines.Select(l => l.Text.TrimEnd('\r')).ToList();
        Assert.Contains(texts, t => t.StartsWith("/dev/pts/", StringComparison.Ordinal));
        Assert.Contains("stdin-tty", texts);
        Assert.Contains("stdout-tty", texts);
        Assert.Contains("40 100", texts);

        // Attach with stdin: a copy of the master ("pty"); what is typed reaches the container, its answer the
        // attacher's stdout (and the log).
        var attach = await pod.Client.OpenStreamAsync(new MonitorRequest { Op = MonitorProtocol.Attach, ContainerId = "c1", Stdin = true, Stdout = true });
        var output = new DescriptorText(attach.TakeRequired("stdout"));
        try
        {
            using var pty = attach.TakeRequired("pty");
            Assert.Null(attach.Take("stderr")); // a terminal has one output stream
            DescriptorCalls.Write(pty, "hello-attach\n"u8);
            await output.WaitForAsync("got:hello-attach");
        }
        finally
        {
            await attach.DisposeAsync(); // detached: the monitor closes its end of the attacher's pipe
            output.Dispose();
        }

        Assert.Contains(await WaitForLogAsync(logPath, "got:hello-attach"), l => l.Text.TrimEnd('\r') == "got:hello-attach");
        Assert.Empty(Directory.GetFileSystemEntries(ConsoleDirectory(pod, "c1"))); // the console socket is gone
        await pod.Client.SendAsync(new MonitorRequest { Op = MonitorProtocol.Kill, ContainerId = "c1", Signal = 9 });
        Assert.Equal(137, (await pod.WaitStoppedAsync("c1", TimeSpan.FromSeconds(20))).ExitCode);
    }

    [Fact]
    public async Task An_exec_stream_with_a_terminal_under_runc_gets_the_window_size_and_resizes()
    {
        Assert.SkipUnless(File.Exists(Runc), $"{Runc} is not installed (Debian's runc, scripts/install-deps.sh --test)");
        await using var pod = await MonitorPodFixture.StartAsync();
        await pod.RunAsync("c1", pod.Scope.Spec("exec sleep 1000"), runtime: RuncIn(pod));

        var process = MonitorPodFixture.Process("/bin/sh", "-c", "tty; stty size; read line; stty size; echo \"got:$line\"; exit 5");
        process.Terminal = true;
        process.ConsoleSize = new SpecConsoleSize { Height = 33, Width = 77 };
        await using var stream = await pod.Client.OpenStreamAsync(new MonitorRequest
        {
            Op = MonitorProtocol.ExecStream, ContainerId = "c1", Stdin = true,
            ProcessJson = JsonSerializer.Serialize(process, RuntimeSpecJson.Default.SpecProcess),
        });
        Assert.Equal(new[] { "pty" }, stream.DescriptorNames.ToArray());
        using var master = stream.TakeRequired("pty");
        using var terminal = new DescriptorText(SpawnCalls.DuplicateAtLeast(master, 0));
        await terminal.WaitForAsync("33 77");
        Assert.Contains("/dev/pts/", terminal.Text, StringComparison.Ordinal);

        // The daemon resizes a terminal on its master (TIOCSWINSZ), as for the built-in core's.
        Pty.SetWindowSize(master, 50, 120);
        DescriptorCalls.Write(master, "typed\n"u8);
        await terminal.WaitForAsync("got:typed");
        Assert.Contains("50 120", terminal.Text, StringComparison.Ordinal);

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var exited = await stream.NextEventAsync(timeout.Token);
        Assert.Equal(MonitorProtocol.EventExited, exited!.Event);
        Assert.Equal(5, exited.Exec!.ExitCode);
        Assert.Empty(Directory.GetFileSystemEntries(ConsoleDirectory(pod, "c1")));
        Assert.DoesNotContain(MonitorPodFixture.ThreadNames(pod.Monitor.Pid), name => name.StartsWith(".NET TP", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_runtime_that_sends_no_terminal_fails_the_create_naming_the_handler_and_leaves_no_process()
    {
        Assert.SkipUnless(File.Exists("/usr/bin/python3"), "/usr/bin/python3 is not installed (the fake runtime is a Python script)");
        await using var pod = await MonitorPodFixture.StartAsync();
        // A "runtime" whose create starts a process, writes its pid, connects to the console socket and hangs up
        // without sending a master (delete: nothing to do).
        var fake = Path.Combine(pod.Scope.Root, "fake-runtime");
        var started = Path.Combine(pod.Scope.Root, "fake-started.pid");
        await File.WriteAllTextAsync(fake, $$"""
            #!/usr/bin/python3
            import socket, subprocess, sys
            args = sys.argv[1:]
            def value(flag):
                return args[args.index(flag) + 1] if flag in args else None
            if "create" in args:
                child = subprocess.Popen(["sleep", "1000"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
                open(value("--pid-file"), "w").write(str(child.pid))
                open("{{started}}", "w").write(str(child.pid))
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(value("--console-socket"))
                s.close()
            sys.exit(0)
            """);
        File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var spec = pod.Scope.Spec("tty");
        spec.Process!.Terminal = true;
        var error = await Assert.ThrowsAsync<NacelleException>(() => pod.Client.SendAsync(new MonitorRequest
        {
            Op = MonitorProtocol.Create, ContainerId = "c1", SpecJson = RuntimeSpecFile.Serialize(spec), Bundle = pod.Scope.Root,
            Runtime = new ExternalRuntime("fake", fake, Path.Combine(pod.Scope.Root, "fake-root"), []),
        }));
        Assert.Equal(ErrorKind.FailedPrecondition, error.Kind);
        Assert.Contains("runtime handler \"fake\"", error.Message, StringComparison.Ordinal);
        Assert.Contains("without sending the terminal's pty master", error.Message, StringComparison.Ordinal);

        // The process it left was killed and reaped (no zombie under the monitor), and nothing of the container is left.
        var pid = int.Parse(await File.ReadAllTextAsync(started), System.Globalization.CultureInfo.InvariantCulture);
        Assert.False(Directory.Exists($"/proc/{pid}"), $"the fake runtime's process {pid} is still there");
        Assert.Empty((await pod.Client.SendAsync(new MonitorRequest { Op = MonitorProtocol.List })).Containers!);
        Assert.False(Directory.Exists(Path.Combine(pod.Options.Directory, "containers", "c1")), "the container's state directory");
        Assert.DoesNotContain(MonitorPodFixture.ThreadNames(pod.Monitor.Pid), name => name.StartsWith(".NET TP", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_console_socket_gives_up_at_its_deadline_and_removes_itself()
    {
        var directory = Path.Combine(Directory.CreateTempSubdirectory("nacelle-console-").FullName, new string('d', 120));
        try
        {
            string path;
            using (var console = OciConsoleSocket.Open(directory))
            {
                path = console.Path;
                Assert.True(File.Exists(path));
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(directory));
                Assert.True(Encoding.UTF8.GetByteCount(console.Address) < 108, console.Address);
                var late = await Assert.ThrowsAsync<NacelleException>(() =>
                    console.ReceiveAsync("the runtime", DateTime.UtcNow + TimeSpan.FromMilliseconds(300), TimeSpan.FromMilliseconds(300), CancellationToken.None));
                Assert.Equal(ErrorKind.FailedPrecondition, late.Kind);
                Assert.Contains("did not connect to its --console-socket", late.Message, StringComparison.Ordinal);
            }

            Assert.False(File.Exists(path), "the socket after disposal");

            // A peer that connects through the address and sends a descriptor: that descriptor is what comes back.
            using (var console = OciConsoleSocket.Open(directory))
            {
                using var peer = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, 0);
                await peer.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(console.Address));
                var (read, write) = DescriptorCalls.CreatePipe(nonBlockingRead: false, nonBlockingWrite: false);
                using (read)
                using (write)
                {
                    using var peerHandle = new SafeFileHandle(peer.Handle, ownsHandle: false);
                    UnixSocketCalls.Send(peerHandle, "/dev/pts/0"u8, [write]);
                    using var received = await console.ReceiveAsync("the runtime", DateTime.UtcNow + TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(10),
                        CancellationToken.None);
                    DescriptorCalls.Write(received, "through"u8);
                    var buffer = new byte[16];
                    Assert.Equal("through", Encoding.UTF8.GetString(buffer, 0, DescriptorCalls.Read(read, buffer)));
                }
            }
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(directory)!, recursive: true);
        }
    }

    private static string ConsoleDirectory(MonitorPodFixture pod, string id) =>
        Path.Combine(pod.Options.Directory, "containers", id, "oci", "console");

    private static async Task<List<CriLogLine>> WaitForLogAsync(string logPath, string text)
    {
        List<CriLogLine> lines = [];
        for (var i = 0; i < 200 && !lines.Any(l => l.Text.Contains(text, StringComparison.Ordinal)); i++)
        {
            await Task.Delay(50);
            lines = File.Exists(logPath) ? [.. CriLogReader.ReadAllLines(logPath)] : [];
        }

        Assert.True(lines.Any(l => l.Text.Contains(text, StringComparison.Ordinal)), $"'{text}' in {logPath}:\n" + string.Join('\n', lines.Select(l => l.Text)));
        return lines;
    }

    /// <summary>Everything read from a descriptor (a pipe, a pty master; now this reader's) by a thread of its own until
    /// it ends.</summary>
    private sealed class DescriptorText : IDisposable
    {
        private readonly SafeFileHandle _handle;
        private readonly StringBuilder _text = new();
        private readonly Thread _reader;

        public DescriptorText(SafeFileHandle handle)
        {
            _handle = handle;
            _reader = new Thread(Read) { IsBackground = true, Name = "test descriptor reader" };
            _reader.Start();
        }

        public string Text
        {
            get
            {
                lock (_text)
                {
                    return _text.ToString();
                }
            }
        }

        private void Read()
        {
            var buffer = new byte[4096];
            try
            {
                int n;
                while ((n = DescriptorCalls.Read(_handle, buffer)) != 0)
                {
                    if (n < 0)
                    {
                        Thread.Sleep(10); // a non-blocking descriptor with nothing yet
                        continue;
                    }

                    lock (_text)
                    {
                        _text.Append(Encoding.UTF8.GetString(buffer, 0, n));
                    }
                }
            }
            catch (IOException)
            {
                // EIO: a pty whose last slave closed
            }
        }

        public async Task WaitForAsync(string text)
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            while (!Text.Contains(text, StringComparison.Ordinal) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(20);
            }

            Assert.True(Text.Contains(text, StringComparison.Ordinal), $"'{text}' in:\n{Text}");
        }

        /// <summary>Waits for the reader to see the end (the writer closed, the pty hung up), then closes the descriptor;
        /// a reader still blocked after 10 s keeps it (closing it under a blocked read could hand its number to another).</summary>
        public void Dispose()
        {
            if (_reader.Join(TimeSpan.FromSeconds(10)))
            {
                _handle.Dispose();
            }
        }
    }
}
