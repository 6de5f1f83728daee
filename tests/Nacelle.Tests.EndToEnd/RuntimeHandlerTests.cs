using System.Text.Json;
using Grpc.Core;
using Nacelle.ContainerCore.Interop;
using Nacelle.Tests.EndToEnd.Infrastructure;
using Nacelle.Tests.Support;
using Nacelle.Tests.Support.Registry;
using Runtime.V1;
using static Nacelle.Tests.EndToEnd.Infrastructure.CriWaits;
using Session = Nacelle.Tests.EndToEnd.Infrastructure.PodSession;

namespace Nacelle.Tests.EndToEnd;

/// <summary>
/// RuntimeClass handlers: a daemon configured with Debian's runc as handler "runc" ([runtime.handlers.runc], type
/// "oci") runs a pod's containers through it, under the pod's monitor, in kubelet's order; an unknown handler is
/// NotFound naming it; a handler whose runtime is missing refuses pods saying so; Status lists every handler with what
/// it can do. A differential test runs the same container under the built-in core and under runc and compares what
/// the process sees (differences that remain are written down in docs/architecture.md, "Runtime handlers").
/// </summary>
public sealed class RuntimeHandlerTests : IAsyncLifetime
{
    private const string Runc = "/usr/sbin/runc";
    private RegistryServer _registry = null!;
    private string _image = null!;
    private readonly string _cgroupParent = "/nacelle-e2e-rh-" + Guid.NewGuid().ToString("N")[..8];
    private readonly string _logDirectory = Directory.CreateTempSubdirectory("nacelle-e2e-rh-logs-").FullName;

    public async ValueTask InitializeAsync()
    {
        _registry = await RegistryServer.StartAsync();
        using var pusher = _registry.CreatePusher();
        await TestImages.PushBusyboxAsync(pusher, "e2e/busybox", "rh");
        _image = $"{_registry.Host}/e2e/busybox:rh";
    }

    public async ValueTask DisposeAsync()
    {
        await _registry.DisposeAsync();
        TestCgroups.RemoveTree(_cgroupParent);
        Directory.Delete(_logDirectory, recursive: true);
    }

    private static string HandlersToml(string runcPath = Runc) =>
        $"[runtime.handlers.runc]\ntype = \"oci\"\npath = \"{runcPath}\"\n\n[runtime.handlers.missing]\ntype = \"oci\"\npath = \"/nonexistent/bin/runc\"\n";

