using System.Collections.Concurrent;
using Nacelle.Common;
using Nacelle.ContainerCore.Interop;
using Nacelle.Storage;
using Nacelle.Sandbox.Network;
using Nacelle.Sandbox.Pods;
using Nacelle.Sandbox.Store;
using Nacelle.Tests.Kernel.Cni;
using Nacelle.Tests.Support;

namespace Nacelle.Tests.Kernel.Pods;

/// <summary>
/// Pod sandboxes end to end below the CRI layer: a real monitor (JIT build), pause-init, pinned namespaces and the
/// built-in CNI network on a test bridge behind the FORWARD guard; stop and remove leave nothing; a failure half way
/// undoes everything.
/// </summary>
public sealed class PodManagerKernelTests
{
    private sealed class Fixture : IAsyncDisposable
    {
        public Fixture(Func<CniOptions, CniOptions>? adjust = null)
        {
            Cni = new CniKernelScope();
            State = Path.Combine(Cni.Root, "run");
            Network = new CniNetwork(adjust is null ? Cni.Options() : adjust(Cni.Options()));
            Store = new PodStore(new MetadataDatabase(Path.Combine(Cni.Root, "meta.db")));
            CgroupParent = "/nacelle-test-" + Cni.Id;
            Manager = new PodManager(new PodManagerOptions
            {
                StateRoot = State,
                MonitorProgram = Path.Combine(AppContext.BaseDirectory, "nacelle-monitor.dll"),
                DefaultCgroupParent = CgroupParent,
            }, Store, Network);
        }

        public CniKernelScope Cni { get; }
        public string State { get; }
        public CniNetwork Network { get; }
        public PodStore Store { get; }
        public string CgroupParent { get; }
        public PodManager Manager { get; }

        public PodSandboxRequest Request(string name) => new()
        {
            Name = name, Namespace = "nacelle-test", Uid = Guid.NewGuid().ToString(),
            Dns = new PodDnsConfig(["10.96.0.10"], ["nacelle-test.svc.cluster.local"], ["ndots:5"]),
        };

        public async ValueTask DisposeAsync()
        {
            foreach (var pod in Store.ListPods())
            {
                try
                {
                    await Manager.RemoveAsync(pod.Id);
                }
                catch (Exception)
                {
                    // keep cleaning
                }
            }

            await Manager.DisposeAsync();
            Network.Dispose();
            TestCgroups.RemoveTree(CgroupParent);
            await Cni.DisposeAsync();
        }
    }

    [Fact]
    public async Task Two_pods_get_addresses_reach_each_other_and_leave_nothing_when_removed()
    {
        Assert.True(CniKernelScope.Available && Environment.UserName == "root");
        await using var f = new Fixture();
        var a = await f.Manager.RunAsync(f.Request("pod-a"));
        var b = await f.Manager.RunAsync(f.Request("pod-b"));
        var podA = f.Store.GetPod(a);
        var podB = f.Store.GetPod(b);
        Assert.Equal(PodState.Ready, podA.State);
        Assert.Single(podA.Ips);
        Assert.NotEqual(podA.Ips[0], podB.Ips[0]);
        Assert.StartsWith(f.Cni.Subnet[..f.Cni.Subnet.LastIndexOf('.')], podA.Ips[0]);
        Assert.True(File.Exists(podA.NetnsPath));
        Assert.True(Directory.Exists($"/proc/{podA.PauseInitPid}"));
        Assert.True(Directory.Exists($"/proc/{podA.MonitorPid}"));

        var ping = CniKernelScope.Run("nsenter", $"--net={podA.NetnsPath}", "/bin/busybox", "ping", "-c", "1", "-W", "3", podB.Ips[0]);
        Assert.True(ping.Exit == 0, ping.Stdout + ping.Stderr);

        var usage = f.Manager.Usage(podA);
        var eth0 = Assert.Single(usage.Interfaces, i => i.Name == "eth0");
        Assert.True(eth0.RxBytes > 0 && eth0.TxBytes > 0, $"rx {eth0.RxBytes} tx {eth0.TxBytes}");
        Assert.True(usage.Cgroup!.ProcessCount >= 1);

        var resolv = File.ReadAllText(Path.Combine(f.Manager.PodDirectory(a), "resolv.conf"));
        Assert.Contains("nameserver 10.96.0.10", resolv);
        Assert.Contains("search nacelle-test.svc.cluster.local", resolv);
        Assert.Contains("options ndots:5", resolv);
        // No hostname asked for: the node's, as containerd does.
        var nodeHostname = File.ReadAllText("/proc/sys/kernel/hostname").Trim();
        Assert.Equal(nodeHostname, podA.Hostname);
        Assert.Contains($"{podA.Ips[0]}\t{nodeHostname}", File.ReadAllText(Path.Combine(f.Manager.PodDirectory(a), "hosts")));

        await f.Manager.StopAsync(a);
        await f.Manager.StopAsync(a); // idempotent
        Assert.Equal(PodState.NotReady, f.Store.GetPod(a).State);
        Assert.Empty(Directory.GetFiles(f.Cni.IpamDir, podA.Ips[0], SearchOption.AllDirectories));

        await f.Manager.RemoveAsync(a);
        await f.Manager.RemoveAsync(a); // idempotent
        Assert.Null(f.Store.TryGetPod(a));
        Assert.False(Directory.Exists(f.Manager.PodDirectory(a)));
        Assert.False(File.Exists(podA.NetnsPath));
        Assert.False(Directory.Exists($"/proc/{podA.PauseInitPid}"));
        await WaitGoneAsync(podA.MonitorPid!.Value);
        Assert.DoesNotContain(File.ReadLines("/proc/self/mountinfo"), l => l.Contains(a, StringComparison.Ordinal));
        await f.Manager.StopAsync("0000000000000000000000000000000000000000000000000000000000000000"); // unknown: fine
    }

