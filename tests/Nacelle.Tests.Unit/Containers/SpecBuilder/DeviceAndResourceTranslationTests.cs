using Nacelle.CriServer.Services.Containers;
using Nacelle.Sandbox.Containers.Spec;
using Runtime.V1;
using static Nacelle.Tests.Unit.Containers.SpecBuilder.Fx;

namespace Nacelle.Tests.Unit.Containers.SpecBuilder;

public sealed class DeviceAndResourceTranslationTests
{
    private static FakeHost HostWithGpu()
    {
        var host = new FakeHost();
        host.Devices["/dev/nvidia0"] = new HostDevice("/dev/nvidia0", 'c', 195, 0, 0x1B6, 0, 0);
        host.Devices["/dev/sdb"] = new HostDevice("/dev/sdb", 'b', 8, 16, 0x1B0, 0, 6);
        return host;
    }

    [Fact]
    public void DefaultDevicesAndTheStandardAllowList()
    {
        var spec = Spec();
        Assert.Equal(
            ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"],
            spec.Linux!.Devices.Select(d => d.Path));
        Assert.All(spec.Linux.Devices, d => Assert.Equal(0x1B6u, d.FileMode));

        var rules = spec.Linux.Resources!.Devices;
        Assert.False(rules[0].Allow); // deny everything first
        Assert.Null(rules[0].Type);
        Assert.Equal("rwm", rules[0].Access);
        var allowed = rules.Skip(1).Where(r => r.Access == "rwm").Select(r => (r.Type, r.Major, r.Minor)).ToList();
        Assert.Equal(
            [("c", 1L, 3L), ("c", 1L, 5L), ("c", 1L, 7L), ("c", 1L, 8L), ("c", 1L, 9L), ("c", 5L, 0L), ("c", 5L, 1L), ("c", 5L, 2L), ("c", 136L, (long?)null)],
            allowed.Select(a => (a.Type!, a.Major!.Value, a.Minor)).ToList());
        Assert.DoesNotContain(rules, r => r.Allow && r.Type is null);
    }

    [Fact]
    public void RequestedDevicesAreCreatedAndAllowed()
    {
        var config = Config();
        config.Devices.Add(new Device { HostPath = "/dev/nvidia0", ContainerPath = "/dev/gpu0", Permissions = "rw" });
        config.Devices.Add(new Device { HostPath = "/dev/sdb", ContainerPath = "", Permissions = "" });

        var spec = Spec(config, host: HostWithGpu());

        var gpu = spec.Linux!.Devices.Single(d => d.Path == "/dev/gpu0");
        Assert.Equal(("c", 195L, 0L, 0x1B6u), (gpu.Type, gpu.Major, gpu.Minor, gpu.FileMode!.Value));
        var disk = spec.Linux.Devices.Single(d => d.Path == "/dev/sdb");
        Assert.Equal(("b", 8L, 16L, 6u), (disk.Type, disk.Major, disk.Minor, disk.Gid!.Value));
        var rules = spec.Linux.Resources!.Devices;
        Assert.Contains(rules, r => r is { Allow: true, Type: "c", Major: 195, Minor: 0, Access: "rw" });
        Assert.Contains(rules, r => r is { Allow: true, Type: "b", Major: 8, Minor: 16, Access: "rwm" });
    }

    [Theory]
    [InlineData("/dev/missing", "/dev/x", "rwm", "devices[0].host_path")]
    [InlineData("dev/nvidia0", "/dev/x", "rwm", "devices[0].host_path")]
    [InlineData("/dev/nvidia0", "/dev/x", "rwx", "devices[0].permissions")]
    [InlineData("/dev/nvidia0", "/tmp/x", "rwm", "devices[0].container_path")]
    public void BadDevicesAreRefused(string hostPath, string containerPath, string permissions, string field)
    {
        var config = Config();
        config.Devices.Add(new Device { HostPath = hostPath, ContainerPath = containerPath, Permissions = permissions });
        Refused(() => Spec(config, host: HostWithGpu()), field);
    }

