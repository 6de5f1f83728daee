using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Nacelle.Common.PodMonitor;
using Nacelle.Common;
using Nacelle.ContainerCore.Spec;
using Nacelle.Monitor.Logging;
using Nacelle.Tests.Support.CriLogs;
using Nacelle.Sandbox.Monitor;

namespace Nacelle.Tests.Kernel.Monitor;

/// <summary>
/// The monitor's operations beyond the lifecycle, against a real nacelle-monitor: exec-sync (output, exit codes,
/// truncation, timeout, a missing command), update (the cgroup file changes), watch (exit events only after the exit
/// record exists), tty containers (a /dev/pts terminal from the container's own devpts, logged as stdout) and the
/// subreaper role (orphans re-parented to the monitor are reaped, never left as zombies).
/// </summary>
public sealed class MonitorOperationsKernelTests
{
    /// <summary>The monitor answers a hello with the newest version both sides speak, and refuses one older than it speaks.</summary>
    [Fact]
    public async Task Hello_agrees_on_the_newest_version_both_speak()
    {
        await using var pod = await MonitorPodFixture.StartAsync();
        Assert.Equal(MonitorProtocol.Version, pod.Client.ProtocolVersion);
        await using var other = new MonitorClient(pod.Options.SocketPath);
        await other.ConnectAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(1, (await other.SendAsync(new MonitorRequest { Op = MonitorProtocol.Hello, Version = 1 })).Version);
        Assert.Equal(MonitorProtocol.Version, (await other.SendAsync(new MonitorRequest { Op = MonitorProtocol.Hello, Version = MonitorProtocol.Version + 5 })).Version);
        var refused = await Assert.ThrowsAsync<NacelleException>(() => other.SendAsync(new MonitorRequest { Op = MonitorProtocol.Hello, Version = 0 }));
        Assert.Equal(ErrorKind.FailedPrecondition, refused.Kind);
    }

    [Fact]
    public async Task Exec_sync_captures_output_exit_code_truncation_timeout_and_names_a_missing_command()
    {
        await using var pod = await MonitorPodFixture.StartAsync();
        var running = await pod.RunAsync("c1", pod.Scope.Spec("exec sleep 1000"));
        Assert.Equal("Running", running.Status);
        Assert.False(string.IsNullOrEmpty(running.CgroupPath));

        var exec = (await pod.ExecAsync("c1", MonitorPodFixture.Process("/bin/sh", "-c", "echo out; echo err >&2; exit 3"))).Exec!;
        Assert.Equal(3, exec.ExitCode);
        Assert.Equal("out\n", Encoding.UTF8.GetString(exec.Stdout));
        Assert.Equal("err\n", Encoding.UTF8.GetString(exec.Stderr));
        Assert.False(exec.TimedOut);
        Assert.False(exec.Truncated);

        // More output than the limit: the first bytes are kept, the rest drained (the process is not blocked).
        var big = (await pod.ExecAsync("c1", MonitorPodFixture.Process("/bin/seq", "1", "20000"), outputLimit: 100)).Exec!;
        Assert.Equal(0, big.ExitCode);
        Assert.Equal(100, big.Stdout.Length);
        Assert.StartsWith("1\n2\n3\n", Encoding.UTF8.GetString(big.Stdout), StringComparison.Ordinal);
        Assert.True(big.Truncated);

        // Other connections are served while an exec waits.
        var watch = Stopwatch.StartNew();
        var slow = pod.ExecAsync("c1", MonitorPodFixture.Process("/bin/sleep", "100"), timeoutMs: 500);
        var other = new MonitorClient(pod.Options.SocketPath);
        await using (other)
        {
            await other.ConnectAsync(TimeSpan.FromSeconds(5));
            var listed = await other.SendAsync(new MonitorRequest { Op = MonitorProtocol.List });
            Assert.Single(listed.Containers!);
        }

        var timedOut = (await slow).Exec!;
        watch.Stop();
        Assert.True(timedOut.TimedOut);
        Assert.Equal(137, timedOut.ExitCode);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"the timeout took {watch.Elapsed}");

        var missing = await Assert.ThrowsAsync<NacelleException>(() => pod.ExecAsync("c1", MonitorPodFixture.Process("/bin/no-such-command")));
        Assert.Equal(ErrorKind.NotFound, missing.Kind);
        Assert.Contains("/bin/no-such-command", missing.Message, StringComparison.Ordinal);
        var notInPath = await Assert.ThrowsAsync<NacelleException>(() => pod.ExecAsync("c1", MonitorPodFixture.Process("nonexistent-tool", "-x")));
        Assert.Equal(ErrorKind.NotFound, notInPath.Kind);
        Assert.Contains("nonexistent-tool", notInPath.Message, StringComparison.Ordinal);