    /// <summary>Regression (found by critest): StopPodSandbox kills pause-init on purpose, but the pod's watch was still
    /// running, so a pause-init dying before the stop recorded NotReady made the pod "lost": a false warning and PodLost
    /// event (27 of 84 pods in one critest run), and when the monitor was gone by then, a cgroup kill and a PodLost
    /// handler racing RemovePodSandbox ("watching its monitor and pause-init failed: pod ... not found"). A stop now ends
    /// the watch before it kills anything.</summary>
    [Fact]
    public async Task Stopping_a_pod_on_purpose_never_reports_it_lost()
    {
        Assert.True(CniKernelScope.Available && Environment.UserName == "root");
        await using var f = new Fixture();
        var lost = new ConcurrentQueue<PodLoss>();
        f.Manager.PodLost += lost.Enqueue;
        for (var i = 0; i < 12; i++)
        {
            var id = await f.Manager.RunAsync(f.Request($"stopped-{i}"));
            var pause = f.Store.GetPod(id).PauseInitPid!.Value;
            await f.Manager.StopAsync(id);
            await WaitGoneAsync(pause);
            Assert.Equal(PodState.NotReady, f.Store.GetPod(id).State);
            await f.Manager.RemoveAsync(id);
        }

        Assert.Empty(lost);

        // A pause-init that dies on its own is still a lost pod.
        var victim = await f.Manager.RunAsync(f.Request("victim"));
        var seen = new TaskCompletionSource<PodLoss>(TaskCreationOptions.RunContinuationsAsynchronously);
        f.Manager.PodLost += loss => seen.TrySetResult(loss);
        Signals.Send(f.Store.GetPod(victim).PauseInitPid!.Value, Signals.SIGKILL);
        var loss = await seen.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(victim, loss.PodId);
        Assert.Contains("pause-init", loss.Reason, StringComparison.Ordinal);
        Assert.Equal(PodState.NotReady, f.Store.GetPod(victim).State);
    }

    /// <summary>Regression (found by critest): a pod without a hostname was given its name as hostname, so a pod named
    /// "create-PodSandbox-for-container-&lt;uuid&gt;" (too long, capitals) failed RunPodSandbox.</summary>
    [Fact]
    public async Task A_pod_without_a_hostname_gets_the_nodes_whatever_its_name()
    {
        Assert.True(CniKernelScope.Available && Environment.UserName == "root");
        await using var f = new Fixture();
        var id = await f.Manager.RunAsync(f.Request("Create-PodSandbox-for-container-" + Guid.NewGuid()));
        var pod = f.Store.GetPod(id);
        var nodeHostname = File.ReadAllText("/proc/sys/kernel/hostname").Trim();
        Assert.Equal(nodeHostname, pod.Hostname);
        var uts = CniKernelScope.Run("nsenter", $"--uts=/proc/{pod.PauseInitPid}/ns/uts", "/bin/busybox", "hostname");
        Assert.Equal(nodeHostname, uts.Stdout.Trim());

        var named = await f.Manager.RunAsync(f.Request("named") with { Hostname = "web-0" });
        Assert.Equal("web-0", f.Store.GetPod(named).Hostname);
    }

