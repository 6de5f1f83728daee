using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Nacelle.ContainerCore.Interop;
using Nacelle.Tests.EndToEnd.Infrastructure;
using Nacelle.Tests.Support;
using Nacelle.Tests.Support.Registry;
using Runtime.V1;

namespace Nacelle.Tests.EndToEnd;

/// <summary>
/// An upgrade while pods run, as the package's postinst does it (`try-restart`: with the unit's KillMode=process only
/// the daemon is stopped, and the new one starts on the same root and state): the previous release (tag v0.1.0,
/// built from this clone) runs pods with running containers, one logging a line every 100 ms; it stops; the current
/// daemon starts on its directories and its configuration file. Every container is still running and logged without
/// a gap, also while no daemon ran; the old pods (their monitors still the previous release's, spoken to in protocol
/// version 1) answer Status, List, ContainerStatus, ExecSync, Stop and Remove; a new pod gets a current monitor
/// speaking version 2.
/// </summary>
public sealed partial class UpgradeTests : IAsyncLifetime
{
    private const string PreviousTag = "v0.1.0";
    private readonly string _cgroupParent = "/nacelle-e2e-upgrade-" + Guid.NewGuid().ToString("N")[..8];
    private readonly string _logDirectory = Directory.CreateTempSubdirectory("nacelle-e2e-upgrade-logs-").FullName;
    private RegistryServer _registry = null!;
    private string _image = null!;

    public async ValueTask InitializeAsync()
    {
        _registry = await RegistryServer.StartAsync();
        using var pusher = _registry.CreatePusher();
        await TestImages.PushBusyboxAsync(pusher, "e2e/upgrade", "1.0");
        _image = $"{_registry.Host}/e2e/upgrade:1.0";
    }

    public async ValueTask DisposeAsync()
    {
        await _registry.DisposeAsync();
        TestCgroups.RemoveTree(_cgroupParent);
        Directory.Delete(_logDirectory, recursive: true);
    }

    [GeneratedRegex(@"^(\S+) stdout F line (\d+)$")]
    private static partial Regex LogLine();

