using System.Globalization;
using Nacelle.ContainerCore.Cgroups;
using Nacelle.ContainerCore.Runtime;
using Nacelle.ContainerCore.Spawn;
using Nacelle.ContainerCore.Spec;

namespace Nacelle.Tests.Kernel.Containers;

/// <summary>Cgroup limits on real containers: OOM kills detected, the pids limit, stats, freeze/thaw, updates, exec.</summary>
public sealed class ContainerResourceTests
{
    [Fact]
    public async Task A_memory_limit_leads_to_a_detected_oom_kill()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        // tail buffers an endless line: it grows until the limit stops it.
        var spec = scope.Spec("tail /dev/zero");
        spec.Linux!.Resources = new SpecResources { Memory = new SpecMemory { Limit = 32 << 20, Swap = 32 << 20 } };
        var (state, _, _) = await scope.RunAsync(spec, timeout: TimeSpan.FromSeconds(60));
        Assert.Equal(ContainerStatus.Stopped, state.Status);
        Assert.True(state.OomKilled, $"exit {state.ExitCode} signal {state.ExitSignal}");
        Assert.Equal(137, state.ExitCode);
        Assert.Equal(9, state.ExitSignal);
    }

    [Fact]
    public async Task The_pids_limit_holds()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var id = ContainerTestScope.NewId();
        // The inner shell forks until the limit refuses (and then gives up); PID 1 stays to keep the container up.
        var spec = scope.Spec("sh -c 'for i in $(seq 20); do sleep 30 & done'; sleep 30");
        spec.Linux!.Resources = new SpecResources { Pids = new SpecPids { Limit = 8 } };
        using var output = new CapturedOutput();
        await scope.Runtime.CreateAsync(id, spec, scope.Root, output.Stdio);
        output.CloseWriters();
        await scope.Runtime.StartAsync(id);
        await Task.Delay(1000);
        var pids = scope.Runtime.Stats(id).Pids!;
        Assert.Equal(8UL, pids.Max);
        Assert.InRange(pids.Current, 3UL, 8UL);
        await scope.Runtime.DeleteAsync(id, force: true);
        var (_, stderr) = await output.ReadAllAsync();
        Assert.Contains("fork", stderr);
    }

    [Fact]
    public async Task Exec_joins_the_namespaces_and_cgroup_of_the_container()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var id = ContainerTestScope.NewId();
        await scope.Runtime.CreateAsync(id, scope.Spec("sleep 60"), scope.Root, SpawnStdio.Null);
        await scope.Runtime.StartAsync(id);
        var initPid = scope.Runtime.State(id).Pid;

        using var output = new CapturedOutput();
        var process = new SpecProcess
        {
            Args = ["/bin/sh", "-c", "for t in pid net ipc uts mnt; do echo \"$t=$(readlink /proc/self/ns/$t)\"; done; cat /proc/self/cgroup; echo \"host=$(hostname)\"; echo \"pid=$$\""],
            Env = ["PATH=/bin"],
            Cwd = "/tmp",
        };
        using var exec = await scope.Runtime.ExecAsync(id, process, output.Stdio);
        output.CloseWriters();
        var exit = await exec.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        var (stdout, stderr) = await output.ReadAllAsync();
        Assert.True(exit.ExitCode == 0, stderr);
        foreach (var type in new[] { "pid", "net", "ipc", "uts", "mnt" })
        {
            Assert.Contains($"{type}={new FileInfo($"/proc/{initPid}/ns/{type}").LinkTarget}", stdout);
        }

        // Every hierarchy the container's init is in, the cgroup2 one included (v1 joined by thread, cgroup2 at the clone).
        var initCgroups = File.ReadAllLines($"/proc/{initPid}/cgroup").Where(l => !l.Contains(":name=", StringComparison.Ordinal)).ToList();
        if (CgroupLayout.Detect().UnifiedMount is not null)
        {
            Assert.Contains(initCgroups, l => l.StartsWith("0::/", StringComparison.Ordinal) && l.Length > "0::/".Length);
        }
        foreach (var line in initCgroups)
        {
            Assert.Contains(line, stdout);
        }

        Assert.Contains("host=nacelle", stdout);
        Assert.DoesNotContain("pid=1\n", stdout);
        Assert.Equal(ContainerStatus.Running, scope.Runtime.State(id).Status);
    }

    [Fact]
    public async Task Stats_pause_resume_and_update()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var id = ContainerTestScope.NewId();
        await scope.Runtime.CreateAsync(id, scope.Spec("while true; do sleep 0.05; done"), scope.Root, SpawnStdio.Null);
        await scope.Runtime.StartAsync(id);
        await Task.Delay(200);

        var stats = scope.Runtime.Stats(id);
        Assert.True(stats.Memory!.Usage > 0);
        Assert.True(stats.Pids!.Current >= 1);
        Assert.True(stats.Cpu!.UsageNanoseconds > 0);

        await scope.Runtime.PauseAsync(id);
        Assert.Equal(ContainerStatus.Paused, scope.Runtime.State(id).Status);
        var frozenCpu = scope.Runtime.Stats(id).Cpu!.UsageNanoseconds;
        await Task.Delay(300);
        Assert.Equal(frozenCpu, scope.Runtime.Stats(id).Cpu!.UsageNanoseconds);
        await scope.Runtime.ResumeAsync(id);
        Assert.Equal(ContainerStatus.Running, scope.Runtime.State(id).Status);

        await scope.Runtime.UpdateResourcesAsync(id, new SpecResources { Pids = new SpecPids { Limit = 42 } });
        Assert.Equal(42UL, scope.Runtime.Stats(id).Pids!.Max);

        // sh is PID 1 of its namespace: without a handler it ignores SIGTERM, so SIGKILL ends it.
        scope.Runtime.Kill(id, 9);
        var final = await scope.Runtime.WaitAsync(id).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(137, final.ExitCode);
        Assert.Equal(ContainerStatus.Stopped, final.Status);
    }
}
