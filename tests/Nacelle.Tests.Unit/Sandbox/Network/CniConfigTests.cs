using Nacelle.Common;
using Nacelle.Sandbox.Network;

namespace Nacelle.Tests.Unit.SandboxNetwork;

public sealed class CniConfigTests
{
    private const string ValidList = """
        {"cniVersion":"1.0.0","name":"net-b","plugins":[{"type":"bridge"},{"type":"portmap","capabilities":{"portMappings":true}}]}
        """;

    [Fact]
    public void FirstValidFileInLexicalOrderWinsAndEarlierInvalidOnesAreSkippedWithReasons()
    {
        using var cni = new FakeCni();
        cni.Conf("05-broken.conf", "{ not json");
        cni.Conf("07-old.conflist", """{"cniVersion":"0.2.0","name":"old","plugins":[{"type":"bridge"}]}""");
        cni.Conf("10-b.conflist", ValidList);
        cni.Conf("20-c.conf", """{"cniVersion":"1.0.0","name":"net-c","type":"ptp"}""");
        cni.Conf("00-ignored.txt", """{"cniVersion":"1.0.0","name":"txt","type":"ptp"}""");
        cni.Conf("Z-upper.conf", "{}");

        var loaded = CniConfigLoader.Load(cni.ConfDir);

        Assert.NotNull(loaded.Network);
        Assert.Equal("net-b", loaded.Network.Name);
        Assert.Equal(["bridge", "portmap"], loaded.Network.Plugins.Select(p => p.Type));
        Assert.Equal(Path.Combine(cni.ConfDir, "10-b.conflist"), loaded.Network.Source);
        Assert.Equal(["05-broken.conf", "07-old.conflist"], loaded.Skipped.Select(s => Path.GetFileName(s.Path)));
        Assert.Contains("not valid JSON", loaded.Skipped[0].Reason, StringComparison.Ordinal);
        Assert.Contains("0.2.0", loaded.Skipped[1].Reason, StringComparison.Ordinal);
        Assert.Contains("05-broken.conf", loaded.SkippedSummary, StringComparison.Ordinal);
        Assert.Equal(["05-broken.conf", "07-old.conflist", "10-b.conflist", "20-c.conf", "Z-upper.conf"],
            CniConfigLoader.ConfigFiles(cni.ConfDir).Select(Path.GetFileName));
    }

    [Fact]
    public void OrderIsOrdinalNotCultural()
    {
        using var cni = new FakeCni();
        cni.Conf("a.conf", """{"cniVersion":"1.0.0","name":"lower","type":"ptp"}""");
        cni.Conf("B.json", """{"cniVersion":"1.0.0","name":"upper","type":"ptp"}""");
        Assert.Equal("upper", CniConfigLoader.Load(cni.ConfDir).Network!.Name); // 'B' (0x42) sorts before 'a' (0x61)
    }

    [Fact]
    public void SingleConfIsWrappedAsAList()
    {
        var list = CniNetworkConfigList.Parse(
            """{"cniVersion":"0.3.1","name":"single","type":"bridge","bridge":"cni0","disableCheck":true,"ipam":{"type":"host-local"}}""", "x.conf");
        Assert.Equal("single", list.Name);
        Assert.Equal("0.3.1", list.CniVersion);
        Assert.True(list.DisableCheck);
        var plugin = Assert.Single(list.Plugins);
        Assert.Equal("bridge", plugin.Type);
        Assert.Contains("\"bridge\":\"cni0\"", plugin.ToJson(), StringComparison.Ordinal);
        Assert.Contains("\"plugins\":[", list.ToJson(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"cniVersion":"1.0.0","plugins":[{"type":"bridge"}]}""", "no name")]
    [InlineData("""{"cniVersion":"1.0.0","name":"-bad","plugins":[{"type":"bridge"}]}""", "network name '-bad' is invalid")]
    [InlineData("""{"cniVersion":"1.0.0","name":"a b","plugins":[{"type":"bridge"}]}""", "is invalid")]
    [InlineData("""{"name":"n","plugins":[{"type":"bridge"}]}""", "cniVersion is missing")]
    [InlineData("""{"cniVersion":"2.0.0","name":"n","plugins":[{"type":"bridge"}]}""", "cniVersion 2.0.0 is not supported")]
    [InlineData("""{"cniVersion":"1.0.0","name":"n","plugins":[]}""", "has no plugins")]
    [InlineData("""{"cniVersion":"1.0.0","name":"n","plugins":{}}""", "has no plugins")]
    [InlineData("""{"cniVersion":"1.0.0","name":"n","plugins":[{"bridge":"x"}]}""", "plugins[0] has no type")]
    [InlineData("""{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"},{"type":"../../bin/sh"}]}""", "plugins[1] type '../../bin/sh' is not a plain executable name")]
    [InlineData("""{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge","capabilities":[1]}]}""", "capabilities must be an object")]
    [InlineData("""{"cniVersion":"1.0.0","name":"n","type":""}""", "plugins[0] has no type")]
    [InlineData("""[1,2]""", "not a JSON object")]
    [InlineData("""{"cniVersion":"1.0.0","name":"n","disableCheck":7,"plugins":[{"type":"bridge"}]}""", "disableCheck must be a boolean")]
    public void InvalidConfigurationsNameTheProblem(string json, string expected)
    {
        var error = Assert.Throws<NacelleException>(() => CniNetworkConfigList.Parse(json, "/etc/cni/net.d/x.conflist"));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.StartsWith("/etc/cni/net.d/x.conflist: ", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0.3.0")]
    [InlineData("0.3.1")]
    [InlineData("0.4.0")]
    [InlineData("1.0.0")]
    [InlineData("1.1.0")]
    public void EverySupportedVersionLoads(string version)
    {
        var list = CniNetworkConfigList.Parse($$"""{"cniVersion":"{{version}}","name":"n","plugins":[{"type":"bridge"}]}""", "x");
        Assert.Equal(version, list.CniVersion);
    }

    [Fact]
    public void EmptyFilesAndMissingDirectoriesAreReported()
    {
        using var cni = new FakeCni();
        cni.Conf("10-empty.conflist", "");
        var loaded = CniConfigLoader.Load(cni.ConfDir);
        Assert.Null(loaded.Network);
        Assert.Equal("the file is empty", Assert.Single(loaded.Skipped).Reason);

        var missing = CniConfigLoader.Load(Path.Combine(cni.Root, "nope"));
        Assert.Null(missing.Network);
        Assert.Contains("does not exist", missing.DirectoryProblem, StringComparison.Ordinal);

        Directory.CreateDirectory(Path.Combine(cni.Root, "empty"));
        Assert.Contains("no network config found", CniConfigLoader.Load(Path.Combine(cni.Root, "empty")).DirectoryProblem, StringComparison.Ordinal);
    }

    [Fact]
    public void CapabilitiesAreOnlyThoseDeclaredTrue()
    {
        var list = CniNetworkConfigList.Parse(
            """{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"portmap","capabilities":{"portMappings":true,"bandwidth":false,"dns":"yes"}}]}""", "x");
        Assert.Equal(["portMappings"], list.Plugins[0].Capabilities);
    }

    [Fact]
    public void VersionsCompareNumerically()
    {
        Assert.True(CniVersions.AtLeast("1.0.0", "0.4.0"));
        Assert.True(CniVersions.AtLeast("0.4.0", "0.4.0"));
        Assert.False(CniVersions.AtLeast("0.3.1", "0.4.0"));
        Assert.True(CniVersions.AtLeast("0.10.0", "0.4.0"));
        Assert.False(CniVersions.AtLeast("1.0.0", "1.1.0"));
    }
}
