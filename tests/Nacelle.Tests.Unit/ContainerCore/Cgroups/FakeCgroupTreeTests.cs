using Nacelle.Common;
using Nacelle.ContainerCore.Cgroups;

namespace Nacelle.Tests.Unit.ContainerCore.Cgroups;

/// <summary>
/// The managers against a fake cgroupfs: plain directories and files in a temp dir (a file present = the controller
/// is available). What the managers write is read back as plain text.
/// </summary>
public sealed class FakeCgroupTreeTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("nacelle-fakecg-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static readonly string[] V2LeafFiles =
    [
        "cgroup.procs", "cgroup.events", "cgroup.freeze", "cgroup.kill", "cpu.weight", "cpu.max", "cpu.stat", "cpuset.cpus",
        "cpuset.mems", "memory.max", "memory.swap.max", "memory.low", "memory.high", "memory.current", "memory.stat",
        "memory.events", "memory.swap.current", "pids.max", "pids.current", "hugetlb.2MB.max", "io.weight", "io.max",
    ];

    // /sys/fs/cgroup (root: all controllers) -> /kubepods (cpu memory pids io hugetlb) -> /kubepods/pod1/ctr (leaf files).
    private CgroupManager FakeV2(string[]? leafFiles = null)
    {
        var mount = Path.Combine(_root, "sys/fs/cgroup");
        Write(mount, "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
        Write(mount, "cgroup.subtree_control", "");
        Write(Path.Combine(mount, "kubepods"), "cgroup.controllers", "cpu io memory hugetlb pids\n");
        Write(Path.Combine(mount, "kubepods"), "cgroup.subtree_control", "memory\n");
        Write(Path.Combine(mount, "kubepods/pod1"), "cgroup.controllers", "cpu io memory hugetlb pids\n");
        Write(Path.Combine(mount, "kubepods/pod1"), "cgroup.subtree_control", "");
        foreach (var file in leafFiles ?? V2LeafFiles)
        {
            Write(Path.Combine(mount, "kubepods/pod1/ctr"), file, "");
        }

        var layout = CgroupLayout.Parse("41 23 0:38 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n");
        return new CgroupManager(layout, "/nacelle", fakeRoot: _root);
    }

    private static void Write(string directory, string file, string text)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, file), text);
    }

    private string Read(string relative) => File.ReadAllText(Path.Combine(_root, "sys/fs/cgroup", relative));

    [Fact]
    public void V2ApplyWritesExactlyTheExpectedFiles()
    {
        var cgroup = FakeV2().Create("ctr", "/kubepods/pod1");
        Assert.True(cgroup.IsUnified);
        Assert.Equal("/kubepods/pod1/ctr", cgroup.Path);

        cgroup.Apply(new CgroupResources
        {
            CpuShares = 1024,
            CpuQuota = 50000,
            CpuPeriod = 100000,
            MemoryLimit = 64L << 20,
            MemorySwap = 96L << 20,
            MemoryReservation = 32L << 20,
            PidsLimit = 42,
            HugepageLimits = new Dictionary<string, ulong> { ["2MB"] = 4UL << 21 },
            BlkioWeight = 500,
            ThrottleReadBps = [new DeviceThrottle(8, 0, 1048576)],
            ThrottleWriteIops = [new DeviceThrottle(8, 0, 100)],
        });

        Assert.Equal("39", Read("kubepods/pod1/ctr/cpu.weight"));
        Assert.Equal("50000 100000", Read("kubepods/pod1/ctr/cpu.max"));
        Assert.Equal("67108864", Read("kubepods/pod1/ctr/memory.max"));
        Assert.Equal("33554432", Read("kubepods/pod1/ctr/memory.swap.max"));
        Assert.Equal("33554432", Read("kubepods/pod1/ctr/memory.low"));
        Assert.Equal("42", Read("kubepods/pod1/ctr/pids.max"));
        Assert.Equal("8388608", Read("kubepods/pod1/ctr/hugetlb.2MB.max"));
        Assert.Equal("default 4950", Read("kubepods/pod1/ctr/io.weight"));
        Assert.Equal("8:0 rbps=1048576 wiops=100", Read("kubepods/pod1/ctr/io.max"));
        // untouched files stay empty
        Assert.Equal("", Read("kubepods/pod1/ctr/cpuset.cpus"));
        Assert.Equal("", Read("kubepods/pod1/ctr/memory.high"));

        // controllers enabled from the root down to the parent, only those each level has and lacks
        Assert.Equal("+cpu +hugetlb +io +memory +pids", Read("cgroup.subtree_control"));
        Assert.Equal("+cpu +hugetlb +io +pids", Read("kubepods/cgroup.subtree_control"));
        Assert.Equal("+cpu +hugetlb +io +memory +pids", Read("kubepods/pod1/cgroup.subtree_control"));
        Assert.False(File.Exists(Path.Combine(_root, "sys/fs/cgroup/kubepods/pod1/ctr/cgroup.subtree_control")));
    }

    [Fact]
    public void V2UnlimitedValuesAreMax()
    {
        var cgroup = FakeV2().Create("ctr", "/kubepods/pod1");
        cgroup.Apply(new CgroupResources { CpuQuota = -1, CpuPeriod = 100000, MemoryLimit = -1, MemorySwap = -1, PidsLimit = 0 });
        Assert.Equal("max 100000", Read("kubepods/pod1/ctr/cpu.max"));
        Assert.Equal("max", Read("kubepods/pod1/ctr/memory.max"));
        Assert.Equal("max", Read("kubepods/pod1/ctr/memory.swap.max"));
        Assert.Equal("max", Read("kubepods/pod1/ctr/pids.max"));
    }

    [Fact]
    public void V2UnifiedValuesLandVerbatim()
    {
        var cgroup = FakeV2().Create("ctr", "/kubepods/pod1");
        cgroup.Apply(new CgroupResources
        {
            Unified = new Dictionary<string, string> { ["memory.high"] = "123456789", ["cpu.weight"] = "77" },
        });
        Assert.Equal("123456789", Read("kubepods/pod1/ctr/memory.high"));
        Assert.Equal("77", Read("kubepods/pod1/ctr/cpu.weight"));
        Assert.Equal("+cpu +memory", Read("cgroup.subtree_control"));
    }

    [Fact]
    public void V2RefusedUnifiedKeyTouchesNothing()
    {
        var cgroup = FakeV2().Create("ctr", "/kubepods/pod1");
        var error = Assert.Throws<NacelleException>(() => cgroup.Apply(new CgroupResources
        {
            PidsLimit = 5,
            Unified = new Dictionary<string, string> { ["../../memory.max"] = "1" },
        }));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains("../../memory.max", error.Message, StringComparison.Ordinal);
        Assert.Equal("", Read("kubepods/pod1/ctr/pids.max"));
        Assert.Equal("", Read("cgroup.subtree_control"));
    }

    [Fact]
    public void V2MissingControllerFileIsRefusedNamingTheField()
    {
        var cgroup = FakeV2(["cgroup.procs", "memory.max"]).Create("ctr", "/kubepods/pod1");
        var error = Assert.Throws<NacelleException>(() => cgroup.Apply(new CgroupResources { PidsLimit = 5 }));
        Assert.Equal(ErrorKind.FailedPrecondition, error.Kind);
        Assert.Contains("PidsLimit needs pids.max", error.Message, StringComparison.Ordinal);

        var unified = Assert.Throws<NacelleException>(() => cgroup.Apply(new CgroupResources
        {
            Unified = new Dictionary<string, string> { ["memory.oom.group"] = "1" },
        }));
        Assert.Contains("Unified[\"memory.oom.group\"]", unified.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void V2NoSwapNeedsNoSwapFileButSwapDoes()
    {
        var cgroup = FakeV2(["cgroup.procs", "memory.max"]).Create("ctr", "/kubepods/pod1");
        cgroup.Apply(new CgroupResources { MemoryLimit = 1 << 20, MemorySwap = 1 << 20 });
        Assert.Equal("1048576", Read("kubepods/pod1/ctr/memory.max"));
        Assert.False(File.Exists(Path.Combine(_root, "sys/fs/cgroup/kubepods/pod1/ctr/memory.swap.max")));

        var error = Assert.Throws<NacelleException>(() => cgroup.Apply(new CgroupResources { MemoryLimit = 1 << 20, MemorySwap = 2 << 20 }));
        Assert.Equal(ErrorKind.FailedPrecondition, error.Kind);
        Assert.Contains("MemorySwap needs memory.swap.max", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void V2DeviceRulesAreNotSilentlyIgnored()
    {
        // a fake tree is no cgroup2 directory: the eBPF attach must fail loudly, naming Devices
        var cgroup = FakeV2().Create("ctr", "/kubepods/pod1");
        var error = Assert.Throws<NacelleException>(() => cgroup.Apply(new CgroupResources
        {
            Devices = [new DeviceRule(false, 'a', -1, -1, "rwm")],
        }));
        Assert.Equal(ErrorKind.Internal, error.Kind);
        Assert.Contains("Devices", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void V2StatsParseTheKernelFormats()
    {
        var cgroup = FakeV2().Create("ctr", "/kubepods/pod1");
        var dir = Path.Combine(_root, "sys/fs/cgroup/kubepods/pod1/ctr");
        Write(dir, "cpu.stat",
            "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\ncore_sched.force_idle_usec 0\nnr_periods 10\nnr_throttled 3\nthrottled_usec 7000\nnr_bursts 0\nburst_usec 0\n");
        Write(dir, "memory.current", "10485760\n");
        Write(dir, "memory.stat", "anon 6291456\nfile 4194304\nkernel 12288\nactive_file 1048576\ninactive_file 3145728\n");
        Write(dir, "memory.swap.current", "4096\n");
        Write(dir, "memory.max", "max\n");
        Write(dir, "memory.events", "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n");
        Write(dir, "pids.current", "3\n");
        Write(dir, "pids.max", "64\n");

        var stats = cgroup.Stats();
        Assert.Equal(new CgroupCpuStats(2_500_000, 2_000_000, 500_000, 10, 3, 7_000_000), stats.Cpu);
        Assert.Equal(new CgroupMemoryStats(10485760, 10485760 - 3145728, 6291456, 4194304, 4096, null), stats.Memory);
        Assert.Equal(new CgroupPidsStats(3, 64), stats.Pids);
        Assert.Equal(new CgroupOomStatus(2, 1, false), stats.Oom);
        Assert.Equal(new CgroupOomStatus(2, 1, false), cgroup.OomKills());
    }

    [Fact]
    public void V2UsageReadsOnlyWhatCriStatsReport()
    {
        var cgroup = FakeV2().Create("ctr", "/kubepods/pod1");
        var dir = Path.Combine(_root, "sys/fs/cgroup/kubepods/pod1/ctr");
        Write(dir, "cpu.stat", "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\nnr_periods 10\n");
        Write(dir, "memory.current", "10485760\n");
        Write(dir, "memory.stat", "anon 6291456\nfile 4194304\ninactive_file 3145728\n");
        Write(dir, "memory.swap.current", "4096\n");
        Write(dir, "memory.max", "20971520\n");
        Write(dir, "pids.current", "3\n");
        // Files CRI stats do not need are not read: unparsable ones would make Stats() fail.
        Write(dir, "pids.max", "not a number\n");
        Write(dir, "memory.events", "");

        var memory = new CgroupMemoryStats(10485760, 10485760 - 3145728, 6291456, 4194304, 4096, 20971520);
        Assert.Equal(new CgroupUsage(2_500_000, memory, 3), cgroup.Usage(withProcessCount: true));
        Assert.Equal(new CgroupUsage(2_500_000, memory, null), cgroup.Usage(withProcessCount: false));
        Assert.Throws<NacelleException>(() => cgroup.Stats());
    }

    [Fact]
    public void V2UsageIsNullWhereAControllerFileIsMissing()
    {
        var cgroup = FakeV2(["cgroup.procs", "cgroup.events"]).Create("ctr", "/kubepods/pod1");
        Assert.Equal(new CgroupUsage(null, null, null), cgroup.Usage(withProcessCount: true));
    }

    [Fact]
    public void V2ProcessesAndAddProcess()
    {
        var cgroup = FakeV2().Create("ctr", "/kubepods/pod1");
        cgroup.AddProcess(4242);
        Assert.Equal("4242", Read("kubepods/pod1/ctr/cgroup.procs"));
        Assert.Equal([4242], cgroup.Processes());
    }

    [Fact]
    public async Task V2KillWritesCgroupKillAndRemoveIsIdempotent()
    {
        var manager = FakeV2(["cgroup.kill"]);
        var cgroup = manager.Create("ctr", "/kubepods/pod1");
        await cgroup.KillAsync();
        Assert.Equal("1", Read("kubepods/pod1/ctr/cgroup.kill"));

        File.Delete(Path.Combine(_root, "sys/fs/cgroup/kubepods/pod1/ctr/cgroup.kill")); // a real cgroup dir is empty to rmdir
        await cgroup.RemoveAsync();
        Assert.False(Directory.Exists(Path.Combine(_root, "sys/fs/cgroup/kubepods/pod1/ctr")));
        await cgroup.RemoveAsync();
        Assert.True(Directory.Exists(Path.Combine(_root, "sys/fs/cgroup/kubepods/pod1")));
    }

    [Fact]
    public void CreateUsesTheDefaultParentAndOpensTheDirectory()
    {
        var cgroup = FakeV2().Create("abc");
        Assert.Equal("/nacelle/abc", cgroup.Path);
        Assert.True(Directory.Exists(Path.Combine(_root, "sys/fs/cgroup/nacelle/abc")));
        using var handle = cgroup.OpenDirectory();
        Assert.False(handle.IsInvalid);
    }

    [Theory]
    [InlineData("../escape", null)]
    [InlineData("a/../../escape", null)]
    [InlineData("/absolute", null)]
    [InlineData("", null)]
    [InlineData("ok", "/kubepods/../..")]
    [InlineData("./x", null)]
    public void CreateRefusesNamesThatLeaveTheHierarchy(string name, string? parent)
    {
        var manager = FakeV2();
        var before = Directory.GetDirectories(_root, "*", SearchOption.AllDirectories).Length;
        var error = Assert.Throws<NacelleException>(() => manager.Create(name, parent));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Equal(before, Directory.GetDirectories(_root, "*", SearchOption.AllDirectories).Length);
        Assert.False(Directory.Exists(Path.Combine(_root, "sys/fs/escape")));
    }

    // v1: one mount per controller under <root>/v1/<controller>.
    /// <summary>
    /// A pod's cgroup tree also goes from the named hierarchy (name=systemd), where only runc, as a RuntimeClass handler,
    /// makes cgroups: its containers' and their pod's parent, which removal left behind before (68 empty pod cgroups
    /// after one critest run under -runtime-handler=runc).
    /// </summary>
    [Fact]
    public async Task Removing_a_tree_removes_it_from_the_named_hierarchy_too()
    {
        var mountinfo = "32 31 0:33 / /v1/memory rw,relatime - cgroup cgroup rw,memory\n" +
                        "33 31 0:34 / /v1/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n";
        var layout = CgroupLayout.Parse(mountinfo);
        Assert.Equal(["/v1/systemd"], layout.V1NamedHierarchies);
        Assert.Equal(["memory"], layout.V1Controllers.Keys);
        var manager = new CgroupManager(layout, "/nacelle", fakeRoot: _root);
        Directory.CreateDirectory(Path.Combine(_root, "v1/memory/nacelle/pod-a"));
        Directory.CreateDirectory(Path.Combine(_root, "v1/systemd/nacelle/pod-a/ctr-1"));

        Assert.Equal(["/nacelle/pod-a/ctr-1"], manager.Open("/nacelle/pod-a").ChildPaths());
        await manager.RemoveTreeAsync("/nacelle/pod-a");

        Assert.False(Directory.Exists(Path.Combine(_root, "v1/memory/nacelle/pod-a")));
        Assert.False(Directory.Exists(Path.Combine(_root, "v1/systemd/nacelle/pod-a")));
        Assert.True(Directory.Exists(Path.Combine(_root, "v1/systemd/nacelle")));
    }

    private CgroupManager FakeV1(bool hybrid = false)
    {
        var mountinfo = new System.Text.StringBuilder();
        var id = 32;
        foreach (var controller in new[] { "cpu", "cpuacct", "cpuset", "memory", "pids", "freezer", "devices", "blkio" })
        {
            mountinfo.Append($"{id++} 31 0:{id} / /v1/{controller} rw,relatime - cgroup cgroup rw,{controller}\n");
            Directory.CreateDirectory(Path.Combine(_root, "v1", controller));
        }

        if (hybrid)
        {
            mountinfo.Append($"{id} 31 0:{id} / /v2 rw,relatime - cgroup2 cgroup2 rw\n");
        }

        File.WriteAllText(Path.Combine(_root, "v1/cpuset/cpuset.cpus"), "0-3\n");
        File.WriteAllText(Path.Combine(_root, "v1/cpuset/cpuset.mems"), "0\n");
        return new CgroupManager(CgroupLayout.Parse(mountinfo.ToString()), "/nacelle", fakeRoot: _root);
    }

    private void V1Files(string controller, string path, params string[] files)
    {
        foreach (var file in files)
        {
            Write(Path.Combine(_root, "v1", controller) + path, file, "");
        }
    }

    [Fact]
    public void V1CreateMakesEveryHierarchyAndTheHybridTwin()
    {
        var manager = FakeV1(hybrid: true);
        Assert.False(manager.IsUnified);
        var cgroup = (V1Cgroup)manager.Create("c1");
        foreach (var controller in new[] { "cpu", "cpuacct", "cpuset", "memory", "pids", "freezer", "devices", "blkio" })
        {
            Assert.True(Directory.Exists(Path.Combine(_root, "v1", controller, "nacelle/c1")), controller);
        }

        Assert.True(Directory.Exists(Path.Combine(_root, "v2/nacelle/c1")));
        Assert.Equal(Path.Combine(_root, "v2/nacelle/c1"), cgroup.UnifiedDirectory);
        Assert.Equal(8, cgroup.Directories.Count);
    }

    [Fact]
    public void V1ApplyWritesTheV1Files()
    {
        var manager = FakeV1();
        V1Files("cpu", "/nacelle/c1", "cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us");
        V1Files("memory", "/nacelle/c1", "memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes",
            "memory.swappiness", "memory.oom_control");
        V1Files("pids", "/nacelle/c1", "pids.max");
        V1Files("devices", "/nacelle/c1", "devices.allow", "devices.deny");
        V1Files("blkio", "/nacelle/c1", "blkio.weight", "blkio.throttle.read_bps_device");
        var cgroup = manager.Create("c1");
        cgroup.Apply(new CgroupResources
        {
            CpuShares = 512, CpuQuota = 20000, CpuPeriod = 100000, MemoryLimit = 8 << 20, MemorySwap = 16 << 20,
            MemoryReservation = 4 << 20, MemorySwappiness = 0, DisableOomKiller = true, PidsLimit = 10, BlkioWeight = 300,
            ThrottleReadBps = [new DeviceThrottle(8, 16, 5000)],
            Devices = [new DeviceRule(false, 'a', -1, -1, "rwm"), new DeviceRule(true, 'c', 1, 3, "rwm")],
        });

        string V1(string controller, string file) => File.ReadAllText(Path.Combine(_root, "v1", controller, "nacelle/c1", file));
        Assert.Equal("512", V1("cpu", "cpu.shares"));
        Assert.Equal("100000", V1("cpu", "cpu.cfs_period_us"));
        Assert.Equal("20000", V1("cpu", "cpu.cfs_quota_us"));
        Assert.Equal("8388608", V1("memory", "memory.limit_in_bytes"));
        Assert.Equal("16777216", V1("memory", "memory.memsw.limit_in_bytes"));
        Assert.Equal("4194304", V1("memory", "memory.soft_limit_in_bytes"));
        Assert.Equal("0", V1("memory", "memory.swappiness"));
        Assert.Equal("1", V1("memory", "memory.oom_control"));
        Assert.Equal("10", V1("pids", "pids.max"));
        Assert.Equal("300", V1("blkio", "blkio.weight"));
        Assert.Equal("8:16 5000", V1("blkio", "blkio.throttle.read_bps_device"));
        Assert.Equal("a *:* rwm", V1("devices", "devices.deny"));
        Assert.Equal("c 1:3 rwm", V1("devices", "devices.allow"));
    }

    [Fact]
    public void V1RefusesUnifiedNamingTheKey()
    {
        var cgroup = FakeV1().Create("c1");
        var error = Assert.Throws<NacelleException>(() => cgroup.Apply(new CgroupResources
        {
            Unified = new Dictionary<string, string> { ["memory.high"] = "1000" },
        }));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains("memory.high", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void V1StatsParseTheKernelFormats()
    {
        var manager = FakeV1();
        var cgroup = manager.Create("c1");
        void Put(string controller, string file, string text) => Write(Path.Combine(_root, "v1", controller, "nacelle/c1"), file, text);
        Put("cpuacct", "cpuacct.usage", "900000000\n");
        Put("cpuacct", "cpuacct.usage_user", "600000000\n");
        Put("cpuacct", "cpuacct.usage_sys", "300000000\n");
        Put("cpu", "cpu.stat", "nr_periods 20\nnr_throttled 4\nthrottled_time 123456\nnr_bursts 0\nburst_time 0\n");
        Put("memory", "memory.usage_in_bytes", "8388608\n");
        Put("memory", "memory.limit_in_bytes", "9223372036854771712\n");
        Put("memory", "memory.stat", "cache 1\nrss 2\ntotal_cache 2097152\ntotal_rss 5242880\ntotal_swap 0\ntotal_inactive_file 1048576\n");
        Put("memory", "memory.oom_control", "oom_kill_disable 0\nunder_oom 1\noom_kill 3\n");
        Put("pids", "pids.current", "2\n");
        Put("pids", "pids.max", "max\n");

        var stats = cgroup.Stats();
        Assert.Equal(new CgroupCpuStats(900000000, 600000000, 300000000, 20, 4, 123456), stats.Cpu);
        Assert.Equal(new CgroupMemoryStats(8388608, 8388608 - 1048576, 5242880, 2097152, 0, null), stats.Memory);
        Assert.Equal(new CgroupPidsStats(2, null), stats.Pids);
        Assert.Equal(new CgroupOomStatus(null, 3, true), stats.Oom);
    }

    [Fact]
    public void V1UsageReadsOnlyWhatCriStatsReport()
    {
        var cgroup = FakeV1().Create("c1");
        void Put(string controller, string file, string text) => Write(Path.Combine(_root, "v1", controller, "nacelle/c1"), file, text);
        Put("cpuacct", "cpuacct.usage", "900000000\n");
        Put("memory", "memory.usage_in_bytes", "8388608\n");
        Put("memory", "memory.limit_in_bytes", "16777216\n");
        // A kernel's memory.stat is about 1.5 KB; one longer than the first 4 KB read buffer is read whole.
        var padding = string.Concat(Enumerable.Range(0, 300).Select(i => $"padding_key_{i} {i}\n"));
        Put("memory", "memory.stat", padding + "total_cache 2097152\ntotal_rss 5242880\ntotal_swap 4096\ntotal_inactive_file 1048576\n");
        Put("pids", "pids.current", "2\n");
        // Files CRI stats do not need are not read: unparsable ones would make Stats() fail.
        Put("cpuacct", "cpuacct.usage_user", "garbage\n");
        Put("pids", "pids.max", "garbage\n");

        var memory = new CgroupMemoryStats(8388608, 8388608 - 1048576, 5242880, 2097152, 4096, 16777216);
        Assert.Equal(new CgroupUsage(900000000, memory, 2), cgroup.Usage(withProcessCount: true));
        Assert.Equal(new CgroupUsage(900000000, memory, null), cgroup.Usage(withProcessCount: false));
        Assert.Throws<NacelleException>(() => cgroup.Stats());
    }

    [Fact]
    public void V1UsageOfAMissingCgroupHasNoNumbers()
    {
        var cgroup = FakeV1().Open("/nacelle/never-created");
        Assert.Equal(new CgroupUsage(null, null, null), cgroup.Usage(withProcessCount: true));
    }
}
