using Nacelle.CriServer.Translation;

namespace Nacelle.Tests.Unit.Translation;

/// <summary>The real host reads only: /dev/null is on every machine the tests run on.</summary>
public sealed class TranslationHostTests
{
    [Fact]
    public void DevNullIsACharacterDevice1_3()
    {
        var device = TranslationHost.Instance.StatDevice("/dev/null");
        Assert.NotNull(device);
        Assert.Equal(('c', 1L, 3L), (device.Type, device.Major, device.Minor));
        Assert.Contains(TranslationHost.Instance.ListHostDevices(), d => d.Path == "/dev/null" && d.Major == 1 && d.Minor == 3);
    }

    [Fact]
    public void NonDevicesAreNotDevices()
    {
        Assert.Null(TranslationHost.Instance.StatDevice("/etc/hostname-does-not-exist"));
        Assert.Null(TranslationHost.Instance.StatDevice("/dev"));
    }

    [Fact]
    public void ProfilesAreReadAsText()
    {
        var path = Path.Combine(Path.GetTempPath(), $"nacelle-seccomp-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, """{ "defaultAction": "SCMP_ACT_ALLOW" }""");
        try
        {
            Assert.Contains("SCMP_ACT_ALLOW", TranslationHost.Instance.ReadSeccompProfile(path), StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
