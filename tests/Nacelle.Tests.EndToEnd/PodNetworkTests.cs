using System.Net.Sockets;
using System.Text;
using Grpc.Core;
using Nacelle.ContainerCore.Interop;
using Nacelle.Tests.EndToEnd.Infrastructure;
using Nacelle.Tests.Support;
using Runtime.V1;

namespace Nacelle.Tests.EndToEnd;

/// <summary>
/// Pods on a real CNI bridge through the daemon's socket: each daemon gets its own conf dir with a test conflist
/// (<see cref="TestBridge"/>: a guarded bridge on a random 10.217.N.0/24, host-local with its data dir in the test
/// directory, portmap), and everything the test created is removed even when it fails. Traffic stays on 127.0.0.0/8 and
/// inside the test bridge. Also StreamPodSandboxes, which needs no bridge.
/// </summary>
public sealed class PodNetworkTests
{
    private static PodSandboxConfig Pod(string name, string cgroupParent, NamespaceMode network = NamespaceMode.Pod) => new()
    {
        Metadata = new PodSandboxMetadata { Name = name, Namespace = "e2e-net", Uid = Guid.NewGuid().ToString(), Attempt = 0 },
        Hostname = name,
        LogDirectory = "/tmp",
        Labels = { ["app"] = name, ["suite"] = "pod-network" },
        Linux = new LinuxPodSandboxConfig
        {
            CgroupParent = cgroupParent,
            SecurityContext = new LinuxSandboxSecurityContext
            {
                NamespaceOptions = new NamespaceOption { Network = network, Pid = NamespaceMode.Pod, Ipc = NamespaceMode.Pod },
            },
        },
    };

    private static string NewCgroupParent() => "/nacelle-e2e-net-" + Guid.NewGuid().ToString("N")[..8];

    /// <summary>A daemon whose only network is <paramref name="bridge"/>'s conflist.</summary>
    private static async Task<(DaemonProcess Daemon, string Toml)> StartOnBridgeAsync(string directory, TestBridge bridge)
    {
        var toml = bridge.InstallInto(directory);
        var daemon = await DaemonProcess.StartAsync(toml, directory: directory);
        return (daemon, toml);
    }

