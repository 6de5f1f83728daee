using System.Diagnostics;
using System.Text;
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
/// The container rpcs through the socket in kubelet's order (pull, RunPodSandbox, CreateContainer, StartContainer,
/// ExecSync, the CRI log, stats, StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox), the failure paths,
/// events, and recovery after a kill -9 of the daemon. The pods use the node's network (no bridge is made); the image
/// is the busybox test image from a registry on loopback.
/// </summary>
public sealed class ContainerLifecycleTests : IAsyncLifetime
{
    private RegistryServer _registry = null!;
    private string _image = null!;
    private readonly string _cgroupParent = "/nacelle-e2e-" + Guid.NewGuid().ToString("N")[..8];
    private readonly string _logDirectory = Directory.CreateTempSubdirectory("nacelle-e2e-logs-").FullName;

    public async ValueTask InitializeAsync()
    {
        _registry = await RegistryServer.StartAsync();
        using var pusher = _registry.CreatePusher();
        await TestImages.PushBusyboxAsync(pusher, "e2e/busybox", "ctr");
        _image = $"{_registry.Host}/e2e/busybox:ctr";
    }

    public async ValueTask DisposeAsync()
    {
        await _registry.DisposeAsync();
        TestCgroups.RemoveTree(_cgroupParent);
        Directory.Delete(_logDirectory, recursive: true);
    }

    private PodSandboxConfig Pod(string name) => new()
    {
        Metadata = new PodSandboxMetadata { Name = name, Namespace = "e2e", Uid = Guid.NewGuid().ToString(), Attempt = 0 },
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

    private ContainerConfig Container(string name, params string[] command)
    {
        var config = new ContainerConfig
        {
            Metadata = new ContainerMetadata { Name = name },
            Image = new ImageSpec { Image = _image },
            LogPath = $"{name}/0.log",
            Labels = { ["container"] = name },
            Annotations = { ["note"] = "e2e" },
            // As kubelet sends it with seccompDefault (the default since Kubernetes 1.27 on many distributions).
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

    private async Task<Session> StartAsync(IReadOnlyDictionary<string, string>? environment = null)
    {
        var session = new Session(await DaemonProcess.StartAsync(environment: environment));
        await session.Daemon.Client.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = _image } });
        return session;
    }

