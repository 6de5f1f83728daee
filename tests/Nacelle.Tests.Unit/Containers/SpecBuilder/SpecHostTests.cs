using Nacelle.CriServer.Services.Containers;
using Nacelle.Sandbox.Containers.Spec;

namespace Nacelle.Tests.Unit.Containers.SpecBuilder;

/// <summary>The real host reads only: /dev/null is on every machine the tests run on.</summary>
public sealed class SpecHostTests
{
    [Fact]
    public void DevNullIsACharacterDevice1_3()
    {
        var device = SpecHost.Instance.StatDevice("/dev/null");
        Assert.NotNull(device);
        Assert.Equal(('c', 1L, 3L), (device.Type, device.Major, device.Minor));
        Assert.Contains(SpecHost.Instance.ListHostDevices(), d => d.Path == "/dev/null" && d.Major == 1 && d.Minor == 3);
    }

    [Fact]
    public void NonDevicesAreNotDevices()
    {
        Assert.Null(SpecHost.Instance.StatDevice("/etc/hostname-does-not-exist"));
        Assert.Null(SpecHost.Instance.StatDevice("/dev"));
        // Found by the CRI fuzzer: a device host_path with a NUL threw ArgumentException (CreateContainer answered Internal).
        Assert.Null(SpecHost.Instance.StatDevice("/dev/nu\0ll"));
    }

    [Fact]
    public void ProfilesAreReadAsText()
    {
        var path = Path.Combine(Path.GetTempPath(), $"nacelle-seccomp-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, """{ "defaultAction": "SCMP_ACT_ALLOW" }""");
        try
        {
            Assert.Contains("SCMP_ACT_ALLOW", SpecHost.Instance.ReadSeccompProfile(path), StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