    [Fact]
    public void PrivilegedContainersGetEveryHostDeviceAndAnAllowAllRule()
    {
        var host = HostWithGpu();
        host.HostDevices.Add(new HostDevice("/dev/null", 'c', 1, 3, 0x1B6, 0, 0));
        host.HostDevices.Add(new HostDevice("/dev/kvm", 'c', 10, 232, 0x1B0, 0, 108));

        var spec = Spec(Config(s => s.Privileged = true), sandbox: PodConfig(privileged: true), host: host);

        Assert.Equal(["/dev/null", "/dev/kvm"], spec.Linux!.Devices.Select(d => d.Path));
        var rule = Assert.Single(spec.Linux.Resources!.Devices);
        Assert.True(rule.Allow);
        Assert.Null(rule.Type);
        Assert.Equal("rwm", rule.Access);
    }

    [Fact]
    public void ResourcesMapOntoTheSpec()
    {
        var config = Config();
        var r = config.Linux.Resources;
        r.CpuPeriod = 100_000;
        r.CpuQuota = 50_000;
        r.CpuShares = 512;
        r.MemoryLimitInBytes = 256 << 20;
        r.OomScoreAdj = 999;
        r.CpusetCpus = "0-1,3";
        r.CpusetMems = "0";
        r.HugepageLimits.Add(new HugepageLimit { PageSize = "2MB", Limit = 4 << 20 });
        r.Unified["memory.high"] = "200000000";

        var spec = Spec(config);

        var cpu = spec.Linux!.Resources!.Cpu!;
        Assert.Equal((100_000UL, 50_000L, 512UL, "0-1,3", "0"), (cpu.Period!.Value, cpu.Quota!.Value, cpu.Shares!.Value, cpu.Cpus, cpu.Mems));
        Assert.Equal(256L << 20, spec.Linux.Resources.Memory!.Limit);
        Assert.Equal(256L << 20, spec.Linux.Resources.Memory.Swap); // no swap unless asked
        Assert.Equal(999, spec.Process!.OomScoreAdj);
        Assert.Equal(("2MB", 4UL << 20), (spec.Linux.Resources.HugepageLimits[0].PageSize, spec.Linux.Resources.HugepageLimits[0].Limit));
        Assert.Equal("200000000", spec.Linux.Resources.Unified["memory.high"]);
    }

    [Theory]
    [InlineData(0L, 0L, null, null)]
    [InlineData(1000L, 0L, 1000L, 1000L)]
    [InlineData(1000L, 3000L, 1000L, 3000L)]
    [InlineData(1000L, -1L, 1000L, -1L)]
    [InlineData(0L, 3000L, null, 3000L)]
    public void SwapLimits(long limit, long swap, long? expectedLimit, long? expectedSwap)
    {
        var config = Config();
        config.Linux.Resources.MemoryLimitInBytes = limit;
        config.Linux.Resources.MemorySwapLimitInBytes = swap;
        var memory = Spec(config).Linux!.Resources!.Memory;
        Assert.Equal(expectedLimit, memory?.Limit);
        Assert.Equal(expectedSwap, memory?.Swap);
    }

    [Fact]
    public void UnsetResourcesStayUnset()
    {
        var spec = Spec();
        Assert.Null(spec.Linux!.Resources!.Cpu);
        Assert.Null(spec.Linux.Resources.Memory);
        Assert.Empty(spec.Linux.Resources.HugepageLimits);
    }

