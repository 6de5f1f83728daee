using Nacelle.ContainerCore.Runtime;
using Nacelle.ContainerCore.Spawn;
using Nacelle.ContainerCore.Spec;
using Nacelle.Sandbox.Namespaces;
using Nacelle.Tests.Kernel.Containers;

namespace Nacelle.Tests.Kernel.Pods;

/// <summary>pause-init holds a pod's namespaces, reaps orphans as PID 1, exits on SIGTERM; pins outlive it.</summary>
public sealed class PauseInitKernelTests
{
    private static string Ns(string pid, string type) => new FileInfo($"/proc/{pid}/ns/{type}").LinkTarget!;

    [Fact]
    public async Task Pause_init_holds_pinned_namespaces_with_the_pod_hostname_and_sysctls_and_stops_on_sigterm()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var root = PauseSpec.PrepareRoot(Path.Combine(scope.Root, "pause-root"));
        var pins = new NamespacePins(Path.Combine(scope.Root, "ns"));
        var spec = PauseSpec.Create(root, new PodNamespaces(false, false, false, SharedPid: true), "web-0",
            new Dictionary<string, string> { ["net.ipv4.ip_unprivileged_port_start"] = "81" }, cgroupsPath: null);
        var state = await scope.Runtime.CreateAsync("pod1-pause", spec, scope.Root, SpawnStdio.Null);
        await scope.Runtime.StartAsync("pod1-pause");
        var pid = state.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture);
        try
        {
            var pinned = pins.Pin("pod1", state.Pid, ["net", "ipc", "uts", "pid"]);
            Assert.Equal(4, pinned.Count);
            Assert.NotEqual(Ns("self", "net"), Ns(pid, "net"));
            Assert.Equal("/pause", File.ReadAllText($"/proc/{pid}/cmdline").TrimEnd('\0'));

            // A container joining the pod by the pinned paths sees the pod's hostname, sysctl and PID 1.
            var probe = scope.Spec("""
                echo "host=$(hostname)"
                echo "port=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)"
                echo "init=$(cat /proc/1/cmdline)"
                (sleep 0.2 &) ; echo "orphaned=yes"
                """);
            probe.Hostname = null;
            probe.Linux!.Namespaces =
            [
                new() { Type = "network", Path = pinned["net"] }, new() { Type = "ipc", Path = pinned["ipc"] },
                new() { Type = "uts", Path = pinned["uts"] }, new() { Type = "pid", Path = $"/proc/{pid}/ns/pid" },
                new() { Type = "mount" },
            ];
            var seen = await scope.ProbeAsync(probe);
            Assert.Equal("web-0", seen["host"]);
            Assert.Equal("81", seen["port"]);
            Assert.Equal("/pause", seen["init"]);

            // The orphaned sleep was re-parented to pause-init, which reaps it: no zombie child stays behind.
            await Task.Delay(800);
            var zombies = Directory.GetDirectories("/proc").Select(Path.GetFileName)
                .Where(p => p!.All(char.IsDigit))
                .Select(p => { try { return File.ReadAllText($"/proc/{p}/stat"); } catch (IOException) { return ""; } })
                .Where(stat => stat.Length > 0)
                .Select(stat => stat[(stat.LastIndexOf(')') + 2)..].Split(' '))
                .Count(fields => fields[0] == "Z" && fields[1] == pid);
            Assert.Equal(0, zombies);

            scope.Runtime.Kill("pod1-pause", 15);
            var final = await scope.Runtime.WaitAsync("pod1-pause").WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(0, final.ExitCode);
            // The pinned network namespace outlives its holder.
            Assert.True(File.Exists(pinned["net"]));
            Assert.Contains(File.ReadLines("/proc/self/mountinfo"), l => l.Contains(pinned["net"], StringComparison.Ordinal));
        }
        finally
        {
            pins.Unpin("pod1");
        }

        Assert.False(Directory.Exists(Path.Combine(scope.Root, "ns", "pod1")));
        Assert.DoesNotContain(File.ReadLines("/proc/self/mountinfo"), l => l.Contains(Path.Combine(scope.Root, "ns"), StringComparison.Ordinal));
        pins.Unpin("pod1"); // idempotent
    }

    /// <summary>
    /// pause-init runs in every pod, so it is freestanding (no C library): a page of code and its stack. With a static
    /// glibc it had 696 kB resident and 44 kB private. A SIGCHLD without a child to reap changes nothing; SIGINT ends
    /// it with 0, as SIGTERM does (the test above).
    /// </summary>
    [Fact]
    public async Task Pause_init_costs_a_few_pages_and_exits_on_sigint()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var root = PauseSpec.PrepareRoot(Path.Combine(scope.Root, "pause-root"));
        var spec = PauseSpec.Create(root, new PodNamespaces(false, false, false, SharedPid: true), "small-0",
            new Dictionary<string, string>(), cgroupsPath: null);
        var state = await scope.Runtime.CreateAsync("pod2-pause", spec, scope.Root, SpawnStdio.Null);
        await scope.Runtime.StartAsync("pod2-pause");
        var rollup = File.ReadAllLines($"/proc/{state.Pid}/smaps_rollup")
            .Select(l => l.Split(':', 2)).Where(p => p.Length == 2 && p[1].TrimEnd().EndsWith(" kB", StringComparison.Ordinal))
            .ToDictionary(p => p[0], p => long.Parse(p[1].Trim()[..^3], System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(rollup["Rss"] <= 64, $"pause-init has {rollup["Rss"]} kB resident");
        Assert.True(rollup["Anonymous"] <= 24, $"pause-init has {rollup["Anonymous"]} kB of private memory");

        // SIGCHLD with no child exited: it reaps nothing and goes back to its wait.
        scope.Runtime.Kill("pod2-pause", 17);
        await Task.Delay(100);
        Assert.Equal(ContainerStatus.Running, scope.Runtime.State("pod2-pause").Status);

        scope.Runtime.Kill("pod2-pause", 2);
        var final = await scope.Runtime.WaitAsync("pod2-pause").WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, final.ExitCode);
        Assert.Null(final.ExitSignal);
    }

    /// <summary>The network namespace made before pause-init runs keeps its pin when pinning pause-init's namespaces
    /// fails (and their undo runs): CNI may still be setting it up, and the CNI DEL undone later needs its path.</summary>
    [Fact]
    public void A_failed_pinning_of_pause_inits_namespaces_leaves_the_network_namespace_made_first_pinned()
    {
        Assert.SkipUnless(Environment.UserName == "root", "pinning namespaces needs root");
        var root = Directory.CreateTempSubdirectory("nacelle-pins-").FullName;
        var pins = new NamespacePins(root);
        try
        {
            var net = pins.PinNewNetwork("pod2");
            // No such process: the bind mount of its uts namespace fails, and Pin undoes what it touched.
            Assert.Throws<Nacelle.Common.NacelleException>(() => pins.Pin("pod2", int.MaxValue, ["uts", "ipc"]));
            Assert.False(File.Exists(pins.PathOf("pod2", "uts")));
            Assert.True(File.Exists(net));
            Assert.Contains(File.ReadLines("/proc/self/mountinfo"), l => l.Contains(net, StringComparison.Ordinal));

            // The undo of what pause-init pinned leaves it too; its own undo removes it and the pod's directory.
            pins.Unpin("pod2", ["uts", "ipc"]);
            Assert.True(File.Exists(net));
            pins.Unpin("pod2", ["net"]);
            Assert.False(Directory.Exists(Path.Combine(root, "pod2")));
        }
        finally
        {
            pins.Unpin("pod2");
            Directory.Delete(root, recursive: true);
        }

        Assert.DoesNotContain(File.ReadLines("/proc/self/mountinfo"), l => l.Contains(root, StringComparison.Ordinal));
    }
}
