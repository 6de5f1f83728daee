using System.Diagnostics;
using Nacelle.Common;
using Nacelle.ContainerCore.Cgroups;

namespace Nacelle.Tests.Kernel.Cgroups;

/// <summary>The v1 manager against this machine's real v1 hierarchies (root). Every test works under its own parent.</summary>
public sealed class V1CgroupKernelTests
{
    private static string Kernel(V1Cgroup cgroup, string controller, string file) =>
        File.ReadAllText(Path.Combine(cgroup.DirectoryOf(controller)!, file)).Trim();

    /// <summary>systemd removes a scope once its last process is gone; a stop that had just read the scope's cgroup.procs
    /// path got ENODEV from the read and answered Internal ("No such device", SystemdCgroupDriverTests in CI). A cgroup
    /// removed between the open and the read holds no process. This races reads with removals until both have run a
    /// few thousand times.</summary>
    [Fact]
    public async Task Files_of_a_cgroup_removed_while_they_are_read_are_missing_not_an_error()
    {
        await using var scope = new CgroupTestScope();
        Assert.SkipUnless(scope.HasV1, "this node has no cgroup v1 hierarchies");
        var cgroup = (V1Cgroup)scope.Create("vanishing");
        // pids: cgroup.procs (the process list); freezer: freezer.state, a control file read whole as text.
        string[] directories = [cgroup.DirectoryOf("pids")!, .. cgroup.DirectoryOf("freezer") is { } freezer ? [freezer] : Array.Empty<string>()];
        using var stop = new CancellationTokenSource();
        var churn = Task.Run(() =>
        {
            for (var i = 0; i < 20_000 && !stop.IsCancellationRequested; i++)
            {
                foreach (var directory in directories)
                {
                    Directory.Delete(directory);
                    Directory.CreateDirectory(directory);
                }
            }
        });
        var reads = 0;
        try
        {
            while (!churn.IsCompleted)
            {
                Assert.Empty(cgroup.Processes());
                Assert.True(cgroup.FreezerState() is null or "THAWED");
                reads++;
            }
        }
        finally
        {
            await stop.CancelAsync();
            await churn.ContinueWith(_ => { }, TaskScheduler.Default);
            foreach (var directory in directories)
            {
                Directory.CreateDirectory(directory);
            }
        }

        await churn;
        Assert.True(reads > 1000, $"only {reads} reads raced the removals");
    }