    private PodSandboxConfig Pod(string name, NamespaceMode pid = NamespaceMode.Container) => new()
    {
        Metadata = new PodSandboxMetadata { Name = name, Namespace = "e2e", Uid = Guid.NewGuid().ToString(), Attempt = 0 },
        Hostname = name,
        LogDirectory = Path.Combine(_logDirectory, name),
        Linux = new LinuxPodSandboxConfig
        {
            CgroupParent = _cgroupParent,
            SecurityContext = new LinuxSandboxSecurityContext
            {
                NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node, Pid = pid, Ipc = NamespaceMode.Pod },
            },
        },
    };

    private ContainerConfig Container(string name, params string[] command)
    {
        var config = new ContainerConfig
        {
            Metadata = new ContainerMetadata { Name = name },
            Image = new ImageSpec { Image = _image },
            LogPath = $"{name}/0.log",
            Linux = new LinuxContainerConfig
            {
                SecurityContext = new LinuxContainerSecurityContext
                {
                    Seccomp = new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.RuntimeDefault },
                },
            },
        };
        config.Command.Add(command);
        return config;
    }

    private async Task<Session> StartAsync()
    {
        var session = new Session(await DaemonProcess.StartAsync(HandlersToml()));
        await session.Daemon.Client.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = _image } });
        return session;
    }

    [Fact]
    public async Task Runc_handler_runs_the_kubelet_lifecycle_under_the_pods_monitor()
    {
        Assert.SkipUnless(File.Exists(Runc), $"{Runc} is not installed (Debian's runc, scripts/install-deps.sh --test)");
        await using var session = await StartAsync();
        var runtime = session.Runtime;

        var status = await runtime.StatusAsync(new StatusRequest());
        var runc = Assert.Single(status.RuntimeHandlers, h => h.Name == "runc");
        Assert.True(runc.Features.RecursiveReadOnlyMounts, "runc knows rro and the kernel has mount_setattr");
        Assert.False(runc.Features.UserNamespaces, "runc 1.1 has no idmapped mounts for a pod's volumes");
        Assert.Contains(status.RuntimeHandlers, h => h.Name == "missing" && !h.Features.UserNamespaces && !h.Features.RecursiveReadOnlyMounts);
        Assert.Equal(["", "nacelle", "missing", "runc"], status.RuntimeHandlers.Select(h => h.Name).ToArray());

        var podConfig = Pod("runc-lifecycle");
        var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig, RuntimeHandler = "runc" })).PodSandboxId;
        var podStatus = await runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = pod });
        Assert.Equal("runc", podStatus.Status.RuntimeHandler);

        var config = Container("app", "/bin/sh", "-c", "echo hello; echo oops >&2; echo $GREETING; exec sleep 3600");
        config.Envs.Add(new KeyValue { Key = "GREETING", Value = Google.Protobuf.ByteString.CopyFromUtf8("hi-from-env") });
        var id = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = config, SandboxConfig = podConfig })).ContainerId;
        Assert.Equal(ContainerState.ContainerCreated, (await runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id })).Status.State);

        // runc is run at StartContainer (runc create, then runc start), as containerd does: after CreateContainer it
        // knows nothing of the container; after the start it has its state under the handler's root.
        var runcRoot = Path.Combine(session.Daemon.State, "runtimes", "runc");
        Assert.False(File.Exists(Path.Combine(runcRoot, id, "state.json")), "runc's state of a container not started yet");

        await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
        Assert.True(File.Exists(Path.Combine(runcRoot, id, "state.json")), "runc's state of the container");
        var running = await runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id, Verbose = true });
        Assert.Equal(ContainerState.ContainerRunning, running.Status.State);
        int pid;
        using (var info = JsonDocument.Parse(running.Info["info"]))
        {
            pid = info.RootElement.GetProperty("pid").GetInt32();
        }

        // The container's init is the pod monitor's child (runc exited; the monitor is a child subreaper), in the pod's
        // ipc namespace (joined by path) and in a pid namespace of its own.
        var monitorPid = ParentOf(pid);
        Assert.Contains("nacelle-monitor", File.ReadAllText($"/proc/{monitorPid}/cmdline"));
        Assert.NotEqual(NamespaceOf("self", "pid"), NamespaceOf(pid.ToString(), "pid"));

        // The CRI log is written by the monitor from the pipes runc handed to the container.
        var logPath = Path.Combine(podConfig.LogDirectory, "app", "0.log");
        var log = await WaitForLogAsync(logPath, "hi-from-env");
        Assert.Matches(@"(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d) stdout F hello$", log);
        Assert.Contains(" stderr F oops\n", log);

        // ExecSync through `runc exec`: output, exit code, environment, the container's seccomp filter.
        var exec = await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = id, Cmd = { "/bin/sh", "-c", "echo out; echo err >&2; echo $GREETING; exit 3" }, Timeout = 10 });
        Assert.Equal(3, exec.ExitCode);
        Assert.Equal("out\nhi-from-env\n", exec.Stdout.ToStringUtf8());
        Assert.Equal("err\n", exec.Stderr.ToStringUtf8());
        var seccomp = await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = id, Cmd = { "/bin/sh", "-c", "grep '^Seccomp:' /proc/1/status /proc/self/status" } });
        Assert.Equal(2, seccomp.Stdout.ToStringUtf8().Split('\n', StringSplitOptions.RemoveEmptyEntries).Count(l => l.EndsWith("\t2", StringComparison.Ordinal)));
        // A timed out exec is killed (it was adopted by the monitor) and answered as with the built-in core.
        var timedOut = await Assert.ThrowsAsync<RpcException>(async () =>
            await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = id, Cmd = { "sleep", "60" }, Timeout = 1 }));
        Assert.Equal(StatusCode.DeadlineExceeded, timedOut.StatusCode);
        var processes = await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = id, Cmd = { "ps", "-o", "args" } });
        Assert.DoesNotContain("sleep 60", processes.Stdout.ToStringUtf8());
        var missing = await Assert.ThrowsAsync<RpcException>(async () => await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = id, Cmd = { "/no/such/command" } }));
        Assert.Contains("/no/such/command", missing.Status.Detail);

        var stats = (await runtime.ContainerStatsAsync(new ContainerStatsRequest { ContainerId = id })).Stats;
        Assert.True(stats.Memory.WorkingSetBytes.Value > 0, "memory working set from the cgroup runc made");

        // A daemon killed with SIGKILL and restarted finds the container again through the pod's monitor and drives it
        // through runc as before.
        await session.Daemon.StopAsync(Signals.SIGKILL);
        session.Daemon = await DaemonProcess.RestartAsync(session.Daemon, HandlersToml());
        runtime = session.Runtime;
        Assert.Equal(ContainerState.ContainerRunning, (await runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id })).Status.State);
        var again = await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = id, Cmd = { "echo", "again" } });
        Assert.Equal("again\n", again.Stdout.ToStringUtf8());

        // sleep ignores SIGTERM as PID 1: StopContainer kills it after the timeout; the exit code is the real one.
        await runtime.StopContainerAsync(new StopContainerRequest { ContainerId = id, Timeout = 1 });
        var exited = (await runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id })).Status;
        Assert.Equal(ContainerState.ContainerExited, exited.State);
        Assert.Equal(137, exited.ExitCode);

        // A second container that exits by itself with a code.
        var quick = (await runtime.CreateContainerAsync(new CreateContainerRequest
        {
            PodSandboxId = pod, Config = Container("quick", "/bin/sh", "-c", "echo bye; exit 7"), SandboxConfig = podConfig,
        })).ContainerId;
        await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = quick });
        var quickStatus = await WaitForStateAsync(runtime, quick, ContainerState.ContainerExited);
        Assert.Equal(ContainerState.ContainerExited, quickStatus.State);
        Assert.Equal(7, quickStatus.ExitCode);

        // A tty container: runc sends the pty master over the monitor's --console-socket; the monitor logs the
        // terminal's output as stdout, as for the built-in core.
        var tty = Container("tty", "/bin/sh", "-c", "tty; [ -t 0 ] && echo stdin-is-a-tty; exit 0");
        tty.Tty = true;
        tty.Stdin = true;
        var ttyId = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = tty, SandboxConfig = podConfig })).ContainerId;
        await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = ttyId });
        Assert.Equal(0, (await WaitForStateAsync(runtime, ttyId, ContainerState.ContainerExited)).ExitCode);
        var ttyLog = await WaitForLogAsync(Path.Combine(podConfig.LogDirectory, "tty", "0.log"), "stdin-is-a-tty");
        Assert.Matches(@"(?m) stdout F /dev/pts/\d+\r?$", ttyLog);
        Assert.DoesNotContain(" stderr ", ttyLog);
        await runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = ttyId });

        await runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id });
        await runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = quick });
        // An exited container is released in its monitor (runc delete included) just after RemoveContainer answers.
        var released = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (Directory.Exists(Path.Combine(runcRoot, id)) && DateTime.UtcNow < released)
        {
            await Task.Delay(50);
        }

        Assert.False(Directory.Exists(Path.Combine(runcRoot, id)), "runc's state of a removed container, 10 s after its removal");
        Assert.Empty((await runtime.ListContainersAsync(new ListContainersRequest())).Containers);

        await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod });
        await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod });
        Assert.Empty((await runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items);
        Assert.Empty(Directory.Exists(runcRoot) ? Directory.GetDirectories(runcRoot) : []);
    }

    [Fact]
    public async Task Unknown_handler_is_NotFound_and_a_missing_runtime_is_named()
    {
        await using var session = new Session(await DaemonProcess.StartAsync(HandlersToml()));
        var runtime = session.Runtime;
        var unknown = await Assert.ThrowsAsync<RpcException>(async () =>
            await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = Pod("unknown"), RuntimeHandler = "kata-fc" }));
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
        Assert.Contains("'kata-fc'", unknown.Status.Detail);

        var missing = await Assert.ThrowsAsync<RpcException>(async () =>
            await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = Pod("missing"), RuntimeHandler = "missing" }));
        Assert.Equal(StatusCode.FailedPrecondition, missing.StatusCode);
        Assert.Contains("/nonexistent/bin/runc", missing.Status.Detail);
        Assert.Empty((await runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items);
    }

    /// <summary>What a container's process sees, in one listing the differential test compares line by line.</summary>
    private const string ProbeScript =
        "echo \"== status\"; grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|Seccomp|Seccomp_filters|NoNewPrivs|Uid|Gid|Groups):' /proc/self/status; " +
        "echo \"== mounts\"; awk '{ o=$6; s=\"\"; for (i=7; $i != \"-\"; i++) s=s\" \"$i; n=i+1; print $5, $(n), o, s, $(n+2) }' /proc/self/mountinfo | sort; " +
        "echo \"== limits\"; cat /proc/self/limits; " +
        "echo \"== env\"; env | grep -v '^HOSTNAME=' | sort; " +
        "echo \"== id\"; id; echo \"== hostname\"; hostname; " +
        "echo \"== cgroup\"; for f in memory/memory.limit_in_bytes cpu/cpu.shares cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us pids/pids.max; do " +
        "  printf '%s ' $f; cat /sys/fs/cgroup/$f 2>/dev/null || echo none; done; " +
        "echo \"== umask\"; umask; echo \"== cwd\"; pwd";

    [Fact]
    public async Task Same_container_under_the_builtin_core_and_runc_sees_the_same_process_environment()
    {
        Assert.SkipUnless(File.Exists(Runc), $"{Runc} is not installed (Debian's runc, scripts/install-deps.sh --test)");
        await using var session = await StartAsync();
        var builtin = await ProbeAsync(session, "");
        var runc = await ProbeAsync(session, "runc");
        // Known differences, each with its reason in docs/architecture.md ("Runtime handlers"): masked directories are
        // size=0 tmpfs in the built-in core (nothing fits even if remounted writable), runc gives them no size; runc
        // also mounts cgroup v1's named "systemd" hierarchy, which nacelle does not give containers.
        static string Known(string text) => string.Join('\n', text.Split('\n')
            .Where(l => !l.StartsWith("/sys/fs/cgroup/systemd ", StringComparison.Ordinal))
            .Select(l => l.Replace(" ro,size=0k", " ro", StringComparison.Ordinal)));
        var differences = Diff(Known(builtin), Known(runc));
        Assert.True(differences.Count == 0, "built-in core vs runc:\n" + string.Join("\n", differences) + "\n--- built-in:\n" + builtin + "\n--- runc:\n" + runc);
    }

    private async Task<string> ProbeAsync(Session session, string handler)
    {
        var runtime = session.Runtime;
        var name = handler.Length == 0 ? "diff-builtin" : "diff-" + handler;
        var podConfig = Pod(name);
        var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig, RuntimeHandler = handler })).PodSandboxId;
        var config = Container("probe", "sleep", "3600");
        config.Envs.Add(new KeyValue { Key = "PROBE", Value = Google.Protobuf.ByteString.CopyFromUtf8("value") });
        config.WorkingDir = "/tmp";
        config.Linux.Resources = new LinuxContainerResources { MemoryLimitInBytes = 64 << 20, CpuShares = 256, CpuQuota = 50000, CpuPeriod = 100000 };
        config.Linux.SecurityContext.RunAsUser = new Int64Value { Value = 1000 };
        config.Linux.SecurityContext.RunAsGroup = new Int64Value { Value = 1000 };
        config.Linux.SecurityContext.SupplementalGroups.Add(2000);
        config.Linux.SecurityContext.Capabilities = new Capability { DropCapabilities = { "NET_RAW" }, AddCapabilities = { "SYS_PTRACE" } };
        config.Linux.SecurityContext.ReadonlyRootfs = true;
        var id = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = config, SandboxConfig = podConfig })).ContainerId;
        await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
        var probe = await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = id, Cmd = { "/bin/sh", "-c", ProbeScript }, Timeout = 20 });
        Assert.True(probe.ExitCode == 0, probe.Stderr.ToStringUtf8());
        await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod });
        await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod });
        // The container's own id names its overlay directories.
        return probe.Stdout.ToStringUtf8().Replace(id, "<id>", StringComparison.Ordinal);
    }

    private static List<string> Diff(string left, string right)
    {
        var a = left.Split('\n');
        var b = right.Split('\n');
        return [.. a.Except(b).Select(l => "- " + l).Concat(b.Except(a).Select(l => "+ " + l))];
    }

    private static int ParentOf(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
    }

    private static string NamespaceOf(string pid, string kind) => new FileInfo($"/proc/{pid}/ns/{kind}").LinkTarget ?? "";
}