    /// <summary>The pod's network namespace is made (and set up by CNI) while the monitor and pause-init start:
    /// pause-init joins it and no thread of the daemon is left in it. A pod with net sysctls has pause-init create its
    /// network namespace (sysctls go only into a namespace the spawn creates), and gets its network after.</summary>
    [Fact]
    public async Task Pause_init_joins_the_network_namespace_made_for_the_pod_and_the_daemon_stays_out_of_it()
    {
        Assert.True(CniKernelScope.Available && Environment.UserName == "root");
        await using var f = new Fixture();
        var home = Inode("/proc/self/ns/net");
        var sysctls = new Dictionary<string, string> { ["net.ipv4.ip_unprivileged_port_start"] = "1000" };
        foreach (var request in new[] { f.Request("joined"), f.Request("sysctls") with { Sysctls = sysctls } })
        {
            var id = await f.Manager.RunAsync(request);
            var pod = f.Store.GetPod(id);
            var pause = pod.PauseInitPid!.Value;
            Assert.Equal(f.Manager.NamespacePath(id, "net"), pod.NetnsPath);
            Assert.Equal(Inode(pod.NetnsPath), Inode($"/proc/{pause}/ns/net"));
            Assert.NotEqual(home, Inode(pod.NetnsPath));
            Assert.Equal(Inode(f.Manager.NamespacePath(id, "uts")!), Inode($"/proc/{pause}/ns/uts"));
            Assert.All(Directory.GetDirectories("/proc/self/task"), task => Assert.Equal(home, Inode(task + "/ns/net")));

            var sysctl = CniKernelScope.Run("nsenter", $"--net={pod.NetnsPath}", "/bin/busybox", "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start");
            Assert.Equal(request.Sysctls.Count > 0 ? "1000" : "1024", sysctl.Stdout.Trim());
            var eth0 = CniKernelScope.Run("nsenter", $"--net={pod.NetnsPath}", "/bin/busybox", "ip", "-o", "addr", "show", "eth0");
            Assert.Contains(pod.Ips[0] + "/", eth0.Stdout, StringComparison.Ordinal);

            await f.Manager.RemoveAsync(id);
            Assert.False(File.Exists(pod.NetnsPath));
        }

        AssertNothingLeft(f);
    }

    [Fact]
    public async Task A_failure_half_way_undoes_every_step()
    {
        Assert.True(CniKernelScope.Available && Environment.UserName == "root");
        await using var f = new Fixture();
        // A node-wide sysctl is refused when pause-init is created, after the monitor is already running.
        var request = f.Request("bad") with { Sysctls = new Dictionary<string, string> { ["kernel.panic"] = "1" } };
        var error = await Assert.ThrowsAsync<NacelleException>(() => f.Manager.RunAsync(request));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains("kernel.panic", error.Message);
        Assert.Empty(f.Store.ListPods());
        Assert.Empty(Directory.Exists(Path.Combine(f.State, "pods")) ? Directory.GetDirectories(Path.Combine(f.State, "pods")) : []);
        Assert.Empty(Directory.Exists(Path.Combine(f.State, "ns")) ? Directory.GetDirectories(Path.Combine(f.State, "ns")) : []);
        Assert.DoesNotContain(File.ReadLines("/proc/self/mountinfo"), l => l.Contains(f.State, StringComparison.Ordinal));
        Assert.DoesNotContain(Directory.GetDirectories("/proc"), d => File.Exists(d + "/cmdline")
            && SafeRead(d + "/cmdline").Contains(Path.Combine(f.State, "pods"), StringComparison.Ordinal));
        // The network was set up beside pause-init's failed start: its address is released too.
        AssertNothingLeft(f);
    }

