using System.Text.Json.Nodes;
using Nacelle.Sandbox.Network;

namespace Nacelle.Tests.Unit.SandboxNetwork;

public sealed class CniResultCacheTests
{
    private static CniCacheEntry Entry(string network, string containerId, string ifName) => new(
        CniNetworkConfigList.Parse($$$"""{"cniVersion":"1.0.0","name":"{{{network}}}","plugins":[{"type":"bridge","bridge":"b0"},{"type":"portmap","capabilities":{"portMappings":true}}]}""", "/etc/cni/net.d/10.conflist"),
        new CniRuntimeConf(containerId, "/run/netns/p", ifName,
            [new("K8S_POD_NAME", "web"), new("IgnoreUnknown", "1")],
            new JsonObject { ["portMappings"] = new JsonArray(new JsonObject { ["hostPort"] = 8080, ["containerPort"] = 80, ["protocol"] = "tcp" }) }),
        CniResult.Parse("""{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/run/netns/p"}],"ips":[{"address":"10.88.0.9/16","interface":0}]}"""));

    [Fact]
    public void RoundTripKeepsConfigArgumentsAndResult()
    {
        var dir = Path.Combine(Path.GetTempPath(), "nacelle-cache-" + Guid.NewGuid().ToString("N"));
        try
        {
            var cache = new CniResultCache(Path.Combine(dir, "results"));
            var entry = Entry("my-net", "pod42", "eth0");
            cache.Save(entry);

            var path = Path.Combine(dir, "results", "my-net-pod42-eth0");
            Assert.True(File.Exists(path));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            Assert.Equal(["my-net-pod42-eth0"], Directory.GetFiles(Path.Combine(dir, "results")).Select(Path.GetFileName)); // no temp files left

            var loaded = cache.Load("my-net", "pod42", "eth0")!;
            Assert.Equal("my-net", loaded.NetworkName);
            Assert.Equal(entry.Config.ToJson(), loaded.Config.ToJson());
            Assert.Equal("pod42", loaded.Runtime.ContainerId);
            Assert.Equal("/run/netns/p", loaded.Runtime.NetnsPath);
            Assert.Equal("eth0", loaded.Runtime.IfName);
            Assert.Equal("K8S_POD_NAME=web;IgnoreUnknown=1", loaded.Runtime.ArgsString);
            Assert.Equal(entry.Runtime.CapabilityArgs.ToJsonString(), loaded.Runtime.CapabilityArgs.ToJsonString());
            Assert.Equal("10.88.0.9", loaded.Result!.PodIps()[0].Address.ToString());

            // overwrite in place, find by container, delete
            cache.Save(Entry("my-net", "pod42", "eth0"));
            cache.Save(Entry("other-net", "pod42", "eth0"));
            cache.Save(Entry("my-net", "xpod42", "eth0"));
            cache.Save(Entry("my-net", "pod42", "lo"));
            Assert.Equal(["my-net", "other-net"], cache.FindByContainer("pod42", "eth0").Select(e => e.NetworkName));
            cache.Delete("my-net", "pod42", "eth0");
            Assert.Null(cache.Load("my-net", "pod42", "eth0"));
            Assert.Equal(["other-net"], cache.FindByContainer("pod42", "eth0").Select(e => e.NetworkName));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void UnreadableEntriesAreReportedAndSkipped()
    {
        var dir = Path.Combine(Path.GetTempPath(), "nacelle-cache-" + Guid.NewGuid().ToString("N"));
        try
        {
            var cache = new CniResultCache(dir);
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, "net-podx-eth0"), "{garbage");
            var reported = new List<string>();
            Assert.Empty(cache.FindByContainer("podx", "eth0", (p, _) => reported.Add(Path.GetFileName(p))));
            Assert.Equal(["net-podx-eth0"], reported);
            Assert.Throws<Nacelle.Common.NacelleException>(() => cache.Load("net", "podx", "eth0"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
