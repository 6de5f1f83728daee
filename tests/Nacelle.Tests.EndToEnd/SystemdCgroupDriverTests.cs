using System.Globalization;
using Grpc.Core;
using Nacelle.Tests.EndToEnd.Infrastructure;
using Nacelle.Tests.Support;
using Nacelle.Tests.Support.Registry;
using Runtime.V1;

namespace Nacelle.Tests.EndToEnd;

/// <summary>
/// cgroup.driver = "systemd" against a real systemd: the daemon runs inside the namespaces of a test systemd (PID 1
/// there, with its own system bus; <see cref="TestSystemd"/>), as it would on a node booted with systemd, and is driven
/// over its socket as kubelet's systemd driver drives it: pods in kubepods-...-pod&lt;uid&gt;.slice, containers in
/// nacelle-&lt;id&gt;.scope with their limits as unit properties, checked with systemctl and in the cgroup files.
/// </summary>
public sealed class SystemdCgroupDriverTests : IAsyncLifetime
{
    private RegistryServer _registry = null!;
    private string _image = null!;

    public async ValueTask InitializeAsync()
    {
        _registry = await RegistryServer.StartAsync();
        using var pusher = _registry.CreatePusher();
        await TestImages.PushBusyboxAsync(pusher, "e2e/systemd", "1.0");
        _image = $"{_registry.Host}/e2e/systemd:1.0";
    }

    public async ValueTask DisposeAsync() => await _registry.DisposeAsync();