    [Fact]
    public async Task The_kubelet_lifecycle_pull_run_create_start_exec_log_stats_stop_remove()
    {
        await using var session = await StartAsync();
        var runtime = session.Runtime;
        var podConfig = Pod("lifecycle");
        var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig })).PodSandboxId;

        var config = Container("app", "/bin/sh", "-c", "echo hello; echo oops >&2; echo $GREETING; exec sleep 3600");
        config.Envs.Add(new KeyValue { Key = "GREETING", Value = Google.Protobuf.ByteString.CopyFromUtf8("hi-from-env") });
        var id = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = config, SandboxConfig = podConfig })).ContainerId;
        Assert.Matches("^[0-9a-f]{64}$", id);

        var created = (await runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id })).Status;
        Assert.Equal(ContainerState.ContainerCreated, created.State);
        Assert.Equal(0, created.StartedAt);

        await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
        var running = await runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id[..12], Verbose = true });
        Assert.Equal(ContainerState.ContainerRunning, running.Status.State);
        Assert.True(running.Status.StartedAt >= running.Status.CreatedAt);
        Assert.Equal("app", running.Status.Metadata.Name);
        Assert.Equal(Signal.Sigterm, running.Status.StopSignal); // the image sets none: the default
        Assert.Equal(0, running.Status.User.Linux.Uid);
        Assert.Equal("app", running.Status.Labels["container"]);
        Assert.Equal("e2e", running.Status.Annotations["note"]);
        Assert.Equal(_image, running.Status.Image.Image);
        Assert.StartsWith($"{_registry.Host}/e2e/busybox@sha256:", running.Status.ImageRef);
        Assert.StartsWith("sha256:", running.Status.ImageId);
        var logPath = Path.Combine(podConfig.LogDirectory, "app", "0.log");
        Assert.Equal(logPath, running.Status.LogPath);
        using (var info = JsonDocument.Parse(running.Info["info"]))
        {
            var pid = info.RootElement.GetProperty("pid").GetInt32();
            Assert.True(pid > 0 && Directory.Exists($"/proc/{pid}"));
            Assert.Equal(pod, info.RootElement.GetProperty("sandboxID").GetString());
            Assert.Equal("/bin/sh", info.RootElement.GetProperty("runtimeSpec").GetProperty("process").GetProperty("args")[0].GetString());
        }

        // ExecSync: output, exit code, the container's environment.
        var exec = await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = id, Cmd = { "/bin/sh", "-c", "echo out; echo err >&2; echo $GREETING; exit 3" }, Timeout = 10 });
        Assert.Equal(3, exec.ExitCode);
        Assert.Equal("out\nhi-from-env\n", exec.Stdout.ToStringUtf8());
        Assert.Equal("err\n", exec.Stderr.ToStringUtf8());
        var hostname = await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = id, Cmd = { "hostname" } });
        Assert.Equal(0, hostname.ExitCode);
        // RuntimeDefault: the container and its execs run under a seccomp filter (mode 2).
        var seccomp = await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = id, Cmd = { "/bin/sh", "-c", "grep '^Seccomp:' /proc/1/status /proc/self/status" } });
        Assert.Equal(0, seccomp.ExitCode);
        Assert.Equal(2, seccomp.Stdout.ToStringUtf8().Split('\n', StringSplitOptions.RemoveEmptyEntries).Count(l => l.EndsWith("\t2", StringComparison.Ordinal)));
        // Everyday tools still work under it: ICMP (a raw socket with CAP_NET_RAW), ps, df, top.
        var tools = await runtime.ExecSyncAsync(new ExecSyncRequest
        {
            ContainerId = id,
            Cmd = { "/bin/sh", "-c", "set -e; ping -c 1 -W 5 127.0.0.1 >/dev/null; ps >/dev/null; df / >/dev/null; top -b -n 1 >/dev/null; echo tools-ok" },
            Timeout = 20,
        });
        Assert.True(tools.ExitCode == 0, tools.Stderr.ToStringUtf8());
        Assert.Equal("tools-ok\n", tools.Stdout.ToStringUtf8());

        // The CRI log: both streams, full lines, RFC 3339 timestamps.
        var log = await WaitForLogAsync(logPath, "hi-from-env");
        Assert.Matches(@"(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d) stdout F hello$", log);
        Assert.Contains(" stderr F oops\n", log);
        Assert.Contains(" stdout F hi-from-env\n", log);

        var stats = (await runtime.ContainerStatsAsync(new ContainerStatsRequest { ContainerId = id })).Stats;
        Assert.Equal(id, stats.Attributes.Id);
        Assert.True(stats.Memory.WorkingSetBytes.Value > 0, "memory working set");
        Assert.NotNull(stats.Cpu.UsageCoreNanoSeconds);
        Assert.NotNull(stats.WritableLayer.UsedBytes);
        Assert.NotNull(stats.WritableLayer.InodesUsed);
        var listedStats = await runtime.ListContainerStatsAsync(new ListContainerStatsRequest { Filter = new ContainerStatsFilter { PodSandboxId = pod } });
        Assert.Equal(id, Assert.Single(listedStats.Stats).Attributes.Id);

        // Lists: by id prefix, state, pod and label.
        Assert.Equal(id, Assert.Single((await runtime.ListContainersAsync(new ListContainersRequest { Filter = new ContainerFilter { Id = id[..6] } })).Containers).Id);
        Assert.Single((await runtime.ListContainersAsync(new ListContainersRequest
        {
            Filter = new ContainerFilter { State = new ContainerStateValue { State = ContainerState.ContainerRunning }, PodSandboxId = pod, LabelSelector = { ["container"] = "app" } },
        })).Containers);
        Assert.Empty((await runtime.ListContainersAsync(new ListContainersRequest { Filter = new ContainerFilter { LabelSelector = { ["container"] = "other" } } })).Containers);

        // sleep is PID 1 of its own pid namespace and ignores SIGTERM: StopContainer kills it after the timeout.
        var clock = Stopwatch.StartNew();
        await runtime.StopContainerAsync(new StopContainerRequest { ContainerId = id, Timeout = 1 });
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(0.9), $"stopped after {clock.Elapsed}");
        var exited = (await runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id })).Status;
        Assert.Equal(ContainerState.ContainerExited, exited.State);
        Assert.Equal(137, exited.ExitCode);
        Assert.Equal("Error", exited.Reason);
        Assert.True(exited.FinishedAt >= exited.StartedAt);
        await runtime.StopContainerAsync(new StopContainerRequest { ContainerId = id, Timeout = 1 });

        var execStopped = await Assert.ThrowsAsync<RpcException>(async () => await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = id, Cmd = { "true" } }));
        Assert.Equal(StatusCode.FailedPrecondition, execStopped.StatusCode);

        await runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id });
        await runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id });
        Assert.Empty((await runtime.ListContainersAsync(new ListContainersRequest())).Containers);
        Assert.False(Directory.Exists(Path.Combine(session.Daemon.Root, "containers", id)), "the writable layer stayed");
        var gone = await Assert.ThrowsAsync<RpcException>(async () => await runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id }));
        Assert.Equal(StatusCode.NotFound, gone.StatusCode);
        Assert.True(File.Exists(logPath), "the log belongs to kubelet and stays");

        await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod });
        await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod });
        Assert.Empty((await runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items);
    }

    [Fact]
    public async Task Exit_codes_reasons_and_refusals_name_the_problem()
    {
        await using var session = await StartAsync();
        var runtime = session.Runtime;
        var podConfig = Pod("failures");
        var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig })).PodSandboxId;

        async Task<string> RunAsync(ContainerConfig config)
        {
            var id = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = config, SandboxConfig = podConfig })).ContainerId;
            await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
            return id;
        }

        var failing = await RunAsync(Container("failing", "/bin/sh", "-c", "exit 7"));
        var done = await RunAsync(Container("done", "/bin/true"));
        var failed = await WaitForStateAsync(runtime, failing, ContainerState.ContainerExited);
        Assert.Equal(ContainerState.ContainerExited, failed.State);
        Assert.Equal(7, failed.ExitCode);
        Assert.Equal("Error", failed.Reason);
        var completed = await WaitForStateAsync(runtime, done, ContainerState.ContainerExited);
        Assert.Equal(0, completed.ExitCode);
        Assert.Equal("Completed", completed.Reason);

        var duplicate = await Assert.ThrowsAsync<RpcException>(async () =>
            await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = Container("done", "/bin/true"), SandboxConfig = podConfig }));
        Assert.Equal(StatusCode.AlreadyExists, duplicate.StatusCode);
        Assert.Contains("done", duplicate.Status.Detail);

        var missingImage = Container("noimage", "/bin/true");
        missingImage.Image.Image = $"{_registry.Host}/e2e/never-pushed:1";
        var noImage = await Assert.ThrowsAsync<RpcException>(async () =>
            await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = missingImage, SandboxConfig = podConfig }));
        Assert.Equal(StatusCode.NotFound, noImage.StatusCode);
        Assert.Contains("never-pushed", noImage.Status.Detail);

        // The program is looked up when the container is spawned, inside its mounts (a volume may bring it), which is
        // StartContainer's work, as in containerd: the start fails and leaves the container exited with StartError.
        var noCommandId = (await runtime.CreateContainerAsync(
            new CreateContainerRequest { PodSandboxId = pod, Config = Container("nocmd", "/no/such/program"), SandboxConfig = podConfig })).ContainerId;
        var noCommand = await Assert.ThrowsAsync<RpcException>(async () =>
            await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = noCommandId }));
        Assert.Equal(StatusCode.FailedPrecondition, noCommand.StatusCode);
        Assert.Contains("/no/such/program", noCommand.Status.Detail);
        var startError = (await runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = noCommandId })).Status;
        Assert.Equal(ContainerState.ContainerExited, startError.State);
        Assert.Equal("StartError", startError.Reason);
        Assert.Equal(128, startError.ExitCode);
        Assert.Contains("/no/such/program", startError.Message);
        Assert.Equal(0, startError.StartedAt);
        Assert.NotEqual(0, startError.FinishedAt);
        var again = await Assert.ThrowsAsync<RpcException>(async () =>
            await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = noCommandId }));
        Assert.Equal(StatusCode.FailedPrecondition, again.StatusCode);
        await runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = noCommandId });

        var badMount = Container("badmount", "/bin/true");
        badMount.Mounts.Add(new Mount { HostPath = "/nonexistent/nacelle-e2e", ContainerPath = "/data" });
        var noSource = await Assert.ThrowsAsync<RpcException>(async () =>
            await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = badMount, SandboxConfig = podConfig }));
        Assert.Contains("/nonexistent/nacelle-e2e", noSource.Status.Detail);

        // Stop and remove of an unknown container succeed (CRI idempotence; critest checks StopContainer).
        await runtime.StopContainerAsync(new StopContainerRequest { ContainerId = new string('b', 64), Timeout = 1 });
        await runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = new string('b', 64) });

        var noPod = await Assert.ThrowsAsync<RpcException>(async () =>
            await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = new string('a', 64), Config = Container("x", "/bin/true"), SandboxConfig = podConfig }));
        Assert.Equal(StatusCode.NotFound, noPod.StatusCode);

        // Nothing of the refused creates remains: only the two containers, and only their two writable layers.
        Assert.Equal(2, (await runtime.ListContainersAsync(new ListContainersRequest())).Containers.Count);
        Assert.Equal(2, Directory.GetDirectories(Path.Combine(session.Daemon.Root, "containers")).Length);
    }

    /// <summary>A pod named <paramref name="name"/> with one running container, `sleep 3600`, to exec in; its id.</summary>
    private async Task<string> StartProbeAsync(RuntimeService.RuntimeServiceClient runtime, string name)
    {
        var podConfig = Pod(name);
        var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig })).PodSandboxId;
        var id = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = Container("probe", "/bin/sleep", "3600"), SandboxConfig = podConfig })).ContainerId;
        await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
        return id;
    }

    /// <summary>
    /// The timeout is the command's: one that exits at once answers its exit and what it wrote, also when a background
    /// child keeps the output open until after the timeout (fuzzer seed 31337: `sh -c "sleep 3 &amp; exec true"` with a
    /// 1 s timeout was answered DeadlineExceeded, "it was killed": the timeout ended the drain of the output by
    /// cancelling its readers, and their cancellation was taken for the command's).
    /// </summary>
    [Fact]
    public async Task ExecSync_of_a_command_that_ends_in_time_answers_its_exit_though_a_child_holds_the_output_past_the_timeout()
    {
        await using var session = await StartAsync();
        var runtime = session.Runtime;
        var id = await StartProbeAsync(runtime, "execs-bg");

        for (var i = 0; i < 3; i++)
        {
            var exec = await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = id, Cmd = { "sh", "-c", "echo before; sleep 3 & exec true" }, Timeout = 1 });
            Assert.Equal(0, exec.ExitCode);
            Assert.Equal("before\n", exec.Stdout.ToStringUtf8());
        }

        // A command that does not end in time is still killed and answered DeadlineExceeded.
        var timedOut = await Assert.ThrowsAsync<RpcException>(async () =>
            await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = id, Cmd = { "sh", "-c", "echo before; sleep 3 & sleep 5" }, Timeout = 1 }));
        Assert.Equal(StatusCode.DeadlineExceeded, timedOut.StatusCode);
    }

    [Fact]
    public async Task ExecSync_times_out_as_DeadlineExceeded_and_a_long_exec_does_not_hold_up_the_pod()
    {
        await using var session = await StartAsync();
        var runtime = session.Runtime;
        var id = await StartProbeAsync(runtime, "execs");

        var clock = Stopwatch.StartNew();
        var timedOut = await Assert.ThrowsAsync<RpcException>(async () =>
            await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = id, Cmd = { "/bin/sleep", "30" }, Timeout = 1 }));
        Assert.Equal(StatusCode.DeadlineExceeded, timedOut.StatusCode);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"the timeout took {clock.Elapsed}");

        // While a 4-second exec runs, status, another exec and stats of the same pod answer at once.
        var slow = runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = id, Cmd = { "/bin/sleep", "4" } }).ResponseAsync;
        await Task.Delay(300);
        clock.Restart();
        Assert.Equal(ContainerState.ContainerRunning, (await runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id })).Status.State);
        Assert.Equal("quick\n", (await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = id, Cmd = { "/bin/echo", "quick" } })).Stdout.ToStringUtf8());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"the pod's other requests waited {clock.Elapsed} for the long exec");
        Assert.False(slow.IsCompleted);
        Assert.Equal(0, (await slow).ExitCode);

        // Output beyond kubelet's cap is cut, not an error: 1 MiB comes back whole.
        var big = await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = id, Cmd = { "/bin/sh", "-c", "head -c 1048576 /dev/zero" }, Timeout = 20 });
        Assert.Equal(1 << 20, big.Stdout.Length);
    }

    /// <summary>Regression (found by critest): a refresh of the pod's containers (the exit watch connecting, or any
    /// ContainerStatus) took a create still under way for one a dead daemon left behind and removed its rootfs. And (found
    /// in a 100-pod benchmark's log): a create that completed during a refresh was logged as finished after a restart.</summary>
    [Fact]
    public async Task Creates_under_way_survive_status_calls_and_the_exit_watch_of_their_pod()
    {
        await using var session = await StartAsync();
        var runtime = session.Runtime;
        var podConfig = Pod("busy");
        var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig })).PodSandboxId;
        var first = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = Container("first", "/bin/sleep", "3600"), SandboxConfig = podConfig })).ContainerId;
        using var stop = new CancellationTokenSource();
        var poller = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = first });
            }
        });
        var creates = Enumerable.Range(0, 6).Select(i =>
            runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = Container($"c{i}", "/bin/true"), SandboxConfig = podConfig }).ResponseAsync).ToList();
        var ids = (await Task.WhenAll(creates)).Select(r => r.ContainerId).ToList();
        await stop.CancelAsync();
        await poller;
        foreach (var id in ids)
        {
            await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
            Assert.Equal(0, (await WaitForStateAsync(runtime, id, ContainerState.ContainerExited)).ExitCode);
        }

        Assert.Equal(7, (await runtime.ListContainersAsync(new ListContainersRequest { Filter = new ContainerFilter { PodSandboxId = pod } })).Containers.Count);

        // No daemon restart happened: no create may be taken for one a dead daemon left half done, neither finished
        // (5307) nor cleaned up (5306). A refresh read a create's row before it completed and "completed" it again.
        Assert.DoesNotContain("[5307]", session.Daemon.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("[5306]", session.Daemon.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Removing_an_image_in_use_keeps_its_layers_until_the_last_container_goes()
    {
        await using var session = await StartAsync();
        var runtime = session.Runtime;
        var images = session.Daemon.Client.Images;
        var podConfig = Pod("imageinuse");
        var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig })).PodSandboxId;
        var id = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = Container("user", "/bin/sleep", "3600"), SandboxConfig = podConfig })).ContainerId;
        await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
        var snapshots = Path.Combine(session.Daemon.Root, "snapshots");
        var layersBefore = Directory.GetDirectories(snapshots).Length;
        Assert.True(layersBefore > 0);

        // CRI semantics (as containerd): the removal succeeds and the image is gone from the image service...
        await images.RemoveImageAsync(new RemoveImageRequest { Image = new ImageSpec { Image = _image } });
        Assert.Null((await images.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = _image } })).Image);
        // ...while the container keeps its layers and runs on.
        Assert.Equal(layersBefore, Directory.GetDirectories(snapshots).Length);
        Assert.Equal(0, (await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = id, Cmd = { "/bin/ls", "/bin/busybox" } })).ExitCode);
        var status = (await runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id })).Status;
        Assert.StartsWith("sha256:", status.ImageId);

        // The last container's removal takes the layers nothing else uses (in the background, once its overlay is gone).
        await runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id });
        for (var i = 0; i < 100 && Directory.GetDirectories(snapshots).Length > 0; i++)
        {
            await Task.Delay(100);
        }

        Assert.Empty(Directory.GetDirectories(snapshots));
    }

    /// <summary>Regression (found by the CRI fuzzer): removing a pod killed and removed every container cgroup under its
    /// cgroup_parent, so a second pod sharing that parent (as crictl users often set it up) lost its running
    /// containers. A pod's removal takes only its own containers' cgroups.</summary>
    [Fact]
    public async Task Removing_a_pod_leaves_the_containers_of_another_pod_under_the_same_cgroup_parent_running()
    {
        await using var session = await StartAsync();
        var runtime = session.Runtime;
        var ids = new List<(string Pod, string Container)>();
        foreach (var name in new[] { "sharer-a", "sharer-b" })
        {
            var podConfig = Pod(name);
            var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig })).PodSandboxId;
            var id = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = Container("sleeper", "/bin/sleep", "3600"), SandboxConfig = podConfig })).ContainerId;
            await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
            ids.Add((pod, id));
        }

        await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = ids[0].Pod });
        await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = ids[0].Pod });

        var survivor = ids[1].Container;
        Assert.Equal(ContainerState.ContainerRunning, (await runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = survivor })).Status.State);
        Assert.True(Directory.Exists($"/sys/fs/cgroup/pids{_cgroupParent}/{survivor}") || Directory.Exists($"/sys/fs/cgroup{_cgroupParent}/{survivor}"),
            "the other pod's container cgroup was removed");
        Assert.Equal(0, (await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = survivor, Cmd = { "/bin/true" } })).ExitCode);
    }

    /// <summary>ListContainerStats of more containers than are collected on one thread (StatsCollection): each entry has
    /// its own container's numbers; one container that put 40 MB in the pod's /dev/shm (tmpfs pages are charged to the
    /// cgroup of the process that wrote them) is told apart from nine sleepers.</summary>
    [Fact]
    public async Task Listed_stats_of_many_containers_each_carry_their_own_containers_numbers()
    {
        await using var session = await StartAsync();
        var runtime = session.Runtime;
        var podConfig = Pod("many");
        var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig })).PodSandboxId;
        var names = new Dictionary<string, string>();
        foreach (var name in Enumerable.Range(0, 10).Select(i => i == 6 ? "hog" : $"sleeper-{i}"))
        {
            var config = name == "hog"
                ? Container(name, "/bin/sh", "-c", "head -c 40000000 /dev/zero >/dev/shm/hog && exec sleep 3600")
                : Container(name, "/bin/sleep", "3600");
            var id = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = config, SandboxConfig = podConfig })).ContainerId;
            await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
            names[id] = name;
        }

        ListContainerStatsResponse listed;
        var deadline = Stopwatch.StartNew();
        do
        {
            listed = await runtime.ListContainerStatsAsync(new ListContainerStatsRequest { Filter = new ContainerStatsFilter { PodSandboxId = pod } });
            var hog = listed.Stats.SingleOrDefault(s => s.Attributes.Metadata.Name == "hog");
            if (hog?.Memory?.WorkingSetBytes?.Value > 35_000_000)
            {
                break;
            }

            await Task.Delay(200);
        }
        while (deadline.Elapsed < TimeSpan.FromSeconds(60));

        Assert.Equal(names.Keys.Order(), listed.Stats.Select(s => s.Attributes.Id).Order());
        foreach (var stats in listed.Stats)
        {
            var name = names[stats.Attributes.Id];
            Assert.Equal(name, stats.Attributes.Metadata.Name);
            Assert.Equal(name, stats.Attributes.Labels["container"]);
            Assert.NotNull(stats.Cpu?.UsageCoreNanoSeconds);
            Assert.NotNull(stats.WritableLayer?.UsedBytes);
            var workingSet = stats.Memory.WorkingSetBytes.Value;
            Assert.True(name == "hog" ? workingSet > 35_000_000 : workingSet < 20_000_000, $"{name}: working set {workingSet} bytes");
        }
    }

    /// <summary>Regression (found by the CRI fuzzer): a TARGET pid namespace naming a running container of another pod
    /// was accepted, and the new container joined that pod's processes. Only a container of the same pod (kubelet's
    /// ephemeral debug container) may be the target; one of another pod is InvalidArgument naming target_id.</summary>
    [Fact]
    public async Task A_pid_namespace_target_must_be_a_container_of_the_same_pod()
    {
        await using var session = await StartAsync();
        var runtime = session.Runtime;
        var pods = new List<(string Id, PodSandboxConfig Config, string Container)>();
        foreach (var name in new[] { "target-a", "target-b" })
        {
            var podConfig = Pod(name);
            var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig })).PodSandboxId;
            var id = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = Container("sleeper", "/bin/sleep", "3600"), SandboxConfig = podConfig })).ContainerId;
            await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
            pods.Add((pod, podConfig, id));
        }

        ContainerConfig Debug(string name, string target)
        {
            var config = Container(name, "/bin/sleep", "3600");
            config.Linux.SecurityContext.NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node, Pid = NamespaceMode.Target, Ipc = NamespaceMode.Pod, TargetId = target };
            return config;
        }

        var (podA, configA, _) = pods[0];
        var other = pods[1].Container;
        foreach (var target in new[] { other, other[..12] })
        {
            var e = await Assert.ThrowsAsync<RpcException>(async () => await runtime.CreateContainerAsync(
                new CreateContainerRequest { PodSandboxId = podA, Config = Debug("intruder", target), SandboxConfig = configA }));
            Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
            Assert.Contains("target_id", e.Status.Detail, StringComparison.Ordinal);
        }

        Assert.Single((await runtime.ListContainersAsync(new ListContainersRequest { Filter = new ContainerFilter { PodSandboxId = podA } })).Containers);

        // The same pod's container is a target, as for an ephemeral debug container: it sees the target's sleep.
        var debug = (await runtime.CreateContainerAsync(
            new CreateContainerRequest { PodSandboxId = podA, Config = Debug("debugger", pods[0].Container), SandboxConfig = configA })).ContainerId;
        await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = debug });
        var ps = await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = debug, Cmd = { "/bin/sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '" }, Timeout = 10 });
        Assert.Equal("/bin/sleep 3600 ", ps.Stdout.ToStringUtf8());

        // The spawn is StartContainer's: a target that stopped between create and start (its pid may name another
        // process by then) fails the start, which leaves the debug container exited with StartError.
        var late = (await runtime.CreateContainerAsync(
            new CreateContainerRequest { PodSandboxId = podA, Config = Debug("late", pods[0].Container), SandboxConfig = configA })).ContainerId;
        await runtime.StopContainerAsync(new StopContainerRequest { ContainerId = pods[0].Container, Timeout = 0 });
        var gone = await Assert.ThrowsAsync<RpcException>(async () => await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = late }));
        Assert.Equal(StatusCode.FailedPrecondition, gone.StatusCode);
        Assert.Contains("no longer runs", gone.Status.Detail, StringComparison.Ordinal);
        Assert.Equal("StartError", (await runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = late })).Status.Reason);
    }

    /// <summary>Regression (found by the CRI fuzzer): a PullImage whose AuthConfig held a line break or NUL failed with
    /// Internal (.NET refuses such a header value). Each field is checked first and refused by its CRI name.</summary>
    [Theory]
    [InlineData("username", "user\nname")]
    [InlineData("password", "pass\0word")]
    [InlineData("auth", "dXNlcjpwYXNz\r\n")]
    [InlineData("identity_token", "token\n")]
    [InlineData("registry_token", "bearer\r\nX-Injected: 1")]
    public async Task PullImage_refuses_credentials_with_line_breaks_or_nul_naming_the_field(string field, string value)
    {
        await using var session = await StartAsync();
        var auth = field switch
        {
            "username" => new AuthConfig { Username = value, Password = "p" },
            "password" => new AuthConfig { Username = "u", Password = value },
            "auth" => new AuthConfig { Auth = value },
            "identity_token" => new AuthConfig { IdentityToken = value },
            _ => new AuthConfig { RegistryToken = value },
        };
        var e = await Assert.ThrowsAsync<RpcException>(async () => await session.Daemon.Client.Images.PullImageAsync(
            new PullImageRequest { Image = new ImageSpec { Image = _image }, Auth = auth }));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("auth." + field, e.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(value, e.Status.Detail, StringComparison.Ordinal);
    }

    /// <summary>Regression (found by the CRI fuzzer): container rootfs overlays stayed mounted after every pod was
    /// removed. A removal unmounts everything on the rootfs mount point (one lazy unmount took only the top of a
    /// stack), and a restarted daemon unmounts rootfs mounts of containers it no longer knows.</summary>
    [Fact]
    public async Task No_rootfs_mount_outlives_its_container_nor_a_restart()
    {
        await using var session = await StartAsync();
        var runtime = session.Runtime;
        var containersDirectory = Path.Combine(session.Daemon.Root, "containers");
        var orphan = Path.Combine(containersDirectory, new string('0', 64), "rootfs");
        try
        {
            var podConfig = Pod("rootfs-mounts");
            var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig })).PodSandboxId;
            var stacked = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = Container("stacked", "/bin/true"), SandboxConfig = podConfig })).ContainerId;
            var rootfs = Path.Combine(containersDirectory, stacked, "rootfs");
            Assert.Contains(rootfs, PodLeftovers.MountsUnder(containersDirectory));
            var bind = TestBridge.Run("mount", "--bind", rootfs, rootfs);
            Assert.True(bind.Exit == 0, bind.Stderr);

            await runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = stacked });
            Assert.Empty(PodLeftovers.MountsUnder(containersDirectory));

            // A mount under the containers directory no rootfs record owns (a removal cut short by a crash), and a
            // container the daemon knows: the restart unmounts the first and keeps the second.
            var kept = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = Container("kept", "/bin/true"), SandboxConfig = podConfig })).ContainerId;
            Directory.CreateDirectory(orphan);
            var tmpfs = TestBridge.Run("mount", "-t", "tmpfs", "-o", "size=1m", "orphan", orphan);
            Assert.True(tmpfs.Exit == 0, tmpfs.Stderr);
            await session.Daemon.StopAsync(Signals.SIGKILL);
            session.Daemon = await DaemonProcess.RestartAsync(session.Daemon);

            Assert.Equal([Path.Combine(containersDirectory, kept, "rootfs")], PodLeftovers.MountsUnder(containersDirectory));
            await session.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod });
            Assert.Empty(PodLeftovers.MountsUnder(containersDirectory));
        }
        finally
        {
            foreach (var point in PodLeftovers.MountsUnder(containersDirectory).Where(p => p.StartsWith(Path.GetDirectoryName(orphan)!, StringComparison.Ordinal)))
            {
                TestBridge.Run("umount", "-l", point);
            }
        }
    }

    /// <summary>Regression (found by the CRI fuzzer): a CreateContainer beside the RemovePodSandbox of its pod answered
    /// Internal ("cannot bind-mount onto /sys/fs/cgroup/blkio: ENOENT": the removal took the new container's cgroup
    /// from under its spawn) or left its rootfs mounted. A create runs under the pod's gate: it either finishes before
    /// the removal (which then removes it) or finds the pod gone.</summary>
    [Fact]
    public async Task Creates_beside_the_removal_of_their_pod_succeed_or_find_it_gone_and_leave_nothing()
    {
        await using var session = await StartAsync();
        var runtime = session.Runtime;
        var containersDirectory = Path.Combine(session.Daemon.Root, "containers");
        for (var round = 0; round < 6; round++)
        {
            var podConfig = Pod($"create-vs-remove-{round}");
            var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig })).PodSandboxId;
            var creates = Enumerable.Range(0, 4).Select(async i =>
            {
                try
                {
                    await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = Container($"c{i}", "/bin/sleep", "3600"), SandboxConfig = podConfig });
                    return StatusCode.OK;
                }
                catch (RpcException e)
                {
                    return e.StatusCode;
                }
            }).ToList();
            await Task.Delay(round * 15);
            await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod });
            var codes = await Task.WhenAll(creates);
            Assert.All(codes, code => Assert.Contains(code, new[] { StatusCode.OK, StatusCode.NotFound, StatusCode.FailedPrecondition }));

            Assert.Empty((await runtime.ListContainersAsync(new ListContainersRequest())).Containers);
            Assert.Empty(PodLeftovers.MountsUnder(containersDirectory));
            Assert.Empty(ChildCgroups());
        }
    }

    /// <summary>Regression (found by the CRI fuzzer): concurrent RemoveContainer calls for one container each deleted its
    /// layer and bundle, and the one that came second failed with Internal (a directory the first had deleted). All must
    /// succeed.</summary>
    [Fact]
    public async Task Concurrent_removes_of_one_container_all_succeed()
    {
        await using var session = await StartAsync();
        var runtime = session.Runtime;
        var podConfig = Pod("removals");
        var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig })).PodSandboxId;
        for (var round = 0; round < 5; round++)
        {
            var id = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = Container($"r{round}", "/bin/sleep", "3600"), SandboxConfig = podConfig })).ContainerId;
            await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });

            await Task.WhenAll(Enumerable.Range(0, 6).Select(_ =>
                runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id }).ResponseAsync));

            Assert.Empty((await runtime.ListContainersAsync(new ListContainersRequest { Filter = new ContainerFilter { PodSandboxId = pod } })).Containers);
        }
    }

    /// <summary>The CRI fuzzer's StopPodSandbox answered NotFound ("container ... not found") when a RemoveContainer of one
    /// of its containers ran beside it: the stop's refresh read the container's row, asked the monitor, and then applied
    /// the exit to a row the remove had deleted meanwhile. Both must succeed.</summary>
    [Fact]
    public async Task A_pod_stop_beside_removes_of_its_containers_succeeds()
    {
        await using var session = await StartAsync();
        var runtime = session.Runtime;
        for (var round = 0; round < 6; round++)
        {
            var podConfig = Pod($"stop-remove-{round}");
            var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig })).PodSandboxId;
            var ids = new List<string>();
            for (var i = 0; i < 4; i++)
            {
                // Half exit at once (the daemon may not have seen it yet when the stop asks), half run until killed.
                var config = i % 2 == 0 ? Container($"c{i}", "/bin/true") : Container($"c{i}", "/bin/sleep", "3600");
                var id = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = config, SandboxConfig = podConfig })).ContainerId;
                await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
                ids.Add(id);
            }

            var calls = ids.Select(id => (Task)runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id }).ResponseAsync)
                .Prepend(runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod }).ResponseAsync)
                .Append(runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod }).ResponseAsync);
            await Task.WhenAll(calls);

            Assert.Empty((await runtime.ListContainersAsync(new ListContainersRequest { Filter = new ContainerFilter { PodSandboxId = pod } })).Containers);
            await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod });
        }
    }

    [Fact]
    public async Task Events_follow_a_container_and_its_pod()
    {
        await using var session = await StartAsync();
        var runtime = session.Runtime;
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var stream = runtime.GetContainerEvents(new GetEventsRequest(), cancellationToken: cancel.Token);
        var events = new List<ContainerEventResponse>();
        var reader = Task.Run(async () =>
        {
            try
            {
                while (await stream.ResponseStream.MoveNext(cancel.Token))
                {
                    lock (events)
                    {
                        events.Add(stream.ResponseStream.Current);
                    }
                }
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled)
            {
            }
        });
        await Task.Delay(200);

        var podConfig = Pod("events");
        var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig })).PodSandboxId;
        var id = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = Container("short", "/bin/sh", "-c", "exit 0"), SandboxConfig = podConfig })).ContainerId;
        await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
        await WaitForStateAsync(runtime, id, ContainerState.ContainerExited);
        await runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id });
        await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod });
        await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod });

        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            lock (events)
            {
                if (events.Any(e => e.ContainerId == pod && e.ContainerEventType == ContainerEventType.ContainerDeletedEvent))
                {
                    break;
                }
            }

            await Task.Delay(50);
        }

        await cancel.CancelAsync();
        await reader;
        var ofContainer = events.Where(e => e.ContainerId == id).Select(e => e.ContainerEventType).ToList();
        Assert.Equal([ContainerEventType.ContainerCreatedEvent, ContainerEventType.ContainerStartedEvent, ContainerEventType.ContainerStoppedEvent,
            ContainerEventType.ContainerDeletedEvent], ofContainer);
        var ofPod = events.Where(e => e.ContainerId == pod).Select(e => e.ContainerEventType).ToList();
        Assert.Equal([ContainerEventType.ContainerCreatedEvent, ContainerEventType.ContainerStartedEvent, ContainerEventType.ContainerStoppedEvent,
            ContainerEventType.ContainerDeletedEvent], ofPod);
        var created = events.First(e => e.ContainerId == id);
        Assert.Equal(pod, created.PodSandboxStatus.Id);
        Assert.Contains(created.ContainersStatuses, s => s.Id == id);
    }

    [Fact]
    public async Task After_a_kill_9_of_the_daemon_states_exit_codes_and_logs_are_whole()
    {
        await using var session = await StartAsync();
        var runtime = session.Runtime;
        var podConfig = Pod("recovery");
        var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig })).PodSandboxId;
        async Task<string> RunAsync(ContainerConfig config)
        {
            var id = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = config, SandboxConfig = podConfig })).ContainerId;
            await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
            return id;
        }

        var counter = await RunAsync(Container("counter", "/bin/sh", "-c", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.05; done"));
        var exiting = await RunAsync(Container("exiting", "/bin/sh", "-c", "sleep 2; exit 5"));
        var created = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = Container("parked", "/bin/true"), SandboxConfig = podConfig })).ContainerId;
        var counterLog = Path.Combine(podConfig.LogDirectory, "counter", "0.log");
        await WaitForLogAsync(counterLog, "line 5\n");

        var killedAt = DateTimeOffset.UtcNow;
        await session.Daemon.StopAsync(Signals.SIGKILL);
        await Task.Delay(TimeSpan.FromSeconds(3));
        session.Daemon = await DaemonProcess.RestartAsync(session.Daemon);
        runtime = session.Runtime;

        var exited = (await runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = exiting })).Status;
        Assert.Equal(ContainerState.ContainerExited, exited.State);
        Assert.Equal(5, exited.ExitCode);
        Assert.Equal("Error", exited.Reason);
        var finished = DateTimeOffset.UnixEpoch.AddTicks(exited.FinishedAt / 100);
        Assert.True(finished > killedAt, $"finished {finished:O}, daemon killed {killedAt:O}: the exit happened while the daemon was gone");
        Assert.Equal(ContainerState.ContainerRunning, (await runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = counter })).Status.State);
        Assert.Equal(ContainerState.ContainerCreated, (await runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = created })).Status.State);
        Assert.Equal(3, (await runtime.ListContainersAsync(new ListContainersRequest())).Containers.Count);

        // The log kept growing while the daemon was away, with no line missing.
        await Task.Delay(500);
        await runtime.StopContainerAsync(new StopContainerRequest { ContainerId = counter, Timeout = 0 });
        var numbers = (await File.ReadAllLinesAsync(counterLog))
            .Select(l => l.Split(' '))
            .Where(f => f.Length == 5 && f[1] == "stdout" && f[3] == "line")
            .Select(f => int.Parse(f[4], System.Globalization.CultureInfo.InvariantCulture))
            .ToList();
        Assert.True(numbers.Count > 60, $"{numbers.Count} lines: the container did not keep logging while the daemon was gone");
        Assert.Equal(Enumerable.Range(0, numbers.Count), numbers);

        // The created container still starts after the restart.
        await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = created });
        Assert.Equal(0, (await WaitForStateAsync(runtime, created, ContainerState.ContainerExited)).ExitCode);
    }

    /// <summary>
    /// The pod's monitor spawns a container at StartContainer (as containerd runs `runc create` there): before, it is a
    /// created container without a process. StopContainer leaves it created (containerd's no-op), exec is refused, a
    /// resource update goes into its spec and reaches its cgroup at start, and RemoveContainer removes it whole.
    /// </summary>
    [Fact]
    public async Task A_created_container_is_spawned_at_start_and_behaves_before_it()
    {
        await using var session = await StartAsync();
        var runtime = session.Runtime;
        var podConfig = Pod("created");
        var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig })).PodSandboxId;
        var limited = (await runtime.CreateContainerAsync(new CreateContainerRequest
        {
            PodSandboxId = pod, SandboxConfig = podConfig,
            Config = Container("limited", "/bin/sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"),
        })).ContainerId;
        var monitorState = Path.Combine(session.Daemon.State, "pods", pod, "monitor", "containers", limited);
        Assert.False(Directory.Exists(monitorState), "the monitor has the container before StartContainer");

        await runtime.StopContainerAsync(new StopContainerRequest { ContainerId = limited, Timeout = 0 });
        Assert.Equal(ContainerState.ContainerCreated, (await runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = limited })).Status.State);
        var exec = await Assert.ThrowsAsync<RpcException>(async () => await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = limited, Cmd = { "true" } }));
        Assert.Equal(StatusCode.FailedPrecondition, exec.StatusCode);

        await runtime.UpdateContainerResourcesAsync(new UpdateContainerResourcesRequest
        {
            ContainerId = limited, Linux = new LinuxContainerResources { MemoryLimitInBytes = 64L << 20 },
        });
        await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = limited });
        Assert.True(Directory.Exists(monitorState), "the monitor has no state of the started container");
        Assert.Equal(0, (await WaitForStateAsync(runtime, limited, ContainerState.ContainerExited)).ExitCode);
        Assert.Contains($"{64L << 20}", await WaitForLogAsync(Path.Combine(podConfig.LogDirectory, "limited", "0.log"), $"{64L << 20}"));

        var unstarted = (await runtime.CreateContainerAsync(new CreateContainerRequest
            { PodSandboxId = pod, Config = Container("unstarted", "/bin/true"), SandboxConfig = podConfig })).ContainerId;
        await runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = unstarted });
        var gone = await Assert.ThrowsAsync<RpcException>(async () => await runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = unstarted }));
        Assert.Equal(StatusCode.NotFound, gone.StatusCode);
        Assert.False(Directory.Exists(Path.Combine(session.Daemon.Root, "containers", unstarted)), "the writable layer stayed");
    }

    /// <summary>A create cut short leaves nothing; a start cut short after the monitor spawned the container (parked
    /// before its program) leaves it created, and a start after the restart releases it.</summary>
    [Theory]
    [InlineData("create-after-rootfs", false)]
    [InlineData("start-after-monitor-create", true)]
    public async Task A_create_or_start_cut_short_by_a_crash_is_completed_or_cleaned_up_never_half(string crashPoint, bool completes)
    {
        await using var session = await StartAsync(new Dictionary<string, string> { ["NACELLE_TEST_CRASH"] = crashPoint });
        var runtime = session.Runtime;
        var podConfig = Pod("crash");
        var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig })).PodSandboxId;
        if (completes)
        {
            var id = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = Container("cut", "/bin/true"), SandboxConfig = podConfig })).ContainerId;
            await Assert.ThrowsAsync<RpcException>(async () => await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id }));
        }
        else
        {
            await Assert.ThrowsAsync<RpcException>(async () =>
                await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = Container("cut", "/bin/true"), SandboxConfig = podConfig }));
        }

        Assert.True(await session.Daemon.WaitForExitAsync(TimeSpan.FromSeconds(10)) != 0);

        session.Daemon = await DaemonProcess.RestartAsync(session.Daemon);
        runtime = session.Runtime;
        var listed = (await runtime.ListContainersAsync(new ListContainersRequest())).Containers;
        var layers = Directory.Exists(Path.Combine(session.Daemon.Root, "containers")) ? Directory.GetDirectories(Path.Combine(session.Daemon.Root, "containers")) : [];
        if (completes)
        {
            var container = Assert.Single(listed);
            Assert.Equal(ContainerState.ContainerCreated, container.State);
            Assert.Single(layers);
            await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = container.Id });
            Assert.Equal(0, (await WaitForStateAsync(runtime, container.Id, ContainerState.ContainerExited)).ExitCode);
        }
        else
        {
            Assert.Empty(listed);
            Assert.Empty(layers);
            // The name is free again.
            var id = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = Container("cut", "/bin/true"), SandboxConfig = podConfig })).ContainerId;
            Assert.Matches("^[0-9a-f]{64}$", id);
        }
    }

    [Fact]
    public async Task An_exited_container_removed_by_a_daemon_killed_before_its_monitor_released_it_is_released_after_restart()
    {
        await using var session = await StartAsync(new Dictionary<string, string> { ["NACELLE_TEST_CRASH"] = "remove-before-monitor-release" });
        var runtime = session.Runtime;
        var podConfig = Pod("release");
        var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig })).PodSandboxId;
        var id = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = Container("done", "/bin/true"), SandboxConfig = podConfig })).ContainerId;
        await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
        Assert.Equal(ContainerState.ContainerExited, (await WaitForStateAsync(runtime, id, ContainerState.ContainerExited)).State);
        var monitorState = Path.Combine(session.Daemon.State, "pods", pod, "monitor", "containers", id);
        Assert.True(Directory.Exists(monitorState), $"the monitor keeps {monitorState} for the exited container");

        // The row, rootfs and bundle go; the daemon dies before the monitor hears of it.
        await Assert.ThrowsAsync<RpcException>(async () => await runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id }));
        Assert.True(await session.Daemon.WaitForExitAsync(TimeSpan.FromSeconds(10)) != 0);
        Assert.True(Directory.Exists(monitorState));

        session.Daemon = await DaemonProcess.RestartAsync(session.Daemon);
        runtime = session.Runtime;
        Assert.Empty((await runtime.ListContainersAsync(new ListContainersRequest())).Containers);
        Assert.False(Directory.Exists(monitorState), "recovery released the container the monitor still had");
        Assert.False(File.Exists(Path.Combine(session.Daemon.State, "pods", pod, "monitor", "exits", id + ".json")));
        Assert.Empty(Directory.GetDirectories(Path.Combine(session.Daemon.Root, "containers")));

        // The writable layer and the bundle were moved to the trashes, to be deleted in the background; whatever the
        // killed daemon had not deleted yet, the restarted one deletes, mounts included.
        Assert.True(await session.Daemon.WaitForTrashesAsync(), "the trashes were not emptied");

        Assert.DoesNotContain(File.ReadAllLines("/proc/self/mountinfo"), line => line.Contains(session.Daemon.Root + "/trash", StringComparison.Ordinal));
    }

    /// <summary>The container cgroups left under the test's cgroup parent (any hierarchy holding the memory controller).</summary>
    private string[] ChildCgroups() =>
        Directory.Exists("/sys/fs/cgroup/memory" + _cgroupParent) ? Directory.GetDirectories("/sys/fs/cgroup/memory" + _cgroupParent) : [];

    private static async Task<PodSandboxStatus> WaitForPodStateAsync(RuntimeService.RuntimeServiceClient runtime, string id, PodSandboxState state)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var status = (await runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = id })).Status;
            if (status.State == state || clock.Elapsed > TimeSpan.FromSeconds(20))
            {
                return status;
            }

            await Task.Delay(50);
        }
    }

    private static int ContainerPid(ContainerStatusResponse verbose)
    {
        using var info = JsonDocument.Parse(verbose.Info["info"]);
        return info.RootElement.GetProperty("pid").GetInt32();
    }

    /// <summary>Stop, Remove and a new pod of the same name all work, and the old pod left no cgroup behind.</summary>
    private async Task AssertPodCanBeEndedAndReplacedAsync(RuntimeService.RuntimeServiceClient runtime, string pod, string container, PodSandboxConfig config)
    {
        await runtime.StopContainerAsync(new StopContainerRequest { ContainerId = container, Timeout = 10 });
        await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod });
        await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod });
        Assert.Empty((await runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items);
        Assert.Empty(ChildCgroups());

        var replacement = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config })).PodSandboxId;
        Assert.NotEqual(pod, replacement);
        Assert.Equal(PodSandboxState.SandboxReady, (await runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = replacement })).Status.State);
    }

    /// <summary>
    /// An idle monitor unmaps the clean file pages its work touched (its executable's code and read-only data, libc's,
    /// and the unwritten pages of its writable .data): its file-backed resident set falls to a fraction, so does its
    /// .data mapping's, and everything still works afterwards (the pages come back from the page cache as they were;
    /// the .data pages the monitor wrote, its statics, dispatch cells and runtime state, stay): exec, the log, the exit.
    /// </summary>
    [Fact]
    public async Task An_idle_monitor_lets_go_of_its_file_pages_and_keeps_working()
    {
        await using var session = await StartAsync();
        var runtime = session.Runtime;
        var podConfig = Pod("settled");
        var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig })).PodSandboxId;
        var container = (await runtime.CreateContainerAsync(new CreateContainerRequest
        {
            PodSandboxId = pod, Config = Container("idler", "/bin/sh", "-c", "echo started; trap 'echo stopping; exit 7' TERM; while true; do sleep 1; done"),
            SandboxConfig = podConfig,
        })).ContainerId;
        await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = container });
        var monitor = (await PodInfo.OfAsync(session.Daemon, pod)).MonitorPid;
        Assert.Equal("hi\n", (await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = container, Cmd = { "echo", "hi" }, Timeout = 10 })).Stdout.ToStringUtf8());
        var busy = FileResidentKb(monitor);

        // The settle comes 2 s after the last work. The .data mapping is nearly all resident from the start (the runtime
        // reads it whole) and a settle leaves what the monitor wrote and what it read since: compared with its size, as
        // an earlier settle may have come before the exec.
        var idle = busy;
        var (dataSize, idleData) = DataKb(monitor);
        for (var i = 0; i < 100 && (idle >= busy / 2 || idleData >= dataSize / 2); i++)
        {
            await Task.Delay(200);
            idle = FileResidentKb(monitor);
            idleData = DataKb(monitor).Resident;
        }

        Assert.True(idle < busy / 2, $"the monitor's file-backed resident set: {busy} kB after an exec, {idle} kB idle");
        Assert.True(idleData < dataSize / 2, $"the monitor's .data mapping: {dataSize} kB, {idleData} kB of it resident idle");
        var again = await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = container, Cmd = { "/bin/sh", "-c", "echo again; exit 5" }, Timeout = 10 });
        Assert.Equal((5, "again\n"), (again.ExitCode, again.Stdout.ToStringUtf8()));
        await runtime.StopContainerAsync(new StopContainerRequest { ContainerId = container, Timeout = 10 });
        var stopped = await WaitForStateAsync(runtime, container, ContainerState.ContainerExited);
        Assert.Equal(7, stopped.ExitCode);
        var log = await File.ReadAllTextAsync(Path.Combine(podConfig.LogDirectory, "idler", "0.log"));
        Assert.Contains(" stdout F started\n", log, StringComparison.Ordinal);
        Assert.Contains(" stdout F stopping\n", log, StringComparison.Ordinal);
    }

    /// <summary>
    /// Every pod's monitor spawns from the daemon's one sealed copy of nacelle-spawn, inherited at launch, instead of a
    /// copy of its own (~0.8 MB of shared memory per pod that no PSS or RSS shows), and containers still start from it.
    /// </summary>
    [Fact]
    public async Task Monitors_spawn_from_the_daemons_one_copy_of_the_spawn_helper()
    {
        await using var session = await StartAsync();
        var runtime = session.Runtime;
        var monitors = new List<int>();
        foreach (var name in new[] { "helper-a", "helper-b" })
        {
            var podConfig = Pod(name);
            var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig })).PodSandboxId;
            var container = (await runtime.CreateContainerAsync(new CreateContainerRequest
            {
                PodSandboxId = pod, Config = Container("sleeper", "sleep", "1000"), SandboxConfig = podConfig,
            })).ContainerId;
            await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = container });
            Assert.Equal("ok\n", (await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = container, Cmd = { "echo", "ok" }, Timeout = 10 })).Stdout.ToStringUtf8());
            monitors.Add((await PodInfo.OfAsync(session.Daemon, pod)).MonitorPid);
        }

        var daemons = SpawnHelperCopies(session.Daemon.Pid);
        Assert.Single(daemons);
        foreach (var monitor in monitors)
        {
            Assert.Equal(daemons, SpawnHelperCopies(monitor));
        }
    }

    /// <summary>The inode numbers of the nacelle-spawn memfds a process holds open.</summary>
    private static long[] SpawnHelperCopies(int pid) =>
    [
        .. Directory.EnumerateFiles($"/proc/{pid}/fd")
            .Where(fd => new FileInfo(fd).LinkTarget is { } target && target.StartsWith("/memfd:nacelle-spawn ", StringComparison.Ordinal))
            .Select(fd => long.Parse(File.ReadLines($"/proc/{pid}/fdinfo/{Path.GetFileName(fd)}").Single(l => l.StartsWith("ino:", StringComparison.Ordinal))[4..].Trim(),
                System.Globalization.CultureInfo.InvariantCulture))
            .Distinct(),
    ];

    /// <summary>Whether a process exists and has not exited (a zombie has).</summary>
    private static bool Running(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z') is false;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>RssFile of a process (/proc/PID/status), in kB.</summary>
    /// <summary>Size and Rss of a process's writable private mappings of its own executable (its .data), from smaps.</summary>
    private static (long Size, long Resident) DataKb(int pid)
    {
        var exe = new FileInfo($"/proc/{pid}/exe").LinkTarget;
        long size = 0, total = 0;
        var inData = false;
        foreach (var line in File.ReadLines($"/proc/{pid}/smaps"))
        {
            var fields = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length == 6 && fields[0].Contains('-', StringComparison.Ordinal) && !fields[0].EndsWith(':'))
            {
                inData = fields[1] == "rw-p" && fields[5].Trim() == exe;
            }
            else if (inData && fields is ["Size:", var mapped, "kB"])
            {
                size += long.Parse(mapped, System.Globalization.CultureInfo.InvariantCulture);
            }
            else if (inData && fields is ["Rss:", var kb, "kB"])
            {
                total += long.Parse(kb, System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        Assert.True(size > 0, $"no .data mapping of {exe} in {pid}'s smaps");
        return (size, total);
    }

    private static long FileResidentKb(int pid) =>
        long.Parse(File.ReadLines($"/proc/{pid}/status").Single(l => l.StartsWith("RssFile:", StringComparison.Ordinal))["RssFile:".Length..]
            .Trim().TrimEnd('B', 'k').Trim(), System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task A_pod_whose_monitor_is_killed_is_NotReady_at_once_and_can_be_stopped_removed_and_replaced()
    {
        await using var session = await StartAsync();
        var runtime = session.Runtime;
        var podConfig = Pod("orphaned");
        var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig })).PodSandboxId;
        var container = (await runtime.CreateContainerAsync(new CreateContainerRequest
        {
            PodSandboxId = pod, Config = Container("sleeper", "/bin/sleep", "1000"), SandboxConfig = podConfig,
        })).ContainerId;
        await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = container });
        var pid = ContainerPid(await runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = container, Verbose = true }));
        var info = await PodInfo.OfAsync(session.Daemon, pod);

        Signals.Send(info.MonitorPid, Signals.SIGKILL);

        // Noticed without any call from kubelet: the pod is NotReady and the container exited, saying why.
        Assert.Equal(PodSandboxState.SandboxNotready, (await WaitForPodStateAsync(runtime, pod, PodSandboxState.SandboxNotready)).State);
        var status = await WaitForStateAsync(runtime, container, ContainerState.ContainerExited);
        Assert.Equal(ContainerState.ContainerExited, status.State);
        Assert.Equal("ContainerLost", status.Reason);
        Assert.Contains("monitor", status.Message, StringComparison.Ordinal);
        // Both die with the monitor; a dead one may stay a zombie until whoever inherited it reaps it, which is not
        // outliving it. Waited for together: one going first says nothing of the other (CI saw pause-init still there).
        for (var i = 0; i < 100 && (Running(pid) || Running(info.PauseInitPid)); i++)
        {
            await Task.Delay(50);
        }

        Assert.False(Running(pid), $"the container's process {pid} outlived its pod's monitor");
        Assert.False(Running(info.PauseInitPid), $"pause-init {info.PauseInitPid} outlived its pod's monitor");

        await AssertPodCanBeEndedAndReplacedAsync(runtime, pod, container, podConfig);
    }

    [Fact]
    public async Task After_a_node_reboot_pods_are_NotReady_their_containers_exited_and_both_can_be_replaced()
    {
        await using var session = await StartAsync();
        var runtime = session.Runtime;
        var podConfig = Pod("rebooted");
        var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig })).PodSandboxId;
        var container = (await runtime.CreateContainerAsync(new CreateContainerRequest
        {
            PodSandboxId = pod, Config = Container("sleeper", "/bin/sleep", "1000"), SandboxConfig = podConfig,
        })).ContainerId;
        await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = container });
        var info = await PodInfo.OfAsync(session.Daemon, pod);

        // The reboot: every process gone (the daemon first), the volatile state directory empty, the cgroups gone.
        await session.Daemon.StopAsync(Signals.SIGKILL);
        Signals.Send(info.MonitorPid, Signals.SIGKILL);
        TestCgroups.KillTree(_cgroupParent);
        foreach (var point in PodLeftovers.MountsUnder(session.Daemon.WorkDirectory))
        {
            TestBridge.Run("umount", "-l", point);
        }

        Directory.Delete(session.Daemon.State, recursive: true);
        TestCgroups.RemoveTree(_cgroupParent);

        session.Daemon = await DaemonProcess.RestartAsync(session.Daemon);
        runtime = session.Runtime;
        Assert.Equal(PodSandboxState.SandboxNotready, (await runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = pod })).Status.State);
        var status = (await runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = container })).Status;
        Assert.True(status.State == ContainerState.ContainerExited, $"{status.State}: {session.Daemon.Output}");
        Assert.Equal("ContainerLost", status.Reason);

        await AssertPodCanBeEndedAndReplacedAsync(runtime, pod, container, podConfig);
    }

    /// <summary>AppArmor and SELinux are not thrown away on this node, which enforces neither: a Localhost AppArmor
    /// profile and SELinux options are refused naming them; RuntimeDefault AppArmor runs (nothing to apply) and is said
    /// once in the daemon's log, however many containers ask.</summary>
    [Fact]
    public async Task Security_modules_the_node_lacks_are_refused_or_said_once_never_dropped()
    {
        Assert.SkipWhen(Nacelle.ContainerCore.Security.LinuxSecurityModules.Detect().AppArmor, "this node enforces AppArmor: the refusal cannot be seen here");
        await using var session = await StartAsync();
        var runtime = session.Runtime;
        var podConfig = Pod("lsm");
        var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig })).PodSandboxId;

        var localhost = Container("localhost", "/bin/true");
        localhost.Linux = new LinuxContainerConfig { SecurityContext = new LinuxContainerSecurityContext
        {
            Apparmor = new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.Localhost, LocalhostRef = "k8s-nginx" },
        } };
        var refused = await Assert.ThrowsAsync<RpcException>(async () =>
            await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = localhost, SandboxConfig = podConfig }));
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Contains("k8s-nginx", refused.Status.Detail, StringComparison.Ordinal);

        if (!Nacelle.ContainerCore.Security.LinuxSecurityModules.Detect().SELinux)
        {
            var labelled = Container("labelled", "/bin/true");
            labelled.Linux = new LinuxContainerConfig { SecurityContext = new LinuxContainerSecurityContext { SelinuxOptions = new SELinuxOption { Level = "s0:c1,c2" } } };
            var selinux = await Assert.ThrowsAsync<RpcException>(async () =>
                await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = labelled, SandboxConfig = podConfig }));
            Assert.Equal(StatusCode.FailedPrecondition, selinux.StatusCode);
            Assert.Contains("selinux_options", selinux.Status.Detail, StringComparison.Ordinal);
        }

        foreach (var name in new[] { "default-a", "default-b" })
        {
            var config = Container(name, "/bin/true");
            config.Linux = new LinuxContainerConfig { SecurityContext = new LinuxContainerSecurityContext
            {
                Apparmor = new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.RuntimeDefault },
            } };
            var id = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = config, SandboxConfig = podConfig })).ContainerId;
            await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
            Assert.Equal(0, (await WaitForStateAsync(runtime, id, ContainerState.ContainerExited)).ExitCode);
        }

        var said = session.Daemon.Output.Split('\n').Count(l => l.Contains("AppArmor RuntimeDefault asked for on a node that does not enforce AppArmor", StringComparison.Ordinal));
        Assert.Equal(1, said);
    }
}
