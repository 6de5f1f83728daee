using System.Text.Json.Nodes;
using Nacelle.Common;
using Nacelle.Sandbox.Network;

namespace Nacelle.Tests.Unit.SandboxNetwork;

public sealed class DefaultNetworkTests
{
    [Fact]
    public void DefaultNetworkIsBridgeHostLocalPortmapWithMasquerade()
    {
        var options = new CniOptions { DefaultBridgeName = "nctest1", HostLocalDataDir = "/tmp/ipam-x" };
        var list = DefaultNetwork.Build(options, "10.213.7.0/24");
        Assert.Equal("nacelle-default", list.Name);
        Assert.Equal("1.0.0", list.CniVersion);
        Assert.Equal(["bridge", "portmap"], list.Plugins.Select(p => p.Type));

        var bridge = JsonNode.Parse(list.Plugins[0].ToJson())!.AsObject();
        Assert.Equal("nctest1", bridge["bridge"]!.GetValue<string>());
        Assert.True(bridge["isGateway"]!.GetValue<bool>());
        Assert.True(bridge["ipMasq"]!.GetValue<bool>()); // pods reach beyond the host through its address
        Assert.True(bridge["hairpinMode"]!.GetValue<bool>());
        var ipam = bridge["ipam"]!.AsObject();
        Assert.Equal("host-local", ipam["type"]!.GetValue<string>());
        Assert.Equal("10.213.7.0/24", ipam["ranges"]![0]![0]!["subnet"]!.GetValue<string>());
        Assert.Equal("0.0.0.0/0", ipam["routes"]![0]!["dst"]!.GetValue<string>());
        Assert.Equal("/tmp/ipam-x", ipam["dataDir"]!.GetValue<string>());

        Assert.Equal(["portMappings"], list.Plugins[1].Capabilities);
        Assert.Empty(list.Plugins[0].Capabilities);
    }

    [Fact]
    public void MasqueradeCanBeTurnedOff()
    {
        var list = DefaultNetwork.Build(new CniOptions { DefaultNetworkMasquerade = false }, "10.213.7.0/24");
        Assert.False(JsonNode.Parse(list.Plugins[0].ToJson())!["ipMasq"]!.GetValue<bool>());
    }

    [Fact]
    public void DefaultsUseNacelle0AndThePluginsOwnDataDir()
    {
        var list = DefaultNetwork.Build(new CniOptions(), new CniOptions().DefaultPodCidr);
        var bridge = JsonNode.Parse(list.Plugins[0].ToJson())!.AsObject();
        Assert.Equal("nacelle0", bridge["bridge"]!.GetValue<string>());
        Assert.Equal("10.88.0.0/16", bridge["ipam"]!["ranges"]![0]![0]!["subnet"]!.GetValue<string>());
        Assert.False(bridge["ipam"]!.AsObject().ContainsKey("dataDir"));
    }

    [Fact]
    public void DualStackGetsTwoRangesAndTwoDefaultRoutes()
    {
        var list = DefaultNetwork.Build(new CniOptions(), "10.88.0.0/16, fd00:88::/64");
        var ipam = JsonNode.Parse(list.Plugins[0].ToJson())!["ipam"]!;
        Assert.Equal(2, ipam["ranges"]!.AsArray().Count);
        Assert.Equal("fd00:88::/64", ipam["ranges"]![1]![0]!["subnet"]!.GetValue<string>());
        Assert.Equal(["0.0.0.0/0", "::/0"], ipam["routes"]!.AsArray().Select(r => r!["dst"]!.GetValue<string>()));
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("10.88.0.0", "not an address/prefix")]
    [InlineData("10.88.0.0/40", "not an address/prefix")]
    [InlineData("banana/16", "not an address/prefix")]
    [InlineData("10.88.0.1/16", "host bits set (the network is 10.88.0.0/16)")]
    [InlineData("10.0.0.0/4", "prefix /4 must be within /8../30")]
    [InlineData("10.0.0.0/31", "prefix /31 must be within /8../30")]
    [InlineData("127.0.0.0/8", "loopback")]
    [InlineData("224.0.0.0/8", "multicast")]
    [InlineData("10.1.0.0/16,10.2.0.0/16", "two ranges of the same address family")]
    [InlineData("fd00::/127", "prefix /127")]
    public void BadPodCidrsAreRefusedWithTheReason(string cidr, string expected)
    {
        var error = Assert.Throws<NacelleException>(() => DefaultNetwork.ParsePodCidrs(cidr));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UpdatePodCidrReplacesTheDefaultNetworkSubnetAndKeepsItOnError()
    {
        using var cni = new FakeCni();
        foreach (var plugin in new[] { "bridge", "host-local", "portmap", "loopback" })
        {
            cni.Plugin(plugin);
        }

        using var network = new CniNetwork(cni.Options(defaultNetwork: true));
        var before = network.Status();
        Assert.True(before.Ready, before.Message);
        Assert.True(before.IsDefaultNetwork);
        Assert.Contains("10.88.0.0/16", before.Network!.ToJson(), StringComparison.Ordinal);

        network.UpdatePodCidr("10.213.44.0/24");
        Assert.Equal("10.213.44.0/24", network.PodCidr);
        var after = network.Status();
        Assert.Contains("\"subnet\":\"10.213.44.0/24\"", after.Network!.ToJson(), StringComparison.Ordinal);

        var error = Assert.Throws<NacelleException>(() => network.UpdatePodCidr("10.213.44.9/24"));
        Assert.Contains("10.213.44.9/24", error.Message, StringComparison.Ordinal);
        Assert.Equal("10.213.44.0/24", network.PodCidr);
    }

    [Fact]
    public void LoopbackNetworkIsOneLoopbackPlugin()
    {
        Assert.Equal("cni-loopback", DefaultNetwork.Loopback.Name);
        Assert.Equal("loopback", Assert.Single(DefaultNetwork.Loopback.Plugins).Type);
    }
}
