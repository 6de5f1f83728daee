using Nacelle.Common;
using Nacelle.ContainerCore.Cgroups;
using Nacelle.ContainerCore.Cgroups.Systemd;

namespace Nacelle.Tests.Unit.Cgroups;

/// <summary>The systemd cgroup driver's names and unit properties (pure): slices as kubelet names them, scopes, owners,
/// limits and device rules.</summary>
public sealed class SystemdDriverNamingTests
{
    private const string Id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    [Theory]
    [InlineData("kubepods.slice", "/kubepods.slice")]
    [InlineData("kubepods-besteffort-pod1f2e.slice", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1f2e.slice")]
    [InlineData("-.slice", "/")]
    public void ASliceNameSaysItsAncestry(string slice, string path) => Assert.Equal(path, SystemdUnits.SlicePath(slice));

    [Theory]
    [InlineData("kubepods--a.slice")]
    [InlineData("-kubepods.slice")]
    [InlineData("kubepods-.slice")]
    public void ASliceNameWithAStrayDashIsRefused(string slice) =>
        Assert.Equal(ErrorKind.InvalidArgument, Assert.Throws<NacelleException>(() => SystemdUnits.SlicePath(slice)).Kind);

    [Fact]
    public void AContainerUnderASliceIsAScopeAndUnderAPathADirectory()
    {
        Assert.Equal($"kubepods-pod1.slice:nacelle:{Id}", CgroupNames.Container("kubepods-pod1.slice", Id));
        Assert.Equal($"/kubepods/pod1/{Id}", CgroupNames.Container("/kubepods/pod1/", Id));
        Assert.Equal("kubepods-pod1.slice:nacelle:pause-0123456789ab", CgroupNames.Pause("kubepods-pod1.slice", Id[..12]));
        Assert.Equal("nacelle-pod0123456789ab.slice", CgroupNames.OwnPod(SystemdUnits.DefaultSlice, Id[..12]));
        Assert.Equal("/nacelle/pod-0123456789ab", CgroupNames.OwnPod("/nacelle", Id[..12]));

        var placement = CgroupManager.Place(CgroupNames.Container("kubepods-burstable-pod1.slice", Id));
        Assert.Equal(new SystemdScope($"nacelle-{Id}.scope", "kubepods-burstable-pod1.slice"), placement.Scope);
        Assert.Equal($"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/nacelle-{Id}.scope", placement.Path);
        Assert.Null(CgroupManager.Place($"/kubepods/pod1/{Id}").Scope);
    }

    [Fact]
    public void AUnitsOwnerComesFromItsName()
    {
        Assert.Equal((CgroupOwner.Container, Id), CgroupNames.OwnerOf($"nacelle-{Id}.scope"));
        Assert.Equal((CgroupOwner.Pod, Id[..12]), CgroupNames.OwnerOf($"nacelle-pause-{Id[..12]}.scope"));
        Assert.Equal((CgroupOwner.Pod, Id[..12]), CgroupNames.OwnerOf($"nacelle-pod{Id[..12]}.slice"));
        // Names nacelle does not give are nobody's here (and never stopped).
        Assert.Equal(CgroupOwner.None, CgroupNames.OwnerOf("nacelle-other.scope").Owner);
        Assert.Equal(CgroupOwner.None, CgroupNames.OwnerOf("nacelle-pause-xyz.scope").Owner);
        Assert.Equal(CgroupOwner.None, CgroupNames.OwnerOf("nacelle.slice").Owner);
        Assert.Equal(CgroupOwner.None, CgroupNames.OwnerOf("dbus.service").Owner);
    }

    [Fact]
    public void LimitsBecomeUnitPropertiesUnderTheHierarchysNames()
    {
        var resources = new CgroupResources { CpuShares = 512, CpuQuota = 50_000, CpuPeriod = 100_000, MemoryLimit = 64 << 20, PidsLimit = 100 };
        var v1 = SystemdProperties.Limits(resources, unified: false, (_, _) => null).ToDictionary(p => p.Name, p => p.Value);
        Assert.Equal(512UL, v1["CPUShares"]);
        Assert.Equal(500_000UL, v1["CPUQuotaPerSecUSec"]);
        Assert.Equal((ulong)(64 << 20), v1["MemoryLimit"]);
        Assert.Equal(100UL, v1["TasksMax"]);
        var v2 = SystemdProperties.Limits(resources, unified: true, (_, _) => null).ToDictionary(p => p.Name, p => p.Value);
        Assert.True(v2.ContainsKey("CPUWeight"));
        Assert.Equal((ulong)(64 << 20), v2["MemoryMax"]);
    }

    [Fact]
    public void AScopeWithoutLimitsStillNeedsEveryV1ControllerSystemdManages()
    {
        var properties = SystemdProperties.ForScope(new SystemdScope("nacelle-pause-0123456789ab.scope", "kubepods.slice"), "pause", 42, null,
            unified: false, (_, _) => null);
        Assert.Contains(properties, p => p is { Name: "CPUShares", Value: 1024UL });
        Assert.Contains(properties, p => p is { Name: "DevicePolicy", Value: "auto" });
        var allow = Assert.Single(properties, p => p.Name == "DeviceAllow");
        Assert.Equal(new[] { ("char-*", "rwm"), ("block-*", "rwm") }, ((string, string)[])allow.Value);
        Assert.Equal(new uint[] { 42 }, (uint[])Assert.Single(properties, p => p.Name == "PIDs").Value);
    }

    [Fact]
    public void DeviceRulesBecomeAStrictListAndAnUnexpressibleDenyIsRefused()
    {
        DeviceRule[] rules = [new(false, 'a', -1, -1, "rwm"), new(true, 'c', 1, 3, "rwm"), new(true, 'c', 136, -1, "rw"), new(true, 'c', 10, -1, "rwm")];
        const string procDevices = "Character devices:\n  1 mem\n 10 misc\n136 pts\n137 pts\n\nBlock devices:\n  8 sd\n";
        var (policy, allow) = SystemdProperties.Devices(rules, (type, major) => SystemdProperties.UniqueGroup(procDevices, type, major));
        Assert.Equal("strict", policy);
        // pts has two majors, so "char-pts" would allow more than 136 alone: left out (stricter), as is misc's.
        Assert.Equal(new[] { ("/dev/char/1:3", "rwm"), ("char-misc", "rwm") }, allow);

        var error = Assert.Throws<NacelleException>(() => SystemdProperties.Devices([new(false, 'c', 1, 3, "rwm")], (_, _) => null));
        Assert.Equal(ErrorKind.FailedPrecondition, error.Kind);
    }

    [Fact]
    public void AQuotaPerSecondIsRoundedUpToSystemdsTenMilliseconds()
    {
        Assert.Equal(500_000UL, SystemdProperties.QuotaPerSecond(50_000, 100_000));
        Assert.Equal(340_000UL, SystemdProperties.QuotaPerSecond(33_333, 100_000));
    }
}
