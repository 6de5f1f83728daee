using System.Text.Json;
using Grpc.Core;
using Nacelle.Tests.EndToEnd.Infrastructure;
using Nacelle.Tests.Support;
using Runtime.V1;

namespace Nacelle.Tests.EndToEnd;

/// <summary>
/// The pod rpcs through the socket as kubelet calls them. These pods use the node's network (no bridge is created on
/// the test machine); the CNI path is covered by the kernel tests of the pod manager.
/// </summary>
public sealed class PodSandboxTests
{
    private static PodSandboxConfig HostNetworkPod(string name, string cgroupParent) => new()
    {
        Metadata = new PodSandboxMetadata { Name = name, Namespace = "e2e", Uid = Guid.NewGuid().ToString(), Attempt = 1 },
        Hostname = name,
        LogDirectory = "/tmp",
        Labels = { ["app"] = name, ["tier"] = "test" },
        Annotations = { ["note"] = "e2e" },
        DnsConfig = new DNSConfig { Servers = { "10.96.0.10" }, Searches = { "e2e.svc" }, Options = { "ndots:2" } },
        Linux = new LinuxPodSandboxConfig
        {
            CgroupParent = cgroupParent,
            SecurityContext = new LinuxSandboxSecurityContext
            {
                NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node, Pid = NamespaceMode.Pod, Ipc = NamespaceMode.Pod },
            },
        },
    };

    [Fact]
    public async Task Run_status_list_stop_and_remove_a_pod()
    {
        await using var daemon = await DaemonProcess.StartAsync();
        var parent = "/nacelle-e2e-" + Guid.NewGuid().ToString("N")[..8];
        var runtime = daemon.Client.Runtime;
        try
        {
            var id = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = HostNetworkPod("web", parent) })).PodSandboxId;
            Assert.Matches("^[0-9a-f]{64}$", id);

            var status = await runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = id[..12], Verbose = true });
            Assert.Equal(PodSandboxState.SandboxReady, status.Status.State);
            Assert.Equal("web", status.Status.Metadata.Name);
            Assert.Equal(1u, status.Status.Metadata.Attempt);
            Assert.Equal(NamespaceMode.Node, status.Status.Linux.Namespaces.Options.Network);
            Assert.Equal("e2e", status.Status.Annotations["note"]);
            Assert.True(status.Status.CreatedAt > 0);
            using var info = JsonDocument.Parse(status.Info["info"]);
            var pausePid = info.RootElement.GetProperty("pauseInitPid").GetInt32();
            var monitorPid = info.RootElement.GetProperty("monitorPid").GetInt32();
            Assert.True(Directory.Exists($"/proc/{pausePid}"));
            Assert.True(Directory.Exists($"/proc/{monitorPid}"));
            // Shared pid namespace: pause-init is PID 1 there.
            Assert.Contains("NSpid:\t" + pausePid + "\t1", File.ReadAllText($"/proc/{pausePid}/status"));
            var podDir = info.RootElement.GetProperty("podDirectory").GetString()!;
            Assert.Contains("nameserver 10.96.0.10", File.ReadAllText(Path.Combine(podDir, "resolv.conf")));

            var stats = (await runtime.PodSandboxStatsAsync(new PodSandboxStatsRequest { PodSandboxId = id })).Stats;
            Assert.Equal(id, stats.Attributes.Id);
            Assert.True(stats.Linux.Memory.UsageBytes.Value > 0);
            Assert.True(stats.Linux.Process.ProcessCount.Value >= 1);
            Assert.NotNull(stats.Linux.Cpu.UsageCoreNanoSeconds);

            var other = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = HostNetworkPod("db", parent) })).PodSandboxId;
            var byLabel = await runtime.ListPodSandboxAsync(new ListPodSandboxRequest
            {
                Filter = new PodSandboxFilter { LabelSelector = { ["app"] = "web" } },
            });
            Assert.Equal(id, Assert.Single(byLabel.Items).Id);
            var byPrefix = await runtime.ListPodSandboxAsync(new ListPodSandboxRequest { Filter = new PodSandboxFilter { Id = other[..8] } });
            Assert.Equal(other, Assert.Single(byPrefix.Items).Id);

            var listed = await runtime.ListPodSandboxStatsAsync(new ListPodSandboxStatsRequest
            {
                Filter = new PodSandboxStatsFilter { LabelSelector = { ["tier"] = "test" } },
            });
            Assert.Equal(new[] { id, other }.Order(), listed.Stats.Select(s => s.Attributes.Id).Order());
            using (var streamed = runtime.StreamPodSandboxStats(new StreamPodSandboxStatsRequest
            {
                Filter = new PodSandboxStatsFilter { LabelSelector = { ["tier"] = "test" } },
            }))
            {
                var ids = new List<string>();
                while (await streamed.ResponseStream.MoveNext(CancellationToken.None))
                {
                    ids.AddRange(streamed.ResponseStream.Current.PodSandboxStats.Select(s => s.Attributes.Id));
                }

                Assert.Equal(new[] { id, other }.Order(), ids.Order());
            }

            await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = id });
            await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = id });
            var notReady = await runtime.ListPodSandboxAsync(new ListPodSandboxRequest
            {
                Filter = new PodSandboxFilter { State = new PodSandboxStateValue { State = PodSandboxState.SandboxNotready } },
            });
            Assert.Equal(id, Assert.Single(notReady.Items).Id);

            await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id });
            await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id });
            await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = other });
            Assert.Empty((await runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items);
            Assert.False(Directory.Exists($"/proc/{pausePid}"));
            for (var i = 0; i < 100 && Directory.Exists($"/proc/{monitorPid}"); i++)
            {
                await Task.Delay(50);
            }

            Assert.False(Directory.Exists($"/proc/{monitorPid}"));
            Assert.False(Directory.Exists(podDir));

            var missing = await Assert.ThrowsAsync<RpcException>(async () =>
                await runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = id }));
            Assert.Equal(StatusCode.NotFound, missing.StatusCode);
        }
        finally
        {
            TestCgroups.RemoveTree(parent);
        }
    }

    [Fact]
    public async Task Pods_survive_a_kill_9_of_the_daemon_and_are_removed_by_the_next_one()
    {
        var daemon = await DaemonProcess.StartAsync();
        var parent = "/nacelle-e2e-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            var id = (await daemon.Client.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = HostNetworkPod("survivor", parent) })).PodSandboxId;
            var before = await daemon.Client.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = id, Verbose = true });
            using var info = JsonDocument.Parse(before.Info["info"]);
            var pausePid = info.RootElement.GetProperty("pauseInitPid").GetInt32();
            var monitorPid = info.RootElement.GetProperty("monitorPid").GetInt32();

            await daemon.StopAsync(Nacelle.ContainerCore.Interop.Signals.SIGKILL);
            Assert.True(Directory.Exists($"/proc/{monitorPid}"), "the monitor died with the daemon");
            Assert.True(Directory.Exists($"/proc/{pausePid}"), "pause-init died with the daemon");
            daemon = await DaemonProcess.RestartAsync(daemon);

            var after = await daemon.Client.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = id });
            Assert.Equal(PodSandboxState.SandboxReady, after.Status.State);
            Assert.Single((await daemon.Client.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items);

            await daemon.Client.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id });
            for (var i = 0; i < 100 && Directory.Exists($"/proc/{monitorPid}"); i++)
            {
                await Task.Delay(50);
            }

            Assert.False(Directory.Exists($"/proc/{monitorPid}"), "the restarted daemon did not reach the monitor");
            Assert.False(Directory.Exists($"/proc/{pausePid}"));
            Assert.Empty((await daemon.Client.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items);
        }
        finally
        {
            await daemon.DisposeAsync();
            TestCgroups.RemoveTree(parent);
        }
    }

    [Fact]
    public async Task Bad_requests_are_refused_naming_the_problem_and_leave_nothing()
    {
        await using var daemon = await DaemonProcess.StartAsync();
        var runtime = daemon.Client.Runtime;
        var handler = await Assert.ThrowsAsync<RpcException>(async () => await runtime.RunPodSandboxAsync(new RunPodSandboxRequest
        {
            Config = HostNetworkPod("x", "/nacelle-e2e-bad"), RuntimeHandler = "kata",
        }));
        Assert.Equal(StatusCode.NotFound, handler.StatusCode);
        Assert.Contains("kata", handler.Status.Detail);

        var config = HostNetworkPod("y", "/nacelle-e2e-bad");
        config.DnsConfig.Servers.Add("not-an-ip");
        var dns = await Assert.ThrowsAsync<RpcException>(async () => await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config }));
        Assert.Equal(StatusCode.InvalidArgument, dns.StatusCode);
        Assert.Contains("not-an-ip", dns.Status.Detail);

        Assert.Empty((await runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items);
        Assert.Empty(Directory.Exists(Path.Combine(daemon.State, "pods")) ? Directory.GetDirectories(Path.Combine(daemon.State, "pods")) : []);
        await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = new string('a', 64) });
        await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = new string('a', 64) });
    }
}