    private static async Task<string> RunPodAsync(DaemonProcess daemon, PodSandboxConfig config) =>
        (await daemon.Client.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config })).PodSandboxId;

    private static void AssertPings(PodInfo from, PodInfo to)
    {
        var ping = TestBridge.Ping(from.NetnsPath, to.Ip);
        Assert.True(ping.Exit == 0, $"pod {from.Id[..12]} ({from.Ip}) could not ping pod {to.Id[..12]} ({to.Ip}): {ping.Stdout}{ping.Stderr}");
    }

    /// <summary>Connects to 127.0.0.1:<paramref name="port"/> (retrying while the server comes up) and returns what it says.</summary>
    private static async Task<string> ReadFromLoopbackAsync(int port)
    {
        Exception? last = null;
        for (var attempt = 0; attempt < 50; attempt++)
        {
            try
            {
                using var client = new TcpClient();
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(3));
                await client.ConnectAsync("127.0.0.1", port, timeout.Token);
                using var reader = new StreamReader(client.GetStream(), Encoding.ASCII);
                var text = await reader.ReadToEndAsync(timeout.Token);
                if (text.Length > 0)
                {
                    return text;
                }
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or IOException)
            {
                last = e;
            }

            await Task.Delay(100);
        }

        throw new InvalidOperationException($"nothing answered on 127.0.0.1:{port}: {last?.Message}");
    }

    [Fact]
    public async Task StreamPodSandboxes_streams_one_message_per_matching_pod()
    {
        await using var daemon = await DaemonProcess.StartAsync();
        var parent = NewCgroupParent();
        var leftovers = new PodLeftovers();
        try
        {
            var web = await RunPodAsync(daemon, Pod("web", parent, NamespaceMode.Node));
            await leftovers.TrackAsync(daemon, web);
            var db = await RunPodAsync(daemon, Pod("db", parent, NamespaceMode.Node));
            await leftovers.TrackAsync(daemon, db);

            async Task<List<StreamPodSandboxesResponse>> StreamAsync(PodSandboxFilter? filter)
            {
                using var call = daemon.Client.Runtime.StreamPodSandboxes(new StreamPodSandboxesRequest { Filter = filter });
                var messages = new List<StreamPodSandboxesResponse>();
                while (await call.ResponseStream.MoveNext(CancellationToken.None))
                {
                    messages.Add(call.ResponseStream.Current);
                }

                return messages;
            }

            var all = await StreamAsync(null);
            Assert.All(all, m => Assert.Single(m.PodSandboxes));
            Assert.Equal(new[] { web, db }.Order(), all.Select(m => m.PodSandboxes[0].Id).Order());
            var listed = await daemon.Client.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest());
            Assert.Equal(listed.Items.OrderBy(p => p.Id), all.Select(m => m.PodSandboxes[0]).OrderBy(p => p.Id));

            var byLabel = await StreamAsync(new PodSandboxFilter { LabelSelector = { ["app"] = "db" } });
            Assert.Equal(db, Assert.Single(Assert.Single(byLabel).PodSandboxes).Id);
            var byPrefix = await StreamAsync(new PodSandboxFilter { Id = web[..10] });
            Assert.Equal(web, Assert.Single(Assert.Single(byPrefix).PodSandboxes).Id);

            await daemon.Client.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = web });
            var notReady = await StreamAsync(new PodSandboxFilter { State = new PodSandboxStateValue { State = PodSandboxState.SandboxNotready } });
            var stopped = Assert.Single(Assert.Single(notReady).PodSandboxes);
            Assert.Equal(web, stopped.Id);
            Assert.Equal(PodSandboxState.SandboxNotready, stopped.State);
            Assert.Equal("web", stopped.Metadata.Name);
            Assert.Equal("pod-network", stopped.Labels["suite"]);

            Assert.Empty(await StreamAsync(new PodSandboxFilter { Id = "ffffffffffff0000" }));
            await daemon.Client.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = web });
            await daemon.Client.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = db });
            Assert.Empty(await StreamAsync(null));
        }
        finally
        {
            await leftovers.CleanUpAsync(daemon);
            TestCgroups.RemoveTree(parent);
        }
    }

    [Fact]
    public async Task Two_pods_on_the_bridge_reach_each_other_and_stop_remove_leaves_nothing()
    {
        Assert.True(TestBridge.Available, "the CNI plugins (containernetworking-plugins), ip and iptables are needed: scripts/install-deps.sh --test");

        var dir = Directory.CreateTempSubdirectory("nacelle-e2e-").FullName;
        await using var bridge = new TestBridge(dir);
        var (daemon, _) = await StartOnBridgeAsync(dir, bridge);
        var parent = NewCgroupParent();
        var leftovers = new PodLeftovers();
        try
        {
            var a = await leftovers.TrackAsync(daemon, await RunPodAsync(daemon, Pod("ping-a", parent)));
            var b = await leftovers.TrackAsync(daemon, await RunPodAsync(daemon, Pod("ping-b", parent)));

            Assert.True(System.Net.IPAddress.TryParse(a.Ip, out _), $"pod A has no IP: '{a.Ip}'");
            Assert.NotEqual(a.Ip, b.Ip);
            Assert.StartsWith(bridge.Subnet[..bridge.Subnet.LastIndexOf('.')] + ".", a.Ip, StringComparison.Ordinal);
            Assert.True(TestBridge.LinkExists(bridge.BridgeName), $"the bridge {bridge.BridgeName} was not created");
            Assert.True(File.Exists(Path.Combine(bridge.ReservationDir, a.Ip)), $"host-local did not reserve {a.Ip} in {bridge.ReservationDir}");

            AssertPings(a, b);
            AssertPings(b, a);

            foreach (var pod in new[] { a, b })
            {
                await daemon.Client.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod.Id });
                await daemon.Client.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod.Id });
            }

            await AssertPodsLeftNothingAsync(daemon, bridge, a, b);
        }
        finally
        {
            await leftovers.CleanUpAsync(daemon);
            await daemon.DisposeAsync();
            TestCgroups.RemoveTree(parent);
        }
    }

    [Fact]
    public async Task A_host_port_mapping_answers_on_loopback_and_its_rules_go_with_StopPodSandbox()
    {
        Assert.True(TestBridge.Available, "the CNI plugins (containernetworking-plugins), ip and iptables are needed: scripts/install-deps.sh --test");

        var dir = Directory.CreateTempSubdirectory("nacelle-e2e-").FullName;
        await using var bridge = new TestBridge(dir);
        var (daemon, _) = await StartOnBridgeAsync(dir, bridge);
        var parent = NewCgroupParent();
        var leftovers = new PodLeftovers();
        try
        {
            var hostPort = Ports.FreeLoopbackPort();
            var config = Pod("hostport", parent);
            config.PortMappings.Add(new PortMapping { Protocol = Protocol.Tcp, ContainerPort = 8080, HostPort = hostPort, HostIp = "127.0.0.1" });
            var pod = await leftovers.TrackAsync(daemon, await RunPodAsync(daemon, config));

            var rules = bridge.PortmapRules();
            Assert.True(rules.Any(r => r.Contains(TestBridge.Format(hostPort), StringComparison.Ordinal)),
                $"no portmap rule for host port {hostPort}:\n{string.Join('\n', rules)}");

            // A tiny server inside the pod's network namespace (a host process of this test, ended by pid).
            var server = bridge.Start("nsenter", $"--net={pod.NetnsPath}", TestBridge.Busybox, "nc", "-ll", "-p", "8080", "-e", "/bin/echo", "hi from the pod");
            try
            {
                var answer = await ReadFromLoopbackAsync(hostPort);
                Assert.Equal("hi from the pod", answer.Trim());

                // Stop tears the mapping down (twice: Stop is idempotent) while the server still listens in the pinned netns.
                await daemon.Client.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod.Id });
                await daemon.Client.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod.Id });
                Assert.Empty(bridge.PortmapRules());
                Assert.False(server.HasExited, "the pod's test server ended early");
                Assert.False(Ports.IsListening(hostPort), $"127.0.0.1:{hostPort} still answers after StopPodSandbox");
            }
            finally
            {
                TestBridge.Stop(server);
            }

            await daemon.Client.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod.Id });
            await AssertPodsLeftNothingAsync(daemon, bridge, pod);
        }
        finally
        {
            await leftovers.CleanUpAsync(daemon);
            await daemon.DisposeAsync();
            TestCgroups.RemoveTree(parent);
        }
    }

    [Fact]
    public async Task The_pod_gets_its_DNS_config_hostname_and_pid_namespace()
    {
        Assert.True(TestBridge.Available, "the CNI plugins (containernetworking-plugins), ip and iptables are needed: scripts/install-deps.sh --test");

        var dir = Directory.CreateTempSubdirectory("nacelle-e2e-").FullName;
        await using var bridge = new TestBridge(dir);
        var (daemon, _) = await StartOnBridgeAsync(dir, bridge);
        var parent = NewCgroupParent();
        var leftovers = new PodLeftovers();
        try
        {
            var config = Pod("dns-pod", parent);
            config.DnsConfig = new DNSConfig
            {
                Servers = { "10.217.0.10", "10.217.0.11" },
                Searches = { "e2e-net.svc.cluster.local", "svc.cluster.local" },
                Options = { "ndots:5", "edns0" },
            };
            var pod = await leftovers.TrackAsync(daemon, await RunPodAsync(daemon, config));

            var resolv = await File.ReadAllTextAsync(Path.Combine(pod.PodDirectory, "resolv.conf"));
            Assert.Equal(
                "nameserver 10.217.0.10\nnameserver 10.217.0.11\nsearch e2e-net.svc.cluster.local svc.cluster.local\noptions ndots:5 edns0\n",
                resolv);
            Assert.Equal("dns-pod", (await File.ReadAllTextAsync(Path.Combine(pod.PodDirectory, "hostname"))).Trim());
            var hosts = await File.ReadAllTextAsync(Path.Combine(pod.PodDirectory, "hosts"));
            Assert.True(hosts.Split('\n').Any(l => l.StartsWith(pod.Ip, StringComparison.Ordinal) && l.Contains("dns-pod", StringComparison.Ordinal)),
                $"the pod's hosts file does not map {pod.Ip} to dns-pod:\n{hosts}");

            // The pod's UTS namespace carries the hostname; pause-init is PID 1 of the pod's pid namespace.
            var uname = TestBridge.Run("nsenter", $"--uts=/proc/{pod.PauseInitPid}/ns/uts", "/bin/busybox", "hostname");
            Assert.True(uname.Exit == 0, uname.Stderr);
            Assert.Equal("dns-pod", uname.Stdout.Trim());
            var nspid = File.ReadAllLines($"/proc/{pod.PauseInitPid}/status").Single(l => l.StartsWith("NSpid:", StringComparison.Ordinal));
            Assert.True(nspid.Split('\t', StringSplitOptions.RemoveEmptyEntries)[^1] == "1", $"pause-init is not PID 1 in the pod: {nspid}");

            await daemon.Client.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod.Id });
            Assert.False(Directory.Exists(pod.PodDirectory), "the pod directory outlived RemovePodSandbox");
        }
        finally
        {
            await leftovers.CleanUpAsync(daemon);
            await daemon.DisposeAsync();
            TestCgroups.RemoveTree(parent);
        }
    }

    [Fact]
    public async Task A_host_network_pod_is_in_the_hosts_network_namespace()
    {
        await using var daemon = await DaemonProcess.StartAsync();
        var parent = NewCgroupParent();
        var leftovers = new PodLeftovers();
        try
        {
            var pod = await leftovers.TrackAsync(daemon, await RunPodAsync(daemon, Pod("hostnet", parent, NamespaceMode.Node)));
            Assert.Equal(string.Empty, pod.NetnsPath);
            Assert.Equal(
                new FileInfo("/proc/self/ns/net").LinkTarget,
                new FileInfo($"/proc/{pod.PauseInitPid}/ns/net").LinkTarget);

            // The same interfaces (retried: other tests on this machine may add or remove links meanwhile).
            static IReadOnlyList<string> Links(params string[] command)
            {
                var run = TestBridge.Run(command[0], command[1..]);
                Assert.True(run.Exit == 0, run.Stderr);
                return [.. run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(':')[1].Trim().Split('@')[0]).Order()];
            }

            IReadOnlyList<string> host = [], inPod = [];
            for (var attempt = 0; attempt < 5; attempt++)
            {
                host = Links("ip", "-o", "link");
                inPod = Links("nsenter", $"--net=/proc/{pod.PauseInitPid}/ns/net", "ip", "-o", "link");
                if (host.SequenceEqual(inPod))
                {
                    break;
                }
            }

            Assert.Equal(host, inPod);
            Assert.Contains("lo", inPod);
            Assert.True(inPod.Count > 1, "the host network pod sees only lo");
        }
        finally
        {
            await leftovers.CleanUpAsync(daemon);
            TestCgroups.RemoveTree(parent);
        }
    }

    [Fact]
    public async Task Bridge_pods_survive_a_kill_9_of_the_daemon_and_the_restarted_one_cleans_them_up()
    {
        Assert.True(TestBridge.Available, "the CNI plugins (containernetworking-plugins), ip and iptables are needed: scripts/install-deps.sh --test");

        var dir = Directory.CreateTempSubdirectory("nacelle-e2e-").FullName;
        await using var bridge = new TestBridge(dir);
        var (daemon, toml) = await StartOnBridgeAsync(dir, bridge);
        var parent = NewCgroupParent();
        var leftovers = new PodLeftovers();
        try
        {
            var hostPort = Ports.FreeLoopbackPort();
            var configA = Pod("survivor-a", parent);
            configA.PortMappings.Add(new PortMapping { Protocol = Protocol.Tcp, ContainerPort = 8080, HostPort = hostPort, HostIp = "127.0.0.1" });
            var a = await leftovers.TrackAsync(daemon, await RunPodAsync(daemon, configA));
            var b = await leftovers.TrackAsync(daemon, await RunPodAsync(daemon, Pod("survivor-b", parent)));
            AssertPings(a, b);

            await daemon.StopAsync(Signals.SIGKILL);
            Assert.True(Directory.Exists($"/proc/{a.MonitorPid}"), "pod A's monitor died with the daemon");
            Assert.True(Directory.Exists($"/proc/{b.PauseInitPid}"), "pod B's pause-init died with the daemon");
            AssertPings(a, b); // the network does not depend on the daemon
            daemon = await DaemonProcess.RestartAsync(daemon, toml);

            var listed = (await daemon.Client.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items;
            Assert.Equal(new[] { a.Id, b.Id }.Order(), listed.Select(p => p.Id).Order());
            Assert.All(listed, p => Assert.Equal(PodSandboxState.SandboxReady, p.State));
            foreach (var before in new[] { a, b })
            {
                var after = await PodInfo.OfAsync(daemon, before.Id);
                Assert.Equal(before, after);
                Assert.Single(PodLeftovers.ProcessesMentioning("--pod " + before.Id));
            }

            AssertPings(a, b);
            AssertPings(b, a);
            Assert.NotEmpty(bridge.PortmapRules());
            var stats = (await daemon.Client.Runtime.PodSandboxStatsAsync(new PodSandboxStatsRequest { PodSandboxId = a.Id })).Stats;
            Assert.Equal("eth0", stats.Linux.Network?.DefaultInterface?.Name);
            Assert.True(stats.Linux.Network!.DefaultInterface.TxBytes.Value > 0, "pod A's eth0 sent nothing although it pinged pod B");

            foreach (var pod in new[] { a, b })
            {
                await daemon.Client.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod.Id });
                Assert.Single(PodLeftovers.ProcessesMentioning("--pod " + pod.Id)); // the restarted daemon started no second monitor
                await daemon.Client.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod.Id });
            }

            await AssertPodsLeftNothingAsync(daemon, bridge, a, b);
        }
        finally
        {
            await leftovers.CleanUpAsync(daemon);
            await daemon.DisposeAsync();
            TestCgroups.RemoveTree(parent);
        }
    }

    [Fact]
    public async Task A_kill_9_after_CNI_ADD_is_undone_by_the_restarted_daemon_and_the_name_is_free_again()
    {
        Assert.True(TestBridge.Available, "the CNI plugins (containernetworking-plugins), ip and iptables are needed: scripts/install-deps.sh --test");

        var dir = Directory.CreateTempSubdirectory("nacelle-e2e-").FullName;
        await using var bridge = new TestBridge(dir);
        var toml = bridge.InstallInto(dir);
        var daemon = await DaemonProcess.StartAsync(toml, directory: dir, environment: new Dictionary<string, string> { ["NACELLE_TEST_CRASH"] = "run-after-cni" });
        var parent = NewCgroupParent();
        var leftovers = new PodLeftovers();
        try
        {
            var config = Pod("cut-short", parent);
            config.PortMappings.Add(new PortMapping { Protocol = Protocol.Tcp, ContainerPort = 8080, HostPort = Ports.FreeLoopbackPort(), HostIp = "127.0.0.1" });
            await Assert.ThrowsAsync<RpcException>(async () => await RunPodAsync(daemon, config));
            Assert.True(await daemon.WaitForExitAsync(TimeSpan.FromSeconds(10)) != 0, "the daemon did not crash where it was told to");
            // What the crash left: an address, a portmap rule, a monitor and pause-init, namespace pins.
            Assert.NotEmpty(bridge.Reservations());
            Assert.NotEmpty(bridge.PortmapRules());
            Assert.NotEmpty(PodLeftovers.ProcessesMentioning(Path.Combine(daemon.State, "pods")));

            daemon = await DaemonProcess.RestartAsync(daemon, toml);
            Assert.Empty((await daemon.Client.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items);
            Assert.Empty(bridge.Reservations());
            Assert.Empty(bridge.PortmapRules());
            Assert.Empty(PodLeftovers.ProcessesMentioning(Path.Combine(daemon.State, "pods")));
            Assert.Empty(PodLeftovers.MountsUnder(daemon.WorkDirectory));
            Assert.Empty(Directory.Exists("/sys/fs/cgroup/memory" + parent) ? Directory.GetDirectories("/sys/fs/cgroup/memory" + parent) : []);

            // kubelet's retry of the same pod (same name, uid and attempt) succeeds.
            var pod = await leftovers.TrackAsync(daemon, await RunPodAsync(daemon, config));
            Assert.True(System.Net.IPAddress.TryParse(pod.Ip, out _), $"the retried pod has no IP: '{pod.Ip}'");
        }
        finally
        {
            await leftovers.CleanUpAsync(daemon);
            foreach (var pid in PodLeftovers.ProcessesMentioning(Path.Combine(daemon.State, "pods")))
            {
                Signals.Send(pid, Signals.SIGKILL);
            }

            TestCgroups.KillTree(parent);
            foreach (var point in PodLeftovers.MountsUnder(daemon.WorkDirectory))
            {
                TestBridge.Run("umount", "-l", point);
            }

            await daemon.DisposeAsync();
            TestCgroups.RemoveTree(parent);
        }
    }

    /// <summary>
    /// After Stop + Remove: no monitor or pause-init, no namespace pin or mount under the daemon's directory, no host-local
    /// reservation, no cached CNI result, no portmap rule, the pod directory gone and the pods unlisted.
    /// </summary>
    private static async Task AssertPodsLeftNothingAsync(DaemonProcess daemon, TestBridge bridge, params PodInfo[] pods)
    {
        foreach (var pod in pods)
        {
            for (var i = 0; i < 100 && (PodLeftovers.ProcessesMentioning("--pod " + pod.Id).Count > 0 || Directory.Exists($"/proc/{pod.PauseInitPid}")); i++)
            {
                await Task.Delay(50);
            }

            Assert.Empty(PodLeftovers.ProcessesMentioning("--pod " + pod.Id));
            Assert.False(Directory.Exists($"/proc/{pod.PauseInitPid}"), $"pause-init {pod.PauseInitPid} of pod {pod.Id[..12]} outlived RemovePodSandbox");
            Assert.False(File.Exists(pod.NetnsPath), $"the netns pin {pod.NetnsPath} outlived RemovePodSandbox");
            Assert.False(File.Exists(Path.Combine(bridge.ReservationDir, pod.Ip)), $"host-local still reserves {pod.Ip}");
            Assert.False(Directory.Exists(pod.PodDirectory), $"{pod.PodDirectory} outlived RemovePodSandbox");
        }

        Assert.Empty(PodLeftovers.MountsUnder(daemon.WorkDirectory));
        var results = Path.Combine(daemon.Root, "cni", "results");
        Assert.Empty(Directory.Exists(results) ? Directory.GetFiles(results) : []);
        Assert.Empty(bridge.PortmapRules());
        Assert.Empty((await daemon.Client.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items);
    }
}
