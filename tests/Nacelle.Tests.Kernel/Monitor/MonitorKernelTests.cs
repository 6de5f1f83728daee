using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Cgroups;
using Nacelle.ContainerCore.Spec;
using Nacelle.Monitor.Logging;
using Nacelle.Tests.Support.CriLogs;
using Nacelle.Sandbox.Monitor;
using Nacelle.Tests.Kernel.Containers;

namespace Nacelle.Tests.Kernel.Monitor;

/// <summary>
/// A real nacelle-monitor process (the JIT build, run through dotnet) holding a pod: pause-init in new namespaces,
/// a busybox container joining them, its CRI log, its exit recorded; the monitor outlives its client and stops on
/// shutdown leaving no process, cgroup or socket.
/// </summary>
public sealed class MonitorKernelTests
{
    private static RuntimeSpec PauseSpec(string root) => new()
    {
        Process = new SpecProcess { Args = ["/pause"], Cwd = "/", NoNewPrivileges = true, Capabilities = new SpecCapabilities() },
        Root = new SpecRoot { Path = root, Readonly = true },
        Hostname = "pod-host",
        Linux = new SpecLinux { Namespaces = SpecDefaults.Namespaces() },
    };

    [Fact]
    public async Task Monitor_runs_pause_init_and_a_container_that_joins_it_and_writes_its_log()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var dir = Path.Combine(scope.Root, "monitor");
        var pauseRoot = Path.Combine(scope.Root, "pause-root");
        Directory.CreateDirectory(pauseRoot);
        File.Copy(Path.Combine(AppContext.BaseDirectory, "nacelle-pause"), Path.Combine(pauseRoot, "pause"));
        var logs = Path.Combine(scope.Root, "logs");
        Directory.CreateDirectory(logs);

        var options = new MonitorOptions { PodId = "pod1", Directory = dir, CgroupParent = scope.CgroupParent };
        using var monitor = MonitorLauncher.Launch(options, Path.Combine(AppContext.BaseDirectory, "nacelle-monitor.dll"));
        try
        {
            var client = new MonitorClient(options.SocketPath);
            var hello = await client.ConnectAsync(TimeSpan.FromSeconds(20));
            Assert.Equal(monitor.Pid, hello.MonitorPid);
            Assert.Equal("pod1", hello.PodId);

            var pause = (await client.SendAsync(new MonitorRequest
            {
                Op = MonitorProtocol.Create, ContainerId = "pause", SpecJson = RuntimeSpecFile.Serialize(PauseSpec(pauseRoot)),
            })).Container!;
            await client.SendAsync(new MonitorRequest { Op = MonitorProtocol.Start, ContainerId = "pause" });
            Assert.Equal(monitor.Pid, ParentOf(pause.Pid));

            var spec = scope.Spec("echo out; echo err >&2; echo \"pid1=$(cat /proc/1/cmdline)\"; echo \"host=$(hostname)\"; exit 3");
            spec.Hostname = null;
            spec.Linux!.Namespaces =
            [
                new() { Type = "pid", Path = $"/proc/{pause.Pid}/ns/pid" },
                new() { Type = "network", Path = $"/proc/{pause.Pid}/ns/net" },
                new() { Type = "ipc", Path = $"/proc/{pause.Pid}/ns/ipc" },
                new() { Type = "uts", Path = $"/proc/{pause.Pid}/ns/uts" },
                new() { Type = "mount" },
            ];
            var logPath = Path.Combine(logs, "c1.log");
            await client.SendAsync(new MonitorRequest
            {
                Op = MonitorProtocol.Create, ContainerId = "c1", SpecJson = RuntimeSpecFile.Serialize(spec), Bundle = scope.Root, LogFile = logPath,
            });

            // The daemon goes away and comes back: the monitor carries on with a new connection.
            await client.DisposeAsync();
            client = new MonitorClient(options.SocketPath);
            await client.ConnectAsync(TimeSpan.FromSeconds(5));
            await client.SendAsync(new MonitorRequest { Op = MonitorProtocol.Start, ContainerId = "c1" });

            MonitorContainer c1;
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            do
            {
                await Task.Delay(50);
                c1 = (await client.SendAsync(new MonitorRequest { Op = MonitorProtocol.State, ContainerId = "c1" })).Container!;
            }
            while (c1.Status != "Stopped" && DateTime.UtcNow < deadline);
            Assert.Equal("Stopped", c1.Status);
            Assert.Equal(3, c1.ExitCode);
            Assert.True(File.Exists(Path.Combine(dir, "exits", "c1.json")) || Directory.GetFiles(Path.Combine(dir, "exits")).Length > 0);

            await Task.Delay(200); // the pump writes the last lines after the exit
            var lines = CriLogReader.ReadAllLines(logPath);
            Assert.Contains(lines, l => l.Stream == CriLogStream.Stdout && l.Text == "out");
            Assert.Contains(lines, l => l.Stream == CriLogStream.Stderr && l.Text == "err");
            Assert.Contains(lines, l => l.Text.StartsWith("pid1=/pause", StringComparison.Ordinal));
            Assert.Contains(lines, l => l.Text == "host=pod-host");

            var listed = (await client.SendAsync(new MonitorRequest { Op = MonitorProtocol.List })).Containers!;
            Assert.Equal(["c1", "pause"], listed.Select(c => c.Id).Order());

            await client.SendAsync(new MonitorRequest { Op = MonitorProtocol.Shutdown });
            await client.DisposeAsync();
            var exit = await monitor.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
            Assert.Equal(0, exit.ExitCode);
            Assert.False(Directory.Exists($"/proc/{pause.Pid}"));
            Assert.False(File.Exists(options.SocketPath));
            var cgroups = new CgroupManager(CgroupLayout.Detect(), scope.CgroupParent);
            Assert.All(cgroups.Open(scope.CgroupParent + "/pause").ProcsFiles, f => Assert.False(File.Exists(f)));
        }
        finally
        {
            if (!monitor.HasExited)
            {
                monitor.Signal(9);
                await monitor.WaitForExitAsync();
            }
        }
    }

    private static int ParentOf(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
    }
}