    [Theory]
    [InlineData("cpu_period", 999L)]
    [InlineData("cpu_period", -5L)]
    [InlineData("cpu_quota", -2L)]
    [InlineData("cpu_shares", 1L)]
    [InlineData("cpu_shares", -1L)]
    [InlineData("memory_limit_in_bytes", -1L)]
    [InlineData("memory_swap_limit_in_bytes", 10L)]
    [InlineData("memory_swap_limit_in_bytes", -2L)]
    [InlineData("oom_score_adj", 1001L)]
    public void OutOfRangeResourcesAreRefusedNamingTheField(string field, long value)
    {
        var config = Config();
        var r = config.Linux.Resources;
        r.MemoryLimitInBytes = 1000;
        switch (field)
        {
            case "cpu_period": r.CpuPeriod = value; break;
            case "cpu_quota": r.CpuQuota = value; break;
            case "cpu_shares": r.CpuShares = value; break;
            case "memory_limit_in_bytes": r.MemoryLimitInBytes = value; break;
            case "memory_swap_limit_in_bytes": r.MemorySwapLimitInBytes = value; break;
            case "oom_score_adj": r.OomScoreAdj = value; break;
        }

        Refused(() => Spec(config), $"linux.resources.{field}");
    }

    [Theory]
    [InlineData("cpuset_cpus", "0-")]
    [InlineData("cpuset_cpus", "a")]
    [InlineData("cpuset_cpus", "3-1")]
    [InlineData("cpuset_mems", "0,,1")]
    public void BadCpusetsAreRefused(string field, string value)
    {
        var config = Config();
        if (field == "cpuset_cpus")
        {
            config.Linux.Resources.CpusetCpus = value;
        }
        else
        {
            config.Linux.Resources.CpusetMems = value;
        }

        Refused(() => Spec(config), $"linux.resources.{field}");
    }

    [Fact]
    public void BadHugepagesAndUnifiedKeysAreRefused()
    {
        var config = Config();
        config.Linux.Resources.HugepageLimits.Add(new HugepageLimit { PageSize = "huge", Limit = 1 });
        Refused(() => Spec(config), "linux.resources.hugepage_limits[0].page_size");

        var unified = Config();
        unified.Linux.Resources.Unified["../../etc/passwd"] = "x";
        Refused(() => Spec(unified), "linux.resources.unified");
    }

    [Fact]
    public void AnUpdateOfACreatedContainerReplacesWhatItSetsInTheSpecAndKeepsTheRest()
    {
        var spec = Spec(Config());
        var resources = spec.Linux!.Resources!;
        resources.Cpu = new Nacelle.ContainerCore.Spec.SpecCpu { Shares = 512, Quota = 50_000, Period = 100_000 };
        resources.Memory = new Nacelle.ContainerCore.Spec.SpecMemory { Limit = 256 << 20, Swap = 256 << 20 };
        resources.HugepageLimits.Add(new Nacelle.ContainerCore.Spec.SpecHugepageLimit { PageSize = "2MB", Limit = 1 << 21 });
        var devices = resources.Devices.Count;

        var update = ContainerSpecBuilder.BuildResources(new Nacelle.Sandbox.Containers.ResourceRequest
        {
            CpuQuota = 20_000, MemoryLimitInBytes = 64 << 20, CpusetCpus = "0",
            HugepageLimits = [new Nacelle.Sandbox.Containers.HugepageLimit("2MB", 1 << 22), new Nacelle.Sandbox.Containers.HugepageLimit("1GB", 1 << 30)],
            Unified = new Dictionary<string, string> { ["memory.high"] = "1000000" },
        });
        ContainerSpecBuilder.UpdateResources(resources, update);

        Assert.Equal(512UL, resources.Cpu.Shares);
        Assert.Equal(20_000L, resources.Cpu.Quota);
        Assert.Equal(100_000UL, resources.Cpu.Period);
        Assert.Equal("0", resources.Cpu.Cpus);
        Assert.Equal(64L << 20, resources.Memory.Limit);
        Assert.Equal(64L << 20, resources.Memory.Swap);
        Assert.Equal([("1GB", 1UL << 30), ("2MB", 1UL << 22)], resources.HugepageLimits.Select(h => (h.PageSize, h.Limit)).OrderBy(h => h.PageSize));
        Assert.Equal("1000000", resources.Unified["memory.high"]);
        Assert.Equal(devices, resources.Devices.Count);
    }
}