        // The connection still works after the errors; a stopped container refuses exec.
        await pod.Client.SendAsync(new MonitorRequest { Op = MonitorProtocol.Kill, ContainerId = "c1", Signal = 9 });
        Assert.Equal("Stopped", (await pod.WaitStoppedAsync("c1", TimeSpan.FromSeconds(20))).Status);
        var stopped = await Assert.ThrowsAsync<NacelleException>(() => pod.ExecAsync("c1", MonitorPodFixture.Process("/bin/true")));
        Assert.Equal(ErrorKind.FailedPrecondition, stopped.Kind);
    }

    [Fact]
    public async Task Update_changes_the_memory_limit_in_the_container_cgroup()
    {
        await using var pod = await MonitorPodFixture.StartAsync();
        var running = await pod.RunAsync("c1", pod.Scope.Spec("exec sleep 1000"));
        const long limit = 64L << 20;
        var resources = new SpecResources { Memory = new SpecMemory { Limit = limit } };
        var updated = (await pod.Client.SendAsync(new MonitorRequest
        {
            Op = MonitorProtocol.Update, ContainerId = "c1", ResourcesJson = JsonSerializer.Serialize(resources, RuntimeSpecJson.Default.SpecResources),
        })).Container!;
        Assert.Equal(running.CgroupPath, updated.CgroupPath);

        var v1 = $"/sys/fs/cgroup/memory{updated.CgroupPath}/memory.limit_in_bytes";
        var file = File.Exists(v1) ? v1 : $"/sys/fs/cgroup{updated.CgroupPath}/memory.max";
        Assert.Equal(limit.ToString(System.Globalization.CultureInfo.InvariantCulture), File.ReadAllText(file).Trim());

        var bad = await Assert.ThrowsAsync<NacelleException>(() => pod.Client.SendAsync(new MonitorRequest
        {
            Op = MonitorProtocol.Update, ContainerId = "c1", ResourcesJson = "{not json",
        }));
        Assert.Equal(ErrorKind.InvalidArgument, bad.Kind);
    }

    [Fact]
    public async Task Watchers_get_the_exit_event_after_the_exit_record_is_written()
    {
        await using var pod = await MonitorPodFixture.StartAsync();
        var (_, first, firstPending) = await pod.WatchAsync();
        var (_, second, secondPending) = await pod.WatchAsync();
        var (_, broken, _) = await pod.WatchAsync();
        await using (first)
        await using (second)
        {
            await broken.DisposeAsync(); // a watcher that went away must not disturb the others

            await pod.RunAsync("c1", pod.Scope.Spec("sleep 0.3; exit 7"));
            foreach (var (stream, pending) in new[] { (first, firstPending), (second, secondPending) })
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
                var line = await MonitorProtocol.ReadLineAsync(stream, pending, timeout.Token);
                // The record is on disk by the time the event is read.
                Assert.True(File.Exists(Path.Combine(pod.Options.Directory, "exits", "c1.json")));
                var message = JsonSerializer.Deserialize(line!, MonitorJson.Default.MonitorResponse)!;
                Assert.Equal(0, message.Id);
                Assert.True(message.Ok);
                Assert.Equal(MonitorProtocol.EventExited, message.Event);
                Assert.Equal("c1", message.Container!.Id);
                Assert.Equal("Stopped", message.Container.Status);
                Assert.Equal(7, message.Container.ExitCode);
            }

            // The ordinary connection is unaffected.
            Assert.Equal(7, (await pod.Client.SendAsync(new MonitorRequest { Op = MonitorProtocol.State, ContainerId = "c1" })).Container!.ExitCode);
        }
    }

    [Fact]
    public async Task A_tty_container_gets_a_pts_terminal_as_controlling_terminal_and_its_output_is_logged_as_stdout()
    {
        await using var pod = await MonitorPodFixture.StartAsync();
        var spec = pod.Scope.Spec(
            "tty; [ -t 0 ] && echo stdin-tty; [ -t 1 ] && echo stdout-tty; set -- $(cat /proc/self/stat); echo \"tty_nr=$7\"; echo to-stderr >&2; exit 4");
        spec.Process!.Terminal = true;
        spec.Process.ConsoleSize = new SpecConsoleSize { Height = 40, Width = 100 };
        var logPath = Path.Combine(pod.Scope.Root, "tty.log");
        await pod.RunAsync("c1", spec, logPath);
        var stopped = await pod.WaitStoppedAsync("c1", TimeSpan.FromSeconds(20));
        Assert.Equal(4, stopped.ExitCode);

        List<CriLogLine> lines = [];
        for (var i = 0; i < 40 && !lines.Any(l => l.Text.Contains("to-stderr", StringComparison.Ordinal)); i++)
        {
            await Task.Delay(50);
            lines = [.. CriLogReader.ReadAllLines(logPath)];
        }

        var texts = lines.Select(l => l.Text.TrimEnd('\r')).ToList();
        Assert.All(lines, l => Assert.Equal(CriLogStream.Stdout, l.Stream));
        Assert.Contains(texts, t => t.StartsWith("/dev/pts/", StringComparison.Ordinal));
        Assert.Contains("stdin-tty", texts);
        Assert.Contains("stdout-tty", texts);
        Assert.Contains("to-stderr", texts);
        var ttyNr = texts.Single(t => t.StartsWith("tty_nr=", StringComparison.Ordinal));
        Assert.NotEqual("tty_nr=0", ttyNr); // a controlling terminal
    }

    [Fact]
    public async Task Orphans_reparented_to_the_monitor_are_reaped_and_leave_no_zombie()
    {
        await using var pod = await MonitorPodFixture.StartAsync();
        var spec = pod.Scope.Spec("sh -c 'sleep 2 &'; exec sleep 1000");
        // Host pid namespace (as a hostPID pod): orphans go to the nearest subreaper, the monitor.
        spec.Linux!.Namespaces.RemoveAll(n => n.Type == "pid");
        var init = await pod.RunAsync("c1", spec);
        var monitorPid = pod.Monitor.Pid;

        // The background sleep is re-parented to the monitor.
        int orphan = 0;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (orphan == 0 && DateTime.UtcNow < deadline)
        {
            orphan = MonitorPodFixture.ChildrenOf(monitorPid).FirstOrDefault(c => c.Pid != init.Pid && c.Comm == "sleep").Pid;
            await Task.Delay(20);
        }

        Assert.NotEqual(0, orphan);

        // It exits after 2 s; within a few seconds more it is reaped (no zombie under the monitor).
        deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (Directory.Exists($"/proc/{orphan}") && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        Assert.False(Directory.Exists($"/proc/{orphan}"), $"orphan {orphan} is still there (zombie?)");
        Assert.DoesNotContain(MonitorPodFixture.ChildrenOf(monitorPid), c => c.State == 'Z');

        // The container's own init was not taken: its exit is still reported with its code.
        await pod.Client.SendAsync(new MonitorRequest { Op = MonitorProtocol.Kill, ContainerId = "c1", Signal = 15 });
        var stopped = await pod.WaitStoppedAsync("c1", TimeSpan.FromSeconds(20));
        Assert.Equal("Stopped", stopped.Status);
        Assert.Equal(143, stopped.ExitCode);
        Assert.DoesNotContain(MonitorPodFixture.ChildrenOf(monitorPid), c => c.State == 'Z');
    }
    [Fact]
    public async Task Exec_sync_exec_stream_attach_and_shutdown_run_on_the_loop_and_start_no_thread_pool()
    {
        await using var pod = await MonitorPodFixture.StartAsync();
        await pod.RunAsync("c1", pod.Scope.Spec("exec sleep 1000"));

        // exec-sync with a timeout (its timer is cancelled when the process ends first), one that times out, an
        // exec-stream whose daemon hangs up, an attach that detaches.
        Assert.Equal(0, (await pod.ExecAsync("c1", MonitorPodFixture.Process("/bin/true"), timeoutMs: 10_000)).Exec!.ExitCode);
        Assert.True((await pod.ExecAsync("c1", MonitorPodFixture.Process("/bin/sleep", "100"), timeoutMs: 200)).Exec!.TimedOut);
        var process = JsonSerializer.Serialize(MonitorPodFixture.Process("/bin/sleep", "100"), RuntimeSpecJson.Default.SpecProcess);
        await (await pod.Client.OpenStreamAsync(new MonitorRequest { Op = MonitorProtocol.ExecStream, ContainerId = "c1", ProcessJson = process }))
            .DisposeAsync();
        await (await pod.Client.OpenStreamAsync(new MonitorRequest { Op = MonitorProtocol.Attach, ContainerId = "c1", Stdout = true }))
            .DisposeAsync();
        Assert.Equal(0, (await pod.ExecAsync("c1", MonitorPodFixture.Process("/bin/true"))).Exec!.ExitCode);

        // Everything ran on the monitor's one loop: CancellationTokenSource.CancelAsync, or anything else queued to
        // the thread pool, would have started its workers.
        Assert.DoesNotContain(MonitorPodFixture.ThreadNames(pod.Monitor.Pid), name => name.StartsWith(".NET TP", StringComparison.Ordinal));
    }
}