    [Fact]
    public async Task PodsOfThePreviousReleaseKeepRunningLoggingAndAnsweringAfterTheUpgrade()
    {
        var (commit, why) = PreviousRelease.Find(PreviousTag);
        Assert.SkipWhen(commit is null, why);
        var previous = await PreviousRelease.BuildAsync(PreviousTag, commit!);

        // The previous release's configuration file, as an operator wrote it then (0.1.0's boolean default_network):
        // the current daemon must take it as it is.
        var directory = Directory.CreateTempSubdirectory("nacelle-e2e-").FullName;
        var config = DaemonProcess.CniToml(directory, extra: "default_network = false");
        var old = await DaemonProcess.StartAsync(config, directory: directory, executable: Path.Combine(previous, "nacelle"));
        DaemonProcess? current = null;
        try
        {
            var runtime = old.Client.Runtime;
            var oldVersion = (await runtime.VersionAsync(new VersionRequest())).RuntimeVersion;
            Assert.StartsWith("0.1.0", oldVersion);
            await old.Client.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = _image } });

            var first = Pod("first");
            var firstPod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = first })).PodSandboxId;
            var logger = await StartContainerAsync(runtime, firstPod, first, "logger",
                "/bin/sh", "-c", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.1; done");
            var sleeper = await StartContainerAsync(runtime, firstPod, first, "sleeper", "/bin/sleep", "3600");
            var second = Pod("second");
            var secondPod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = second })).PodSandboxId;
            var other = await StartContainerAsync(runtime, secondPod, second, "other", "/bin/sleep", "3600");
            string[] containers = [logger, sleeper, other];
            var startedAt = new Dictionary<string, long>();
            foreach (var id in containers)
            {
                var status = (await runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id })).Status;
                Assert.Equal(ContainerState.ContainerRunning, status.State);
                startedAt[id] = status.StartedAt;
            }

            var logPath = Path.Combine(first.LogDirectory, "logger", "0.log");
            await WaitForLinesAsync(logPath, 10);

            // The upgrade: the old daemon stops (its monitors stay), nothing runs for a moment, the new one starts.
            Assert.Equal(0, await old.StopAsync());
            var stoppedAt = DateTimeOffset.UtcNow;
            await Task.Delay(TimeSpan.FromSeconds(1));
            var restartedAt = DateTimeOffset.UtcNow;
            current = await DaemonProcess.RestartAsync(old, config);
            runtime = current.Client.Runtime;
            Assert.NotEqual(oldVersion, (await runtime.VersionAsync(new VersionRequest())).RuntimeVersion);

            // Status and the lists: the node is ready, both pods ready, every container running since before.
            var conditions = (await runtime.StatusAsync(new StatusRequest())).Status.Conditions;
            Assert.True(conditions.Single(c => c.Type == "RuntimeReady").Status);
            var pods = (await runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items;
            Assert.Equal(new[] { firstPod, secondPod }.Order(StringComparer.Ordinal), pods.Select(p => p.Id).Order(StringComparer.Ordinal));
            Assert.All(pods, p => Assert.Equal(PodSandboxState.SandboxReady, p.State));
            var listed = (await runtime.ListContainersAsync(new ListContainersRequest())).Containers;
            Assert.Equal(containers.Order(StringComparer.Ordinal), listed.Select(c => c.Id).Order(StringComparer.Ordinal));
            Assert.All(listed, c => Assert.Equal(ContainerState.ContainerRunning, c.State));
            foreach (var id in containers)
            {
                var status = (await runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id })).Status;
                Assert.Equal(ContainerState.ContainerRunning, status.State);
                Assert.Equal(startedAt[id], status.StartedAt);
            }

            // The old pods' monitors are the previous release's programs, spoken to in version 1.
            foreach (var pod in new[] { firstPod, secondPod })
            {
                var (protocol, monitorPid) = await MonitorOfAsync(runtime, pod);
                Assert.Equal(1, protocol);
                Assert.StartsWith(previous, new FileInfo($"/proc/{monitorPid}/exe").LinkTarget);
            }

            // The log went on without a gap, also while no daemon ran.
            var seen = await WaitForLinesAsync(logPath, CountLines(logPath) + 20);
            Assert.Equal(Enumerable.Range(0, seen.Count), seen.Select(l => l.Number));
            Assert.Contains(seen, l => l.Time > stoppedAt && l.Time < restartedAt);

            var exec = await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = sleeper, Cmd = { "/bin/echo", "after the upgrade" }, Timeout = 10 });
            Assert.Equal(0, exec.ExitCode);
            Assert.Equal("after the upgrade\n", exec.Stdout.ToStringUtf8());

            await runtime.StopContainerAsync(new StopContainerRequest { ContainerId = logger, Timeout = 2 });
            Assert.Equal(ContainerState.ContainerExited, (await runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = logger })).Status.State);
            await runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = logger });
            Assert.DoesNotContain(logger, (await runtime.ListContainersAsync(new ListContainersRequest())).Containers.Select(c => c.Id));

            // A pod made now gets a current monitor, speaking version 2; the old pods stay as they are.
            var third = Pod("third");
            var thirdPod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = third })).PodSandboxId;
            var fresh = await StartContainerAsync(runtime, thirdPod, third, "fresh", "/bin/sleep", "3600");
            var (freshProtocol, freshMonitor) = await MonitorOfAsync(runtime, thirdPod);
            Assert.Equal(2, freshProtocol);
            Assert.DoesNotContain(previous, new FileInfo($"/proc/{freshMonitor}/exe").LinkTarget ?? string.Empty);
            Assert.Equal(ContainerState.ContainerRunning, (await runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = fresh })).Status.State);

            // The old pods end through the new daemon: their monitors exit, nothing of them is left.
            foreach (var pod in new[] { firstPod, secondPod, thirdPod })
            {
                var (_, monitorPid) = await MonitorOfAsync(runtime, pod);
                await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod });
                await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod });
                Assert.False(Directory.Exists($"/proc/{monitorPid}") && !File.ReadAllText($"/proc/{monitorPid}/stat").Contains(") Z ", StringComparison.Ordinal),
                    $"the monitor {monitorPid} of pod {pod} still runs");
            }

            Assert.Empty((await runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items);
            Assert.Equal(0, await current.StopAsync());
        }
        finally
        {
            // Whatever failed: every pod goes, through whichever daemon still runs, before the directory does.
            var running = current ?? old;
            if (!running.Process.HasExited)
            {
                foreach (var pod in (await running.Client.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items)
                {
                    await running.Client.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod.Id });
                }
            }

            await running.DisposeAsync();
        }
    }

    private PodSandboxConfig Pod(string name) => new()
    {
        Metadata = new PodSandboxMetadata { Name = name, Namespace = "e2e-upgrade", Uid = Guid.NewGuid().ToString(), Attempt = 0 },
        Hostname = name,
        LogDirectory = Path.Combine(_logDirectory, name),
        Linux = new LinuxPodSandboxConfig
        {
            CgroupParent = _cgroupParent,
            SecurityContext = new LinuxSandboxSecurityContext
            {
                NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node, Pid = NamespaceMode.Container, Ipc = NamespaceMode.Pod },
            },
        },
    };

    private async Task<string> StartContainerAsync(RuntimeService.RuntimeServiceClient runtime, string pod, PodSandboxConfig podConfig, string name,
        params string[] command)
    {
        var config = new ContainerConfig
        {
            Metadata = new ContainerMetadata { Name = name },
            Image = new ImageSpec { Image = _image },
            LogPath = $"{name}/0.log",
        };
        config.Command.Add(command);
        var id = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = config, SandboxConfig = podConfig })).ContainerId;
        await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
        return id;
    }

    private static async Task<(int Protocol, int MonitorPid)> MonitorOfAsync(RuntimeService.RuntimeServiceClient runtime, string pod)
    {
        var info = (await runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = pod, Verbose = true })).Info["info"];
        using var json = JsonDocument.Parse(info);
        return (json.RootElement.GetProperty("monitorProtocol").GetInt32(), json.RootElement.GetProperty("monitorPid").GetInt32());
    }

    private static int CountLines(string path) => File.Exists(path) ? File.ReadAllLines(path).Length : 0;

    /// <summary>The logger's lines (time written, number) once there are at least <paramref name="count"/>.</summary>
    private static async Task<List<(DateTimeOffset Time, int Number)>> WaitForLinesAsync(string path, int count)
    {
        var lines = new List<(DateTimeOffset, int)>();
        for (var attempt = 0; attempt < 600; attempt++)
        {
            lines = File.Exists(path)
                ? [.. File.ReadAllLines(path).Select(l => LogLine().Match(l)).Where(m => m.Success)
                    .Select(m => (DateTimeOffset.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)))]
                : [];
            if (lines.Count >= count)
            {
                return lines;
            }

            await Task.Delay(50);
        }

        Assert.Fail($"{path} has {lines.Count} lines, not {count}");
        return lines;
    }
}
