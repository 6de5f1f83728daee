using System.Text.Json.Nodes;
using Nacelle.Common;
using Nacelle.Sandbox.Network;

namespace Nacelle.Tests.Unit.SandboxNetwork;

public sealed class CniRuntimeConfTests
{
    private static readonly CniNetworkConfigList List = CniNetworkConfigList.Parse("""
        {"cniVersion":"0.4.0","name":"podnet","plugins":[
          {"type":"bridge","name":"ignored","cniVersion":"9.9.9","bridge":"cni0","runtimeConfig":{"stale":1}},
          {"type":"portmap","capabilities":{"portMappings":true,"bandwidth":false}},
          {"type":"bandwidth","capabilities":{"bandwidth":true}},
          {"type":"dnsy","capabilities":{"dns":true,"portMappings":true}}]}
        """, "test");

    private static PodNetworkRequest Request() => new()
    {
        PodId = "abc123",
        NetnsPath = "/run/netns/x",
        PodName = "web-0",
        PodNamespace = "shop",
        PodUid = "5f1e",
        PortMappings = [new CniPortMapping(8080, 80, "TCP"), new CniPortMapping(0, 81), new CniPortMapping(5353, 53, "udp", "127.0.0.1")],
        Dns = new CniDns(["10.0.0.10"], ["svc.cluster.local"], ["ndots:5"]),
        Annotations = new Dictionary<string, string> { [CniBandwidth.IngressAnnotation] = "10M", ["other"] = "x" },
    };

    [Fact]
    public void CniArgsCarryThePodIdentityInOrder()
    {
        var rt = new CniRuntimeConf("abc123", "/ns", "eth0", CniRuntimeConf.PodArgs(Request()), []);
        Assert.Equal("K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=5f1e;IgnoreUnknown=1", rt.ArgsString);
    }

    [Fact]
    public void CapabilityArgsFromThePod()
    {
        var args = CniRuntimeConf.PodCapabilityArgs(Request());
        var mappings = args["portMappings"]!.AsArray();
        Assert.Equal(2, mappings.Count); // hostPort 0 is not published
        Assert.Equal("""{"hostPort":8080,"containerPort":80,"protocol":"tcp"}""", mappings[0]!.ToJsonString());
        Assert.Equal("""{"hostPort":5353,"containerPort":53,"protocol":"udp","hostIP":"127.0.0.1"}""", mappings[1]!.ToJsonString());
        Assert.Equal(10_000_000UL, args["bandwidth"]!["ingressRate"]!.GetValue<ulong>());
        Assert.Equal(CniBandwidth.DefaultBurst, args["bandwidth"]!["ingressBurst"]!.GetValue<ulong>());
        Assert.Null(args["bandwidth"]!["egressRate"]);
        Assert.Equal("""{"servers":["10.0.0.10"],"searches":["svc.cluster.local"],"options":["ndots:5"]}""", args["dns"]!.ToJsonString());
        Assert.Equal("x", args["io.kubernetes.cri.pod-annotations"]!["other"]!.GetValue<string>());
    }

    [Fact]
    public void EmptyPodHasNoCapabilityArgs()
    {
        Assert.Empty(CniRuntimeConf.PodCapabilityArgs(new PodNetworkRequest { PodId = "p", NetnsPath = "/x" }));
    }