    /// <summary>Regression (found by hostile probes): a RunPodSandbox refused for its port mappings left the pod's
    /// nacelle/pod-&lt;id&gt; cgroups in every hierarchy. Bad mappings are now refused before anything exists, and a
    /// failure after pause-init runs (here the portmap plugin's ADD) takes the pod's cgroups with it.</summary>
    [Fact]
    public async Task A_refused_or_failed_network_leaves_no_cgroup_address_or_process()
    {
        Assert.True(CniKernelScope.Available && Environment.UserName == "root");
        var bin = Directory.CreateTempSubdirectory("nacelle-failing-cni-").FullName;
        try
        {
            var portmap = Path.Combine(bin, "portmap");
            File.WriteAllText(portmap,
                "#!/bin/sh\ncat >/dev/null\n[ \"$CNI_COMMAND\" = ADD ] || exit 0\n" +
                "echo '{\"cniVersion\":\"1.0.0\",\"code\":999,\"msg\":\"portmap refuses (test)\"}'\nexit 1\n");
            File.SetUnixFileMode(portmap, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            await using var f = new Fixture(options => options with { BinDirs = [bin, .. options.BinDirs] });

            var refused = await Assert.ThrowsAsync<NacelleException>(() => f.Manager.RunAsync(f.Request("bad-port") with { PortMappings = [new CniPortMapping(70000, 80)] }));
            Assert.Equal(ErrorKind.InvalidArgument, refused.Kind);
            Assert.Contains("host_port 70000", refused.Message, StringComparison.Ordinal);
            AssertNothingLeft(f);

            var failed = await Assert.ThrowsAsync<NacelleException>(() => f.Manager.RunAsync(f.Request("failing-portmap") with { PortMappings = [new CniPortMapping(18080, 80)] }));
            Assert.Contains("portmap refuses (test)", failed.Message, StringComparison.Ordinal);
            AssertNothingLeft(f);
        }
        finally
        {
            Directory.Delete(bin, recursive: true);
        }
    }

    /// <summary>kubelet stops a pod, then removes it: the remove does not tear the network down (CNI DEL) a second time,
    /// while a remove of a pod never stopped still does.</summary>
    [Fact]
    public async Task Removing_a_stopped_pod_does_not_stop_it_again()
    {
        Assert.True(CniKernelScope.Available && Environment.UserName == "root");
        var bin = Directory.CreateTempSubdirectory("nacelle-counting-cni-").FullName;
        try
        {
            var calls = Path.Combine(bin, "calls.log");
            var loopback = Path.Combine(bin, "loopback");
            File.WriteAllText(loopback, $"#!/bin/sh\necho \"$CNI_COMMAND $CNI_CONTAINERID\" >> {calls}\nexec /usr/lib/cni/loopback\n");
            File.SetUnixFileMode(loopback, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            await using var f = new Fixture(options => options with { BinDirs = [bin, .. options.BinDirs] });

            var stopped = await f.Manager.RunAsync(f.Request("stopped-first"));
            await f.Manager.StopAsync(stopped);
            await f.Manager.RemoveAsync(stopped);
            Assert.Equal(["ADD " + stopped, "DEL " + stopped], File.ReadAllLines(calls));

            File.Delete(calls);
            var removed = await f.Manager.RunAsync(f.Request("removed-at-once"));
            await f.Manager.RemoveAsync(removed);
            Assert.Equal(["ADD " + removed, "DEL " + removed], File.ReadAllLines(calls));
            AssertNothingLeft(f);
        }
        finally
        {
            Directory.Delete(bin, recursive: true);
        }
    }

    /// <summary>Regression (found by the CRI fuzzer): kubelet names "/" as the parent when it runs without per-QoS cgroups
    /// (--cgroups-per-qos=false). Such a pod ran, but StopPodSandbox and RemovePodSandbox answered InvalidArgument ("cgroup
    /// path "/" is the root of the hierarchy") for ever: finding the cgroups made for it opened the root.</summary>
    [Fact]
    public async Task A_pod_whose_cgroup_parent_is_the_root_stops_and_is_removed_with_its_cgroups()
    {
        Assert.True(CniKernelScope.Available && Environment.UserName == "root");
        await using var f = new Fixture();
        var id = await f.Manager.RunAsync(f.Request("root-parent") with { CgroupParent = "/" });
        var pause = f.Store.GetPod(id).PauseInitPid!.Value;
        var pauseCgroup = File.ReadAllLines($"/proc/{pause}/cgroup").Single(l => l.Contains(":memory:", StringComparison.Ordinal)).Split(':')[2];
        Assert.Equal(1, pauseCgroup.Count(c => c == '/')); // right below the root

        await f.Manager.StopAsync(id);
        await f.Manager.RemoveAsync(id);
        Assert.Empty(f.Store.ListPods());
        Assert.False(Directory.Exists("/sys/fs/cgroup/memory" + pauseCgroup), $"{pauseCgroup} was left behind");
        Assert.False(Directory.Exists($"/proc/{pause}"), "pause-init outlived its pod");
    }

    private static void AssertNothingLeft(Fixture f)
    {
        Assert.Empty(f.Store.ListPods());
        foreach (var hierarchy in Directory.GetDirectories("/sys/fs/cgroup").Append("/sys/fs/cgroup/unified"))
        {
            var dir = hierarchy + f.CgroupParent;
            Assert.Empty(Directory.Exists(dir) ? Directory.GetDirectories(dir) : []);
        }

        Assert.Empty(Directory.Exists(f.Cni.IpamDir) ? Directory.GetFiles(f.Cni.IpamDir, "10.*", SearchOption.AllDirectories) : []);
        Assert.DoesNotContain(Directory.GetDirectories("/proc"), d => File.Exists(d + "/cmdline")
            && SafeRead(d + "/cmdline").Contains(Path.Combine(f.State, "pods"), StringComparison.Ordinal));
        Assert.DoesNotContain(File.ReadLines("/proc/self/mountinfo"), l => l.Contains(f.State, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_pod_in_its_own_user_namespace_holds_it_with_kubelets_mappings_pinned_until_removed()
    {
        Assert.True(CniKernelScope.Available && Environment.UserName == "root");
        await using var f = new Fixture();
        var user = UserNamespaceOption.Pod([new IdMapping(0, 196608, 65536)], [new IdMapping(0, 262144, 65536)]);
        var id = await f.Manager.RunAsync(f.Request("userns") with { NamespaceOptions = new PodNamespaceOptions(User: user) });
        var pod = f.Store.GetPod(id);
        Assert.Equal(user, pod.NamespaceOptions.User);
        var pause = pod.PauseInitPid!.Value;

        // pause-init created the namespace with exactly these maps; it runs as the mapped ids on the host.
        Assert.Equal("0 196608 65536", Map($"/proc/{pause}/uid_map"));
        Assert.Equal("0 262144 65536", Map($"/proc/{pause}/gid_map"));
        var status = File.ReadAllLines($"/proc/{pause}/status");
        Assert.StartsWith("Uid:\t196608\t", status.Single(l => l.StartsWith("Uid:", StringComparison.Ordinal)), StringComparison.Ordinal);

        // The pin is that namespace (same nsfs inode), and its other namespaces belong to it (created in one clone).
        var pin = f.Manager.NamespacePath(id, "user");
        Assert.NotNull(pin);
        Assert.Equal(Inode($"/proc/{pause}/ns/user"), Inode(pin));
        Assert.NotEqual(Inode("/proc/self/ns/user"), Inode(pin));

        await f.Manager.RemoveAsync(id);
        Assert.False(File.Exists(pin));
        Assert.DoesNotContain(File.ReadLines("/proc/self/mountinfo"), l => l.Contains(id, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_user_namespaced_pod_is_refused_before_anything_exists_when_the_handler_cannot_run_it()
    {
        Assert.True(CniKernelScope.Available && Environment.UserName == "root");
        await using var f = new Fixture();
        await using var manager = new PodManager(new PodManagerOptions
        {
            StateRoot = f.State,
            DefaultCgroupParent = f.CgroupParent,
            Handlers = Nacelle.Sandbox.Handlers.RuntimeHandlers.BuiltIn(
                new Nacelle.ContainerCore.Mounts.KernelFeatures(false, "test: no idmapped layers", true, null)),
        }, f.Store, f.Network);
        var user = UserNamespaceOption.Pod([new IdMapping(0, 196608, 65536)], [new IdMapping(0, 196608, 65536)]);
        var error = await Assert.ThrowsAsync<NacelleException>(
            () => manager.RunAsync(f.Request("refused") with { NamespaceOptions = new PodNamespaceOptions(User: user) }));
        Assert.Equal(ErrorKind.FailedPrecondition, error.Kind);
        Assert.Contains("userns_options", error.Message, StringComparison.Ordinal);
        Assert.Contains("test: no idmapped layers", error.Message, StringComparison.Ordinal);
        Assert.Empty(f.Store.ListPods());

        var unknown = await Assert.ThrowsAsync<NacelleException>(() => manager.RunAsync(f.Request("kata") with { RuntimeHandler = "kata" }));
        Assert.Equal(ErrorKind.NotFound, unknown.Kind);
        Assert.Contains("kata", unknown.Message, StringComparison.Ordinal);
        Assert.Empty(f.Store.ListPods());
    }

    private static string Map(string path) =>
        string.Join(' ', File.ReadAllText(path).Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries));

    /// <summary>The nsfs inode of a namespace: from /proc/PID/ns/*'s link text ("user:[4026531837]"), or of a pin (its
    /// bind mount shows the namespace's inode).</summary>
    private static ulong Inode(string path) => new FileInfo(path).LinkTarget is { } target
        ? ulong.Parse(target[(target.IndexOf('[') + 1)..^1], System.Globalization.CultureInfo.InvariantCulture)
        : Nacelle.ContainerCore.Interop.FileSystemCalls.Status(path)!.Value.Inode;

    private static string SafeRead(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return "";
        }
    }

    private static async Task WaitGoneAsync(int pid)
    {
        for (var i = 0; i < 100 && Directory.Exists($"/proc/{pid}"); i++)
        {
            await Task.Delay(50);
        }

        Assert.False(Directory.Exists($"/proc/{pid}"), $"process {pid} is still there");
    }
}
