using Nacelle.ContainerCore.Cgroups;

namespace Nacelle.Tests.Kernel.Cgroups;

/// <summary>The v2 cgroup against the real cgroup2 mount (the hybrid /sys/fs/cgroup/unified here): freeze, thaw, kill, remove.</summary>
public sealed class UnifiedMountKernelTests
{
    [Fact]
    public async Task FreezeThawKillAndRemoveOnTheRealCgroup2Mount()
    {
        await using var scope = new CgroupTestScope();
        if (scope.Layout.UnifiedMount is null)
        {
            return; // no cgroup2 mount on this node
        }

        var cgroup = scope.CreateUnified("ctr");
        Assert.True(Directory.Exists(cgroup.Directory));
        var sleeper = scope.StartIn(cgroup, "exec /bin/sleep 30");
        Assert.Equal([sleeper.Id], cgroup.Processes());

        await cgroup.FreezeAsync();
        Assert.Contains("frozen 1", File.ReadAllText(Path.Combine(cgroup.Directory, "cgroup.events")), StringComparison.Ordinal);
        Assert.True(cgroup.IsFrozen());

        await cgroup.ThawAsync();
        Assert.Contains("frozen 0", File.ReadAllText(Path.Combine(cgroup.Directory, "cgroup.events")), StringComparison.Ordinal);
        Assert.False(sleeper.HasExited);

        await cgroup.KillAsync();
        Assert.True(sleeper.WaitForExit(5000));
        Assert.Equal(137, sleeper.ExitCode);
        Assert.Empty(cgroup.Processes());

        await cgroup.RemoveAsync();
        Assert.False(Directory.Exists(cgroup.Directory));
    }

    [Fact]
    public async Task DeviceRulesBecomeAnEbpfFilterTheKernelEnforces()
    {
        await using var scope = new CgroupTestScope();
        if (scope.Layout.UnifiedMount is null)
        {
            return;
        }

        var cgroup = scope.CreateUnified("devices");
        cgroup.Apply(new CgroupResources
        {
            Devices =
            [
                new DeviceRule(false, 'a', -1, -1, "rwm"),
                new DeviceRule(true, 'c', 1, 3, "rwm"), // /dev/null
                new DeviceRule(true, 'c', 1, 5, "r"),   // /dev/zero, read only
            ],
        });

        var probe = scope.StartIn(cgroup,
            "head -c 1 /dev/zero >/dev/null && echo zero-read; " +
            "echo x >/dev/zero && echo zero-write; " +
            "head -c 1 /dev/urandom >/dev/null && echo urandom-read; echo done");
        var output = await probe.StandardOutput.ReadToEndAsync();
        Assert.True(probe.WaitForExit(5000));
        Assert.Equal("zero-read\ndone\n", output);

        // applying again replaces the program: now everything is allowed
        cgroup.Apply(new CgroupResources { Devices = [new DeviceRule(true, 'a', -1, -1, "rwm")] });
        var open = scope.StartIn(cgroup, "head -c 1 /dev/urandom >/dev/null && echo urandom-read");
        Assert.Equal("urandom-read\n", await open.StandardOutput.ReadToEndAsync());
    }

    [Fact]
    public async Task OpenDirectoryGivesAnOPathFdOfTheCgroup()
    {
        await using var scope = new CgroupTestScope();
        if (scope.Layout.UnifiedMount is null)
        {
            return;
        }

        var cgroup = scope.CreateUnified("fd");
        using var handle = cgroup.OpenDirectory();
        var link = new FileInfo($"/proc/self/fd/{handle.DangerousGetHandle()}").LinkTarget;
        Assert.Equal(cgroup.Directory, link);
        var flags = File.ReadAllLines($"/proc/self/fdinfo/{handle.DangerousGetHandle()}").Single(l => l.StartsWith("flags:", StringComparison.Ordinal));
        var value = Convert.ToInt32(flags["flags:".Length..].Trim(), 8);
        Assert.NotEqual(0, value & 0x200000); // O_PATH
    }

    [Fact]
    public async Task HybridV1KillAlsoUsesTheCgroup2Twin()
    {
        await using var scope = new CgroupTestScope();
        if (scope.Layout.Mode != CgroupMode.Hybrid)
        {
            return;
        }

        var cgroup = (V1Cgroup)scope.Create("twin");
        var sleeper = scope.StartIn(cgroup, "exec /bin/sleep 30");
        Assert.Contains(sleeper.Id.ToString(System.Globalization.CultureInfo.InvariantCulture),
            File.ReadAllText(Path.Combine(cgroup.UnifiedDirectory!, "cgroup.procs")).Split('\n'));
        await cgroup.KillAsync();
        Assert.True(sleeper.WaitForExit(5000));
        await cgroup.RemoveAsync();
        Assert.False(Directory.Exists(cgroup.UnifiedDirectory));
    }
}
