using Nacelle.ContainerCore.Cgroups;

namespace Nacelle.Tests.Unit.Cgroups;

public sealed class CgroupLayoutTests
{
    private const string Hybrid = """
        31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
        32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
        33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
        34 31 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,memory
        35 31 0:32 / /sys/fs/cgroup/net_cls,net_prio rw,relatime - cgroup cgroup rw,net_cls,net_prio
        36 31 0:33 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
        37 31 0:34 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
        """;

    [Fact]
    public void HybridLayout()
    {
        var layout = CgroupLayout.Parse(Hybrid);
        Assert.Equal(CgroupMode.Hybrid, layout.Mode);
        Assert.Equal("/sys/fs/cgroup/unified", layout.UnifiedMount);
        Assert.Equal("/sys/fs/cgroup/memory", layout.V1Controllers["memory"]);
        Assert.Equal("/sys/fs/cgroup/net_cls,net_prio", layout.V1Controllers["net_prio"]);
        Assert.False(layout.V1Controllers.ContainsKey("name=systemd"));
        Assert.False(layout.V1Controllers.ContainsKey("xattr"));
        Assert.False(layout.V1Controllers.ContainsKey("rw"));
    }

    [Fact]
    public void UnifiedLayout()
    {
        var layout = CgroupLayout.Parse("30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n");
        Assert.Equal(CgroupMode.Unified, layout.Mode);
        Assert.Equal("/sys/fs/cgroup", layout.UnifiedMount);
        Assert.Empty(layout.V1Controllers);
    }

    [Fact]
    public void LegacyAndNone()
    {
        Assert.Equal(CgroupMode.Legacy, CgroupLayout.Parse("32 31 0:29 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n").Mode);
        Assert.Equal(CgroupMode.None, CgroupLayout.Parse("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n").Mode);
    }

    [Fact]
    public void EscapedMountPointsAreDecoded()
    {
        var layout = CgroupLayout.Parse(@"40 31 0:40 / /mnt/my\040cgroups rw - cgroup2 cgroup2 rw" + "\n");
        Assert.Equal("/mnt/my cgroups", layout.UnifiedMount);
    }

    [Fact]
    public void ThisMachineHasCgroups()
    {
        Assert.NotEqual(CgroupMode.None, CgroupLayout.Detect().Mode);
    }
}
