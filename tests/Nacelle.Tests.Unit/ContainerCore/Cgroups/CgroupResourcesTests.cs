using Nacelle.Common;
using Nacelle.ContainerCore.Cgroups;

namespace Nacelle.Tests.Unit.ContainerCore.Cgroups;

public sealed class CgroupResourcesTests
{
    [Theory]
    [InlineData(2UL, 1UL)]
    [InlineData(1024UL, 39UL)]
    [InlineData(512UL, 20UL)]
    [InlineData(262144UL, 10000UL)]
    [InlineData(1UL, 1UL)]            // clamped up to 2 first
    [InlineData(1000000UL, 10000UL)]  // clamped down to 262144 first
    public void SharesConvertToWeight(ulong shares, ulong weight) =>
        Assert.Equal(weight, CgroupConversions.SharesToWeight(shares));

    [Theory]
    [InlineData(10, 1UL)]
    [InlineData(500, 4950UL)]
    [InlineData(1000, 10000UL)]
    public void BlkioWeightConvertsToIoWeight(ushort blkio, ulong io) =>
        Assert.Equal(io, CgroupConversions.BlkioWeightToIoWeight(blkio));

    [Fact]
    public void CpuMaxLines()
    {
        Assert.Equal("50000 100000", CgroupConversions.CpuMax(50000, 100000));
        Assert.Equal("max 100000", CgroupConversions.CpuMax(-1, 100000));
        Assert.Equal("max 100000", CgroupConversions.CpuMax(0, null));
        Assert.Equal("max 250000", CgroupConversions.CpuMax(null, 250000));
        Assert.Null(CgroupConversions.CpuMax(null, null));
    }

    [Fact]
    public void SwapMaxIsSwapMinusLimit()
    {
        Assert.Equal("104857600", CgroupConversions.SwapMax(104857600, 209715200));
        Assert.Equal("0", CgroupConversions.SwapMax(104857600, 104857600));
        Assert.Equal("max", CgroupConversions.SwapMax(104857600, -1));
        Assert.Null(CgroupConversions.SwapMax(104857600, null));
        Assert.Null(CgroupConversions.SwapMax(104857600, 0)); // OCI 0 = not set
    }

    [Fact]
    public void DeviceRulesRenderAsV1Lines()
    {
        Assert.Equal("c 1:3 rwm", new DeviceRule(true, 'c', 1, 3, "rwm").ToV1Line());
        Assert.Equal("b 8:* r", new DeviceRule(true, 'b', 8, -1, "r").ToV1Line());
        Assert.Equal("a *:* rwm", new DeviceRule(false, 'a', -1, -1, "rwm").ToV1Line());
    }

    [Fact]
    public void SpecResourcesMapField()
    {
        var spec = new Nacelle.ContainerCore.Spec.SpecResources
        {
            Cpu = new() { Shares = 256, Quota = 30000, Period = 100000, Cpus = "1", Mems = "0" },
            Memory = new() { Limit = 1000, Swap = 2000, Reservation = 500, Swappiness = 5, DisableOomKiller = true },
            Pids = new() { Limit = 7 },
            BlockIo = new() { Weight = 100, ThrottleWriteBpsDevice = [new() { Major = 8, Minor = 1, Rate = 99 }] },
            HugepageLimits = [new() { PageSize = "2MB", Limit = 4096 }],
            Unified = new() { ["memory.high"] = "900" },
            Devices = [new() { Allow = false, Access = "rwm" }, new() { Allow = true, Type = "c", Major = 1, Minor = 3, Access = "rw" }],
        };

        var r = CgroupSpecMapping.FromSpec(spec);
        Assert.Equal((256UL, 30000L, 100000UL, "1", "0"), (r.CpuShares!.Value, r.CpuQuota!.Value, r.CpuPeriod!.Value, r.CpusetCpus, r.CpusetMems));
        Assert.Equal((1000L, 2000L, 500L, 5UL, true), (r.MemoryLimit!.Value, r.MemorySwap!.Value, r.MemoryReservation!.Value, r.MemorySwappiness!.Value, r.DisableOomKiller!.Value));
        Assert.Equal(7L, r.PidsLimit);
        Assert.Equal((ushort)100, r.BlkioWeight);
        Assert.Equal([new DeviceThrottle(8, 1, 99)], r.ThrottleWriteBps!);
        Assert.Null(r.ThrottleReadBps);
        Assert.Equal(4096UL, r.HugepageLimits!["2MB"]);
        Assert.Equal("900", r.Unified!["memory.high"]);
        Assert.Equal([new DeviceRule(false, 'a', -1, -1, "rwm"), new DeviceRule(true, 'c', 1, 3, "rw")], r.Devices!);
        CgroupResourceValidator.Validate(r);

        spec.Devices = [new() { Type = "char" }];
        Assert.Contains("Devices[0] type \"char\"", Assert.Throws<NacelleException>(() => CgroupSpecMapping.FromSpec(spec)).Message, StringComparison.Ordinal);
    }