    [Fact]
    public async Task PodsGetSlicesAndContainersGetScopesWithTheirLimits()
    {
        Assert.SkipWhen(TestSystemd.SkipReason() is not null, TestSystemd.SkipReason() ?? string.Empty);
        using var systemd = TestSystemd.Start();
        await using var daemon = await DaemonProcess.StartAsync("[cgroup]\ndriver = \"systemd\"\n", wrapper: systemd.Enter());
        var runtime = daemon.Client.Runtime;
        await daemon.Client.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = _image } });

        Assert.Equal(CgroupDriver.Systemd, (await runtime.RuntimeConfigAsync(new RuntimeConfigRequest())).Linux.CgroupDriver);

        // As kubelet's systemd driver: the pod's slice is named, and kubelet would have made it (systemd makes it here
        // when the first scope starts in it).
        var uid = Guid.NewGuid().ToString("N")[..12];
        var slice = $"kubepods-burstable-pod{uid}.slice";
        var podConfig = Pod("limits", slice);
        var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig })).PodSandboxId;
        var pauseScope = $"nacelle-pause-{pod[..12]}.scope";
        Assert.Equal("active", systemd.Show(pauseScope, "ActiveState"));
        Assert.Equal(slice, systemd.Show(pauseScope, "Slice"));

        var config = Container("limited", "/bin/sleep", "3600");
        config.Linux.Resources = new LinuxContainerResources
        {
            CpuShares = 512, CpuPeriod = 100_000, CpuQuota = 50_000, MemoryLimitInBytes = 64 * 1024 * 1024,
        };
        var id = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = config, SandboxConfig = podConfig })).ContainerId;
        await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
        var scope = $"nacelle-{id}.scope";

        // The unit: active, in the pod's slice, delegated, with the limits as properties (v1 names on this hybrid host).
        Assert.Equal("active", systemd.Show(scope, "ActiveState"));
        Assert.Equal(slice, systemd.Show(scope, "Slice"));
        Assert.Equal("yes", systemd.Show(scope, "Delegate"));
        Assert.Equal($"/kubepods.slice/kubepods-burstable.slice/{slice}/{scope}", systemd.Show(scope, "ControlGroup"));
        Assert.Equal("512", systemd.Show(scope, "CPUShares"));
        Assert.Equal("500ms", systemd.Show(scope, "CPUQuotaPerSecUSec"));
        Assert.Equal((64 * 1024 * 1024).ToString(CultureInfo.InvariantCulture), systemd.Show(scope, "MemoryLimit"));
        Assert.Equal("strict", systemd.Show(scope, "DevicePolicy"));
        Assert.Contains("/dev/char/1:3 rwm", systemd.Show(scope, "DeviceAllow"));

        // The kernel's view: the container's process in the scope in every hierarchy, the limits in the files.
        var path = $"/kubepods.slice/kubepods-burstable.slice/{slice}/{scope}";
        foreach (var (mount, _) in systemd.Hierarchies().Where(h => Path.GetFileName(h.Mount) is "memory" or "cpu" or "pids" or "devices" or "freezer" or "unified"))
        {
            var procs = File.ReadAllText(Path.Combine(systemd.HostDirectory(mount, path), "cgroup.procs"));
            Assert.False(string.IsNullOrWhiteSpace(procs), $"no process in {systemd.HostDirectory(mount, path)}");
        }

        Assert.Equal((64 * 1024 * 1024).ToString(CultureInfo.InvariantCulture), Read(systemd, "memory", path, "memory.limit_in_bytes"));
        Assert.Equal("512", Read(systemd, "cpu", path, "cpu.shares"));
        Assert.Equal("50000", Read(systemd, "cpu", path, "cpu.cfs_quota_us"));
        Assert.DoesNotContain("a *:* rwm", Read(systemd, "devices", path, "devices.list"));
        Assert.Contains("c 1:3 rwm", Read(systemd, "devices", path, "devices.list"));

        // UpdateContainerResources reaches the unit too (systemd would otherwise write its old values back).
        await runtime.UpdateContainerResourcesAsync(new UpdateContainerResourcesRequest
        {
            ContainerId = id, Linux = new LinuxContainerResources { CpuShares = 256, MemoryLimitInBytes = 128 * 1024 * 1024 },
        });
        Assert.Equal("256", systemd.Show(scope, "CPUShares"));
        Assert.Equal((128 * 1024 * 1024).ToString(CultureInfo.InvariantCulture), systemd.Show(scope, "MemoryLimit"));
        Assert.Equal("256", Read(systemd, "cpu", path, "cpu.shares"));

        // Stop and remove: the scope goes.
        await StopAndRemoveAsync(runtime, systemd, id, scope, path);

        // kubelet under the cgroupfs driver while nacelle runs systemd's: refused, naming both.
        var mismatch = await Assert.ThrowsAsync<RpcException>(async () =>
            await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = Pod("mismatch", "/kubepods/besteffort/pod1") }));
        Assert.Equal(StatusCode.InvalidArgument, mismatch.StatusCode);
        Assert.Contains("--cgroup-driver must be systemd", mismatch.Status.Detail);

        // A pod without a parent: a slice of nacelle's own, gone with the pod.
        var own = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = Pod("own", "") })).PodSandboxId;
        var ownSlice = $"nacelle-pod{own[..12]}.slice";
        Assert.Equal(ownSlice, systemd.Show($"nacelle-pause-{own[..12]}.scope", "Slice"));
        Assert.Equal("active", systemd.Show(ownSlice, "ActiveState"));

        foreach (var p in new[] { pod, own })
        {
            await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = p });
            await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = p });
        }

        Assert.NotEqual("active", systemd.Show(pauseScope, "ActiveState"));
        Assert.NotEqual("active", systemd.Show(ownSlice, "ActiveState"));
    }

    /// <summary>
    /// A RuntimeClass handler's runtime (Debian's runc) under the systemd driver: the container's scope is where the
    /// built-in core's would be (in the pod's slice, holding the container's init, with its limits), because nacelle
    /// hands runc the scope's path and starts the scope itself; runc's own cgroupfs reading of "slice:prefix:name"
    /// would have put the container in a directory named after that string under the monitor's cgroup.
    /// </summary>
    [Fact]
    public async Task AContainerOfAnExternalRuntimeHandlerGetsItsScopeInThePodsSlice()
    {
        Assert.SkipWhen(TestSystemd.SkipReason() is not null, TestSystemd.SkipReason() ?? string.Empty);
        Assert.SkipUnless(File.Exists("/usr/sbin/runc"), "/usr/sbin/runc is not installed (Debian's runc, scripts/install-deps.sh --test)");
        using var systemd = TestSystemd.Start();
        const string config = "[cgroup]\ndriver = \"systemd\"\n\n[runtime.handlers.runc]\ntype = \"oci\"\npath = \"/usr/sbin/runc\"\n";
        await using var daemon = await DaemonProcess.StartAsync(config, wrapper: systemd.Enter());
        var runtime = daemon.Client.Runtime;
        await daemon.Client.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = _image } });

        var slice = $"kubepods-besteffort-pod{Guid.NewGuid().ToString("N")[..12]}.slice";
        var podConfig = Pod("runc-scope", slice);
        var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig, RuntimeHandler = "runc" })).PodSandboxId;
        var container = Container("runc-limited", "/bin/sleep", "3600");
        container.Linux.Resources = new LinuxContainerResources { CpuShares = 512, MemoryLimitInBytes = 64 * 1024 * 1024 };
        var id = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = container, SandboxConfig = podConfig })).ContainerId;
        await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });

        var scope = $"nacelle-{id}.scope";
        var path = $"/kubepods.slice/kubepods-besteffort.slice/{slice}/{scope}";
        Assert.Equal("active", systemd.Show(scope, "ActiveState"));
        Assert.Equal(slice, systemd.Show(scope, "Slice"));
        Assert.Equal(path, systemd.Show(scope, "ControlGroup"));
        Assert.Equal("512", systemd.Show(scope, "CPUShares"));
        Assert.Equal((64 * 1024 * 1024).ToString(CultureInfo.InvariantCulture), systemd.Show(scope, "MemoryLimit"));

        // The container's init is in the scope in every hierarchy (its pids are the test systemd's pid namespace's, so
        // the init says where it is itself), and nothing else of the container is elsewhere.
        var cgroups = (await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = id, Cmd = { "cat", "/proc/1/cgroup" } })).Stdout.ToStringUtf8();
        foreach (var controller in new[] { "memory", "cpu", "pids", "devices", "freezer", "name=systemd" })
        {
            Assert.Matches($"(?m)^[0-9]+:([^:]*,)?{controller}(,[^:]*)?:{System.Text.RegularExpressions.Regex.Escape(path)}$", cgroups);
        }

        foreach (var (mount, _) in systemd.Hierarchies().Where(h => Path.GetFileName(h.Mount) is "memory" or "cpu" or "pids" or "devices" or "freezer" or "systemd"))
        {
            var procs = File.ReadAllText(Path.Combine(systemd.HostDirectory(mount, path), "cgroup.procs"));
            Assert.False(string.IsNullOrWhiteSpace(procs), $"no process in {systemd.HostDirectory(mount, path)}");
        }

        Assert.Equal((64 * 1024 * 1024).ToString(CultureInfo.InvariantCulture), Read(systemd, "memory", path, "memory.limit_in_bytes"));
        Assert.Equal("512", Read(systemd, "cpu", path, "cpu.shares"));
        var stats = (await runtime.ContainerStatsAsync(new ContainerStatsRequest { ContainerId = id })).Stats;
        Assert.True(stats.Memory.WorkingSetBytes.Value > 0, "memory working set from the scope's cgroup");

        await StopAndRemoveAsync(runtime, systemd, id, scope, path);
        await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod });
        await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod });
    }

    [Fact]
    public async Task ARestartedDaemonStopsTheUnitsOfPodsItNoLongerKnows()
    {
        Assert.SkipWhen(TestSystemd.SkipReason() is not null, TestSystemd.SkipReason() ?? string.Empty);
        using var systemd = TestSystemd.Start();
        const string config = "[cgroup]\ndriver = \"systemd\"\n";
        await using var first = await DaemonProcess.StartAsync(config, wrapper: systemd.Enter());
        var runtime = first.Client.Runtime;
        await first.Client.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = _image } });
        var slice = $"kubepods-besteffort-pod{Guid.NewGuid().ToString("N")[..12]}.slice";
        var podConfig = Pod("orphan", slice);
        var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig })).PodSandboxId;
        var id = (await runtime.CreateContainerAsync(new CreateContainerRequest
        {
            PodSandboxId = pod, Config = Container("orphan", "/bin/sleep", "3600"), SandboxConfig = podConfig,
        })).ContainerId;
        await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
        var own = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = Pod("orphan-own", "") })).PodSandboxId;
        string[] units = [$"nacelle-pause-{pod[..12]}.scope", $"nacelle-{id}.scope", $"nacelle-pause-{own[..12]}.scope", $"nacelle-pod{own[..12]}.slice"];
        Assert.All(units, unit => Assert.Equal("active", systemd.Show(unit, "ActiveState")));

        // The daemon is killed and its store lost: the next one, on a fresh root and state, knows none of these pods.
        await first.StopAsync(Nacelle.ContainerCore.Interop.Signals.SIGKILL);
        Assert.All(units, unit => Assert.Equal("active", systemd.Show(unit, "ActiveState"))); // the monitor kept them
        await using var second = await DaemonProcess.StartAsync(config, wrapper: systemd.Enter());

        Assert.All(units, unit => Assert.NotEqual("active", systemd.Show(unit, "ActiveState")));
        var memory = systemd.Hierarchies().First(h => h.Mount.EndsWith("/memory", StringComparison.Ordinal)).Mount;
        Assert.False(Directory.Exists(systemd.HostDirectory(memory, $"/kubepods.slice/kubepods-besteffort.slice/{slice}/nacelle-{id}.scope")),
            "the container's scope is still in the memory hierarchy");
        // Units of other names are not nacelle's to stop.
        Assert.Equal("active", systemd.Show("dbus.service", "ActiveState"));
    }

    [Fact]
    public async Task AConfigForSystemdOnANodeWithoutItStopsTheDaemonInOneLine()
    {
        Assert.SkipWhen(Directory.Exists("/run/systemd/system"), "systemd is this machine's init (/run/systemd/system exists)");
        await using var daemon = await DaemonProcess.StartAsync("[cgroup]\ndriver = \"systemd\"\n", waitUntilServing: false);

        Assert.Equal(2, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        var line = Assert.Single(daemon.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.StartsWith("nacelle: cannot start: cgroup.driver \"systemd\": systemd is not this node's init (/run/systemd/system is missing)", line);
        Assert.Contains("set cgroup.driver = \"cgroupfs\"", line);
    }

    [Fact]
    public async Task ASystemBusThatDoesNotAnswerStopsTheDaemonInOneLine()
    {
        Assert.SkipWhen(TestSystemd.SkipReason() is not null, TestSystemd.SkipReason() ?? string.Empty);
        using var systemd = TestSystemd.Start();
        var environment = new Dictionary<string, string> { ["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=/run/nacelle-test-no-bus" };
        await using var daemon = await DaemonProcess.StartAsync("[cgroup]\ndriver = \"systemd\"\n", environment, waitUntilServing: false,
            wrapper: systemd.Enter());

        Assert.Equal(2, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        var line = Assert.Single(daemon.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.StartsWith("nacelle: cannot start: cgroup.driver \"systemd\": systemd: ping systemd: the system bus unix:path=/run/nacelle-test-no-bus is not reachable", line);
        Assert.DoesNotContain("Exception", line, StringComparison.Ordinal);
    }

    /// <summary>Stops and removes a container; its scope goes (the monitor's part of removing an exited container
    /// follows the rpc, so it is waited for), and its directory in the memory hierarchy with it.</summary>
    private static async Task StopAndRemoveAsync(RuntimeService.RuntimeServiceClient runtime, TestSystemd systemd, string id, string scope, string path)
    {
        await runtime.StopContainerAsync(new StopContainerRequest { ContainerId = id, Timeout = 1 });
        await runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id });
        var memoryDirectory = systemd.HostDirectory(systemd.Hierarchies().First(h => h.Mount.EndsWith("/memory", StringComparison.Ordinal)).Mount, path);
        for (var wait = 0; wait < 200 && (systemd.Show(scope, "ActiveState") == "active" || Directory.Exists(memoryDirectory)); wait++)
        {
            await Task.Delay(50);
        }

        Assert.NotEqual("active", systemd.Show(scope, "ActiveState"));
        Assert.False(Directory.Exists(memoryDirectory));
    }

    private static string Read(TestSystemd systemd, string controller, string path, string file) =>
        File.ReadAllText(Path.Combine(systemd.HostDirectory(systemd.Hierarchies().First(h => Path.GetFileName(h.Mount) == controller).Mount, path), file)).Trim();

    private static PodSandboxConfig Pod(string name, string cgroupParent) => new()
    {
        Metadata = new PodSandboxMetadata { Name = name, Namespace = "e2e-systemd", Uid = Guid.NewGuid().ToString(), Attempt = 0 },
        Hostname = name,
        Linux = new LinuxPodSandboxConfig
        {
            CgroupParent = cgroupParent,
            SecurityContext = new LinuxSandboxSecurityContext
            {
                NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node, Pid = NamespaceMode.Container, Ipc = NamespaceMode.Pod },
            },
        },
    };

    private ContainerConfig Container(string name, params string[] command)
    {
        var config = new ContainerConfig
        {
            Metadata = new ContainerMetadata { Name = name },
            Image = new ImageSpec { Image = _image },
            Linux = new LinuxContainerConfig(),
        };
        config.Command.Add(command);
        return config;
    }
}
