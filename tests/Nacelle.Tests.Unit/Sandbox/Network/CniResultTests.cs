using Nacelle.Common;
using Nacelle.Sandbox.Network;

namespace Nacelle.Tests.Unit.SandboxNetwork;

public sealed class CniResultTests
{
    [Fact]
    public void Version031WithIpVersionField()
    {
        var result = CniResult.Parse("""
            {"cniVersion":"0.3.1",
             "interfaces":[{"name":"cni0","mac":"0a:58:0a:f4:00:01"},{"name":"veth1"},{"name":"eth0","mac":"0a:58:0a:f4:00:05","sandbox":"/var/run/netns/x"}],
             "ips":[{"version":"4","address":"10.244.0.5/24","gateway":"10.244.0.1","interface":2}],
             "routes":[{"dst":"0.0.0.0/0"}],"dns":{}}
            """);
        Assert.Equal("0.3.1", result.CniVersion);
        Assert.Equal(3, result.Interfaces.Count);
        var ip = Assert.Single(result.PodIps());
        Assert.Equal("10.244.0.5", ip.Address.ToString());
        Assert.Equal(24, ip.PrefixLength);
        Assert.Equal("10.244.0.1", ip.Gateway!.ToString());
        Assert.Equal("10.244.0.5/24", ip.Cidr);
        Assert.Equal(new CniInterface("eth0", "0a:58:0a:f4:00:05", "/var/run/netns/x"), result.SandboxInterface("eth0"));
    }

    [Fact]
    public void Version040WithoutInterfaceIndex()
    {
        var result = CniResult.Parse("""{"cniVersion":"0.4.0","ips":[{"version":"4","address":"192.168.1.7/16"}]}""");
        Assert.Equal("192.168.1.7", Assert.Single(result.PodIps()).Address.ToString());
        Assert.Null(result.PodIps()[0].Gateway);
        Assert.Null(result.SandboxInterface("eth0"));
    }

    [Fact]
    public void Version100DualStackPutsIPv4FirstAndSkipsHostSideAddresses()
    {
        var result = CniResult.Parse("""
            {"cniVersion":"1.0.0",
             "interfaces":[{"name":"br0","mac":"aa:aa:aa:aa:aa:aa"},{"name":"eth0","mac":"bb:bb:bb:bb:bb:bb","sandbox":"/run/netns/p"}],
             "ips":[{"address":"fd00:10::5/64","gateway":"fd00:10::1","interface":1},
                    {"address":"10.88.0.1/16","interface":0},
                    {"address":"10.88.0.5/16","gateway":"10.88.0.1","interface":1}]}
            """);
        Assert.Equal(3, result.Ips.Count);
        var pod = result.PodIps();
        Assert.Equal(["10.88.0.5", "fd00:10::5"], pod.Select(i => i.Address.ToString()));
        Assert.True(pod[1].IsIPv6);
        Assert.Equal(64, pod[1].PrefixLength);
    }

    [Fact]
    public void Version020Ip4AndIp6()
    {
        var result = CniResult.Parse("""{"cniVersion":"0.2.0","ip4":{"ip":"10.1.2.3/24","gateway":"10.1.2.1"},"ip6":{"ip":"fd00::3/64"}}""");
        Assert.Equal(["10.1.2.3", "fd00::3"], result.PodIps().Select(i => i.Address.ToString()));
    }

    [Fact]
    public void EmptyResultHasNoIps()
    {
        var result = CniResult.Parse("""{"cniVersion":"1.0.0"}""");
        Assert.Empty(result.PodIps());
        Assert.Equal("""{"cniVersion":"1.0.0"}""", result.ToJson());
    }

    [Theory]
    [InlineData("""{"cniVersion":"1.0.0","ips":[{"address":"10.1.2.3"}]}""", "address/prefix")]
    [InlineData("""{"cniVersion":"1.0.0","ips":[{"address":"10.1.2.3/33"}]}""", "address/prefix")]
    [InlineData("""{"cniVersion":"1.0.0","ips":[{"address":"nonsense/8"}]}""", "address/prefix")]
    [InlineData("""{"cniVersion":"1.0.0","ips":[{"address":"10.1.2.3/8","gateway":"x"}]}""", "gateway 'x'")]
    [InlineData("""{"cniVersion":"1.0.0","ips":[{"address":"10.1.2.3/8","interface":"eth0"}]}""", "not an integer")]
    [InlineData("""{"cniVersion":"1.0.0","ips":[7]}""", "not an object")]
    [InlineData("""[]""", "not a JSON object")]
    [InlineData("""{""", "not valid JSON")]
    public void MalformedResultsAreErrors(string json, string expected)
    {
        var error = Assert.Throws<NacelleException>(() => CniResult.Parse(json));
        Assert.Equal(ErrorKind.Internal, error.Kind);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }
}