    [Fact]
    public async Task ApplyWritesLimitsTheKernelReportsBack()
    {
        await using var scope = new CgroupTestScope();
        Assert.SkipUnless(scope.HasV1, "this node has no cgroup v1 hierarchies");

        var cgroup = (V1Cgroup)scope.Create("limits");
        cgroup.Apply(new CgroupResources
        {
            CpuShares = 512,
            CpuQuota = 20000,
            CpuPeriod = 100000,
            CpusetCpus = "0",
            CpusetMems = "0",
            MemoryLimit = 64L << 20,
            MemorySwap = 64L << 20,
            MemoryReservation = 32L << 20,
            MemorySwappiness = 10,
            PidsLimit = 50,
            Devices = [new DeviceRule(false, 'a', -1, -1, "rwm"), new DeviceRule(true, 'c', 1, 3, "rwm"), new DeviceRule(true, 'c', 1, 5, "r")],
        });

        Assert.Equal("512", Kernel(cgroup, "cpu", "cpu.shares"));
        Assert.Equal("20000", Kernel(cgroup, "cpu", "cpu.cfs_quota_us"));
        Assert.Equal("100000", Kernel(cgroup, "cpu", "cpu.cfs_period_us"));
        Assert.Equal("0", Kernel(cgroup, "cpuset", "cpuset.cpus"));
        Assert.Equal("67108864", Kernel(cgroup, "memory", "memory.limit_in_bytes"));
        Assert.Equal("67108864", Kernel(cgroup, "memory", "memory.memsw.limit_in_bytes"));
        Assert.Equal("33554432", Kernel(cgroup, "memory", "memory.soft_limit_in_bytes"));
        Assert.Equal("10", Kernel(cgroup, "memory", "memory.swappiness"));
        Assert.Equal("50", Kernel(cgroup, "pids", "pids.max"));
        Assert.Equal("c 1:3 rwm\nc 1:5 r", Kernel(cgroup, "devices", "devices.list"));

        // raising the limit above the old memsw needs memsw first: the manager orders the writes
        cgroup.Apply(new CgroupResources { MemoryLimit = 256L << 20, MemorySwap = 256L << 20, CpuQuota = -1, PidsLimit = -1 });
        Assert.Equal("268435456", Kernel(cgroup, "memory", "memory.limit_in_bytes"));
        Assert.Equal("268435456", Kernel(cgroup, "memory", "memory.memsw.limit_in_bytes"));
        Assert.Equal("-1", Kernel(cgroup, "cpu", "cpu.cfs_quota_us"));
        Assert.Equal("max", Kernel(cgroup, "pids", "pids.max"));

        // the kernel refuses what validation cannot know: a CPU this machine does not have
        var error = Assert.Throws<NacelleException>(() => cgroup.Apply(new CgroupResources { CpusetCpus = "4000" }));
        Assert.Equal(ErrorKind.Internal, error.Kind);
        Assert.Contains("cpuset.cpus", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ProcessesStatsAndRemove()
    {
        await using var scope = new CgroupTestScope();
        Assert.SkipUnless(scope.HasV1, "this node has no cgroup v1 hierarchies");

        var cgroup = (V1Cgroup)scope.Create("stats");
        var sleeper = scope.StartIn(cgroup, "exec /bin/sleep 30");
        foreach (var directory in cgroup.Directories)
        {
            Assert.Contains(sleeper.Id.ToString(System.Globalization.CultureInfo.InvariantCulture),
                File.ReadAllText(Path.Combine(directory, "cgroup.procs")).Split('\n'));
        }

        Assert.Equal([sleeper.Id], cgroup.Processes());
        await Task.Delay(100);
        var stats = cgroup.Stats();
        Assert.Equal(1UL, stats.Pids!.Current);
        Assert.True(stats.Memory!.Usage > 0, "memory usage is 0");
        Assert.True(stats.Cpu!.UsageNanoseconds > 0, "cpu usage is 0");
        Assert.Null(stats.Memory.Limit);
        Assert.Equal(0UL, stats.Oom!.OomKills);

        sleeper.Kill();
        await sleeper.WaitForExitAsync();
        await cgroup.RemoveAsync();
        foreach (var directory in cgroup.Directories.Append(cgroup.UnifiedDirectory).OfType<string>())
        {
            Assert.False(Directory.Exists(directory), directory);
        }

        await cgroup.RemoveAsync(); // idempotent
    }

    [Fact]
    public async Task NestedLevelsInheritCpusetSoProcessesCanJoin()
    {
        await using var scope = new CgroupTestScope();
        Assert.SkipUnless(scope.HasV1, "this node has no cgroup v1 hierarchies");

        scope.Create("pod");
        var cgroup = (V1Cgroup)scope.Create("pod/ctr");
        Assert.Equal(scope.Parent + "/pod/ctr", cgroup.Path);
        var rootCpus = File.ReadAllText(Path.Combine(scope.Layout.V1Controllers["cpuset"], "cpuset.cpus")).Trim();
        Assert.Equal(rootCpus, Kernel(cgroup, "cpuset", "cpuset.cpus"));
        Assert.NotEqual(string.Empty, Kernel(cgroup, "cpuset", "cpuset.mems"));

        var sleeper = scope.StartIn(cgroup, "exec /bin/sleep 30");
        Assert.Equal([sleeper.Id], cgroup.Processes());
        var selfCgroup = File.ReadAllText($"/proc/{sleeper.Id}/cgroup");
        Assert.Contains($":cpuset:{scope.Parent}/pod/ctr\n", selfCgroup, StringComparison.Ordinal);
        Assert.Contains($":memory:{scope.Parent}/pod/ctr\n", selfCgroup, StringComparison.Ordinal);
    }

    /// <summary>Regression (critest, two pods created at once on a fresh node): a level another create had just made was
    /// taken as ready although its maker had not written its cpus and mems yet; the pod level below it copied the empty
    /// values and pause-init could not join it (ENOSPC).</summary>
    [Fact]
    public async Task ALevelWhoseMakerHasNotFilledItYetIsFilledBeforeALevelBelowCopiesIt()
    {
        await using var scope = new CgroupTestScope();
        Assert.SkipUnless(scope.HasV1, "this node has no cgroup v1 hierarchies");

        scope.Create("node");
        // What the racing create leaves for a moment: the directory, its cpuset files empty as mkdir makes them.
        var raced = Path.Combine(scope.Layout.V1Controllers["cpuset"] + scope.Parent, "node", "pod");
        Directory.CreateDirectory(raced);
        Assert.Equal(string.Empty, File.ReadAllText(Path.Combine(raced, "cpuset.cpus")).Trim());

        // The create that finds the level, then the one below it (the scope removes both).
        scope.Create("node/pod");
        var cgroup = (V1Cgroup)scope.Create("node/pod/ctr");
        var rootCpus = File.ReadAllText(Path.Combine(scope.Layout.V1Controllers["cpuset"], "cpuset.cpus")).Trim();
        Assert.Equal(rootCpus, File.ReadAllText(Path.Combine(raced, "cpuset.cpus")).Trim());
        Assert.Equal(rootCpus, Kernel(cgroup, "cpuset", "cpuset.cpus"));
        Assert.NotEqual(string.Empty, Kernel(cgroup, "cpuset", "cpuset.mems"));
        var sleeper = scope.StartIn(cgroup, "exec /bin/sleep 30");
        Assert.Equal([sleeper.Id], cgroup.Processes());
    }

    [Fact]
    public async Task FreezeStopsCpuAndThawResumesIt()
    {
        await using var scope = new CgroupTestScope();
        Assert.SkipUnless(scope.HasV1, "this node has no cgroup v1 hierarchies");

        var cgroup = (V1Cgroup)scope.Create("freeze");
        scope.StartIn(cgroup, "while :; do :; done");
        await Task.Delay(100);

        await cgroup.FreezeAsync();
        Assert.Equal("FROZEN", cgroup.FreezerState());
        var frozenUsage = cgroup.Stats().Cpu!.UsageNanoseconds;
        await Task.Delay(300);
        Assert.Equal(frozenUsage, cgroup.Stats().Cpu!.UsageNanoseconds);

        await cgroup.ThawAsync();
        Assert.Equal("THAWED", cgroup.FreezerState());
        // Running again: its CPU time grows (50 ms of it; on a loaded machine that takes a while, so up to 10 s).
        for (var i = 0; i < 100 && cgroup.Stats().Cpu!.UsageNanoseconds <= frozenUsage + 50_000_000; i++)
        {
            await Task.Delay(100);
        }

        Assert.True(cgroup.Stats().Cpu!.UsageNanoseconds > frozenUsage + 50_000_000, "a thawed busy loop used less than 50 ms of CPU in 10 s");
    }

    [Fact]
    public async Task PidsLimitStopsForks()
    {
        await using var scope = new CgroupTestScope();
        Assert.SkipUnless(scope.HasV1, "this node has no cgroup v1 hierarchies");

        var cgroup = scope.Create("pids");
        cgroup.Apply(new CgroupResources { PidsLimit = 1 });
        var limited = scope.StartIn(cgroup, "/bin/echo forked-ok");
        var limitedOut = await limited.StandardOutput.ReadToEndAsync();
        await limited.WaitForExitAsync();
        Assert.DoesNotContain("forked-ok", limitedOut, StringComparison.Ordinal);
        Assert.NotEqual(0, limited.ExitCode);

        cgroup.Apply(new CgroupResources { PidsLimit = 10 });
        var allowed = scope.StartIn(cgroup, "/bin/echo forked-ok");
        var allowedOut = await allowed.StandardOutput.ReadToEndAsync();
        await allowed.WaitForExitAsync();
        Assert.Contains("forked-ok", allowedOut, StringComparison.Ordinal);
        Assert.Equal(0, allowed.ExitCode);
    }

    [Fact]
    public async Task MemoryLimitLeadsToAnOomKillThatIsReported()
    {
        await using var scope = new CgroupTestScope();
        Assert.SkipUnless(scope.HasV1, "this node has no cgroup v1 hierarchies");

        var cgroup = scope.Create("oom");
        cgroup.Apply(new CgroupResources { MemoryLimit = 32L << 20, MemorySwap = 32L << 20 });
        Assert.Equal(0UL, cgroup.OomKills().OomKills);

        var hog = scope.StartIn(cgroup, "exec /usr/bin/python3 -c 'b = bytearray(200 * 1024 * 1024); print(len(b))'");
        var output = await hog.StandardOutput.ReadToEndAsync();
        Assert.True(hog.WaitForExit(30000));
        Assert.Equal(137, hog.ExitCode); // SIGKILL from the OOM killer
        Assert.Equal(string.Empty, output);
        Assert.True(cgroup.OomKills().OomKills >= 1, "oom_kill did not count the kill");
        Assert.False(cgroup.OomKills().UnderOom);
        Assert.Equal(33554432UL, cgroup.Stats().Memory!.Limit);
    }

    [Fact]
    public async Task DisabledOomKillerShowsUnderOomAndKillStillWorks()
    {
        await using var scope = new CgroupTestScope();
        Assert.SkipUnless(scope.HasV1, "this node has no cgroup v1 hierarchies");

        var cgroup = scope.Create("underoom");
        cgroup.Apply(new CgroupResources { MemoryLimit = 32L << 20, MemorySwap = 32L << 20, DisableOomKiller = true });
        var hog = scope.StartIn(cgroup, "exec /usr/bin/python3 -c 'b = bytearray(200 * 1024 * 1024); print(len(b))'");
        var waited = Stopwatch.StartNew();
        while (!cgroup.OomKills().UnderOom && waited.Elapsed < TimeSpan.FromSeconds(20))
        {
            await Task.Delay(20);
        }

        Assert.True(cgroup.OomKills().UnderOom, "the hog never waited in OOM");
        Assert.Equal(0UL, cgroup.OomKills().OomKills);
        Assert.False(hog.HasExited);

        await cgroup.KillAsync();
        Assert.True(hog.WaitForExit(5000));
        Assert.Equal(137, hog.ExitCode);
        Assert.Empty(cgroup.Processes());
    }

    [Fact]
    public async Task KillKillsEverything()
    {
        await using var scope = new CgroupTestScope();
        Assert.SkipUnless(scope.HasV1, "this node has no cgroup v1 hierarchies");

        var cgroup = scope.Create("kill");
        var processes = new List<Process>
        {
            scope.StartIn(cgroup, "exec /bin/sleep 30"),
            scope.StartIn(cgroup, "/bin/sleep 30 & /bin/sleep 30 & wait"),
        };
        await Task.Delay(200);
        Assert.True(cgroup.Processes().Count >= 4, $"expected 4 processes, found {cgroup.Processes().Count}");

        await cgroup.KillAsync();
        foreach (var process in processes)
        {
            Assert.True(process.WaitForExit(5000));
            Assert.Equal(137, process.ExitCode);
        }

        Assert.Empty(cgroup.Processes());
        Assert.Equal("THAWED", ((V1Cgroup)cgroup).FreezerState());
        await cgroup.RemoveAsync();
        Assert.All(((V1Cgroup)cgroup).Directories, d => Assert.False(Directory.Exists(d), d));
    }

    [Fact]
    public async Task RemoveWaitsOutDrainingProcessesAndRefusesEscapes()
    {
        await using var scope = new CgroupTestScope();
        Assert.SkipUnless(scope.HasV1, "this node has no cgroup v1 hierarchies");

        var escape = Assert.Throws<NacelleException>(() => scope.Manager.Create("../../etc"));
        Assert.Equal(ErrorKind.InvalidArgument, escape.Kind);

        var cgroup = scope.Create("drain");
        var sleeper = scope.StartIn(cgroup, "exec /bin/sleep 30");
        // kill shortly after Remove starts: the first rmdir sees EBUSY, a retry succeeds
        var remove = cgroup.RemoveAsync();
        await Task.Delay(50);
        sleeper.Kill();
        await remove;
        Assert.All(((V1Cgroup)cgroup).Directories, d => Assert.False(Directory.Exists(d), d));
    }
}