    public static TheoryData<CgroupResources, string> InvalidResources() => new()
    {
        { new CgroupResources { CpuShares = 1 }, "CpuShares" },
        { new CgroupResources { CpuQuota = 50000 }, "CpuQuota 50000 is set without CpuPeriod" },
        { new CgroupResources { CpuQuota = 500, CpuPeriod = 100000 }, "CpuQuota 500" },
        { new CgroupResources { CpuQuota = -5 }, "CpuQuota -5" },
        { new CgroupResources { CpuPeriod = 10 }, "CpuPeriod 10" },
        { new CgroupResources { CpusetCpus = "0-3;rm" }, "CpusetCpus" },
        { new CgroupResources { MemoryLimit = 200, MemorySwap = 100 }, "MemorySwap 100 is less than MemoryLimit 200" },
        { new CgroupResources { MemorySwap = 100 }, "MemorySwap 100 is set without a MemoryLimit" },
        { new CgroupResources { MemoryLimit = -7 }, "MemoryLimit -7" },
        { new CgroupResources { MemoryLimit = 100, MemoryReservation = 200 }, "MemoryReservation 200" },
        { new CgroupResources { PidsLimit = -3 }, "PidsLimit" },
        { new CgroupResources { MemorySwappiness = 101 }, "MemorySwappiness 101" },
        { new CgroupResources { HugepageLimits = new Dictionary<string, ulong> { ["2XB"] = 1 } }, "HugepageLimits page size \"2XB\"" },
        { new CgroupResources { BlkioWeight = 5 }, "BlkioWeight 5" },
        { new CgroupResources { ThrottleReadBps = [new DeviceThrottle(-1, 0, 10)] }, "ThrottleReadBps[0]" },
        { new CgroupResources { Unified = new Dictionary<string, string> { ["../memory.max"] = "1" } }, "Unified key \"../memory.max\"" },
        { new CgroupResources { Unified = new Dictionary<string, string> { ["sub/memory.max"] = "1" } }, "Unified key \"sub/memory.max\"" },
        { new CgroupResources { Unified = new Dictionary<string, string> { ["cgroup.procs"] = "1" } }, "Unified key \"cgroup.procs\"" },
        { new CgroupResources { Unified = new Dictionary<string, string> { ["memoryhigh"] = "1" } }, "Unified key \"memoryhigh\"" },
        { new CgroupResources { Devices = [new DeviceRule(true, 'x', 1, 3, "rwm")] }, "Devices[0] type 'x'" },
        { new CgroupResources { Devices = [new DeviceRule(true, 'c', 1, 3, "rwm"), new DeviceRule(true, 'c', 1, 5, "rwx")] }, "Devices[1] access \"rwx\"" },
        { new CgroupResources { Devices = [new DeviceRule(true, 'c', -2, 3, "r")] }, "Devices[0] major/minor" },
    };

    [Theory]
    [MemberData(nameof(InvalidResources))]
    public void ValidationRefusesNamingTheField(CgroupResources resources, string expected)
    {
        var error = Assert.Throws<NacelleException>(() => CgroupResourceValidator.Validate(resources));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ValidationAcceptsConsistentResources()
    {
        CgroupResourceValidator.Validate(new CgroupResources
        {
            CpuShares = 1024, CpuQuota = 50000, CpuPeriod = 100000, CpusetCpus = "0-1,3", CpusetMems = "0",
            MemoryLimit = 1 << 30, MemorySwap = 2L << 30, MemoryReservation = 1 << 29, PidsLimit = 100,
            HugepageLimits = new Dictionary<string, ulong> { ["2MB"] = 1 << 21, ["1GB"] = 0 }, BlkioWeight = 500,
            Unified = new Dictionary<string, string> { ["memory.high"] = "max" },
            Devices = [new DeviceRule(false, 'a', -1, -1, "rwm"), new DeviceRule(true, 'c', 1, 3, "rwm")],
        });
        CgroupResourceValidator.Validate(new CgroupResources { CpuQuota = -1, MemoryLimit = -1, MemorySwap = -1, PidsLimit = 0 });
    }
}