    [Theory]
    [InlineData(70000, 80, "tcp", "host_port 70000 must be within 0-65535")]
    [InlineData(-1, 80, "tcp", "host_port -1")]
    [InlineData(80, 0, "tcp", "container_port 0 must be within 1-65535")]
    [InlineData(80, 80, "icmp", "unknown protocol")]
    public void BadPortMappingsAreRefused(int hostPort, int containerPort, string protocol, string expected)
    {
        var request = new PodNetworkRequest { PodId = "p", NetnsPath = "/x", PortMappings = [new CniPortMapping(hostPort, containerPort, protocol)] };
        var error = Assert.Throws<NacelleException>(() => CniRuntimeConf.PodCapabilityArgs(request));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void StdinInjectsNameVersionPrevResultAndOnlyDeclaredCapabilities()
    {
        var caps = CniRuntimeConf.PodCapabilityArgs(Request());
        var prev = """{"cniVersion":"0.4.0","ips":[{"address":"10.1.0.2/24"}]}""";

        var bridge = JsonNode.Parse(CniRuntimeConf.BuildStdin(List, List.Plugins[0], null, caps))!.AsObject();
        Assert.Equal("podnet", bridge["name"]!.GetValue<string>());
        Assert.Equal("0.4.0", bridge["cniVersion"]!.GetValue<string>());
        Assert.Equal("cni0", bridge["bridge"]!.GetValue<string>());
        Assert.False(bridge.ContainsKey("prevResult"));
        Assert.False(bridge.ContainsKey("runtimeConfig") && bridge["runtimeConfig"]!.AsObject().ContainsKey("portMappings"));

        var portmap = JsonNode.Parse(CniRuntimeConf.BuildStdin(List, List.Plugins[1], prev, caps))!.AsObject();
        Assert.Equal("10.1.0.2/24", portmap["prevResult"]!["ips"]![0]!["address"]!.GetValue<string>());
        var rc = portmap["runtimeConfig"]!.AsObject();
        Assert.Equal(["portMappings"], rc.Select(p => p.Key));
        Assert.Equal(8080, rc["portMappings"]![0]!["hostPort"]!.GetValue<int>());

        var bandwidth = JsonNode.Parse(CniRuntimeConf.BuildStdin(List, List.Plugins[2], prev, caps))!.AsObject();
        Assert.Equal(["bandwidth"], bandwidth["runtimeConfig"]!.AsObject().Select(p => p.Key));

        var dns = JsonNode.Parse(CniRuntimeConf.BuildStdin(List, List.Plugins[3], prev, caps))!.AsObject();
        Assert.Equal(["dns", "portMappings"], dns["runtimeConfig"]!.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal));

        // a declared capability the pod has no value for injects nothing
        var bare = JsonNode.Parse(CniRuntimeConf.BuildStdin(List, List.Plugins[1], null, []))!.AsObject();
        Assert.False(bare.ContainsKey("runtimeConfig"));
        Assert.Equal("portmap", bare["type"]!.GetValue<string>());
    }

    [Fact]
    public void StdinDoesNotModifyTheConfiguration()
    {
        var caps = CniRuntimeConf.PodCapabilityArgs(Request());
        _ = CniRuntimeConf.BuildStdin(List, List.Plugins[1], """{"ips":[]}""", caps);
        Assert.DoesNotContain("prevResult", List.Plugins[1].ToJson(), StringComparison.Ordinal);
        Assert.DoesNotContain("runtimeConfig", List.Plugins[1].ToJson(), StringComparison.Ordinal);
    }
}

public sealed class QuantityTests
{
    [Theory]
    [InlineData("10M", 10_000_000)]
    [InlineData("1G", 1_000_000_000)]
    [InlineData("500k", 500_000)]
    [InlineData("1.5M", 1_500_000)]
    [InlineData("1Ki", 1024)]
    [InlineData("2Mi", 2 * 1024 * 1024)]
    [InlineData("1e6", 1_000_000)]
    [InlineData("100m", 1)]
    [InlineData("12345", 12345)]
    [InlineData(" 3T ", 3_000_000_000_000)]
    public void ParsesKubernetesQuantities(string text, long expected)
    {
        Assert.True(Quantity.TryParse(text, out var value));
        Assert.Equal(expected, (long)value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("abc")]
    [InlineData("10MB")]
    [InlineData("M")]
    [InlineData("1 M")]
    [InlineData("1e")]
    [InlineData("1.2.3")]
    public void RefusesNonQuantities(string text) => Assert.False(Quantity.TryParse(text, out _));

    [Fact]
    public void BandwidthFromAnnotations()
    {
        Assert.Null(CniBandwidth.FromAnnotations(new Dictionary<string, string> { ["x"] = "1" }));
        var both = CniBandwidth.FromAnnotations(new Dictionary<string, string>
        {
            [CniBandwidth.IngressAnnotation] = "1M",
            [CniBandwidth.EgressAnnotation] = "2G",
        })!;
        Assert.Equal(1_000_000UL, both.IngressRate);
        Assert.Equal(2_000_000_000UL, both.EgressRate);
        Assert.Equal(CniBandwidth.DefaultBurst, both.EgressBurst);

        var egressOnly = CniBandwidth.FromAnnotations(new Dictionary<string, string> { [CniBandwidth.EgressAnnotation] = "5k" })!;
        Assert.Null(egressOnly.IngressRate);
        Assert.Null(egressOnly.IngressBurst);
        Assert.Equal(5000UL, egressOnly.EgressRate);
    }

    [Theory]
    [InlineData("lots", "not a quantity")]
    [InlineData("10", "outside")]
    [InlineData("2P", "outside")]
    public void BadBandwidthAnnotationsAreRefused(string value, string expected)
    {
        var error = Assert.Throws<NacelleException>(() =>
            CniBandwidth.FromAnnotations(new Dictionary<string, string> { [CniBandwidth.IngressAnnotation] = value }));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.Contains(CniBandwidth.IngressAnnotation, error.Message, StringComparison.Ordinal);
    }
}
