using System.Diagnostics;
using System.Text.Json;
using Grpc.Core;
using Nacelle.Tests.EndToEnd.Infrastructure;
using Runtime.V1;

namespace Nacelle.Tests.EndToEnd;

/// <summary>
/// Pod network readiness (Status' NetworkReady) and UpdateRuntimeConfig against the real daemon, each on its own temporary
/// CNI conf dir (never the host's /etc/cni/net.d) with Debian's plugins or an empty plugin directory.
/// </summary>
public sealed class CniNetworkTests
{
    private static async Task<RuntimeCondition> NetworkReadyAsync(DaemonProcess daemon)
    {
        var response = await daemon.Client.Runtime.StatusAsync(new StatusRequest());
        return Assert.Single(response.Status.Conditions, c => c.Type == "NetworkReady");
    }

    private static async Task<JsonElement> CniInfoAsync(DaemonProcess daemon)
    {
        var response = await daemon.Client.Runtime.StatusAsync(new StatusRequest { Verbose = true });
        using var json = JsonDocument.Parse(response.Info["cni"]);
        return json.RootElement.Clone();
    }

    /// <summary>Polls Status until NetworkReady satisfies <paramref name="done"/> (the watcher is asynchronous).</summary>
    private static async Task<RuntimeCondition> WaitForNetworkAsync(DaemonProcess daemon, Func<RuntimeCondition, bool> done, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        var condition = await NetworkReadyAsync(daemon);
        while (!done(condition) && clock.Elapsed < timeout)
        {
            await Task.Delay(100);
            condition = await NetworkReadyAsync(daemon);
        }

        return condition;
    }

    private static string Conflist(string name, params string[] pluginTypes) => JsonSerializer.Serialize(new
    {
        cniVersion = "1.0.0",
        name,
        plugins = pluginTypes.Select(type => type == "bridge"
            ? (object)new { type, bridge = "nacelle-e2e0", ipam = new { type = "host-local", ranges = new[] { new[] { new { subnet = "10.99.0.0/24" } } } } }
            : new { type }).ToArray(),
    });

    /// <summary>Writes a config the way installers should: under another name, then renamed into place.</summary>
    private static void Install(string confDir, string fileName, string text)
    {
        var temporary = Path.Combine(confDir, $".{fileName}.tmp");
        File.WriteAllText(temporary, text);
        File.Move(temporary, Path.Combine(confDir, fileName));
    }

    /// <summary>A daemon on its own conf dir with the built-in network chosen (as scripts/run.sh does), no masquerade.</summary>
    private static Task<DaemonProcess> StartWithBuiltinNetworkAsync(IEnumerable<string>? binDirs = null)
    {
        var dir = Directory.CreateTempSubdirectory("nacelle-e2e-").FullName;
        return DaemonProcess.StartAsync(DaemonProcess.CniToml(dir, binDirs, extra: DaemonProcess.BuiltinNetworkKeys), directory: dir);
    }

    [Fact]
    public async Task AnEmptyConfDirWithTheDefaultPluginsIsReadyThroughTheBuiltInNetwork()
    {
        await using var daemon = await StartWithBuiltinNetworkAsync();

        var network = await NetworkReadyAsync(daemon);
        Assert.True(network.Status, $"{network.Reason}: {network.Message}");
        Assert.Equal(string.Empty, network.Reason);
        Assert.Contains("built-in network nacelle-default (10.88.0.0/16)", network.Message);
        Assert.Contains($"no network config found in {daemon.CniConfDir}", network.Message);

        var info = await CniInfoAsync(daemon);
        Assert.True(info.GetProperty("ready").GetBoolean());
        Assert.Equal("nacelle-default", info.GetProperty("network").GetString());
        Assert.True(info.GetProperty("default").GetBoolean());
        Assert.Equal(daemon.CniConfDir, info.GetProperty("confDir").GetString());
        Assert.Equal("10.88.0.0/16", info.GetProperty("podCidr").GetString());

        // The effective config shows the [cni] table; the cache follows --root.
        var status = await daemon.Client.Runtime.StatusAsync(new StatusRequest { Verbose = true });
        using var config = JsonDocument.Parse(status.Info["config"]);
        var cni = config.RootElement.GetProperty("cni");
        Assert.Equal(daemon.CniConfDir, cni.GetProperty("conf_dir").GetString());
        Assert.Equal(DaemonProcess.HostCniBinDir, Assert.Single(cni.GetProperty("bin_dirs").EnumerateArray()).GetString());
        Assert.Equal(string.Empty, cni.GetProperty("cache_dir").GetString());
        Assert.Contains("pod network: watching CNI conf dir", daemon.Output);
    }

    [Fact]
    public async Task AnEmptyPluginDirIsNotReadyAndNamesTheMissingPlugins()
    {
        var dir = Directory.CreateTempSubdirectory("nacelle-e2e-").FullName;
        var bin = Path.Combine(dir, "cni-bin");
        Directory.CreateDirectory(bin);
        await using var daemon = await DaemonProcess.StartAsync(DaemonProcess.CniToml(dir, [bin], DaemonProcess.BuiltinNetworkKeys), directory: dir);

        var network = await NetworkReadyAsync(daemon);
        Assert.False(network.Status);
        Assert.Equal("NetworkPluginNotReady", network.Reason);
        Assert.Contains("bridge", network.Message);
        Assert.Contains("host-local", network.Message);
        Assert.Contains("loopback", network.Message);
        Assert.Contains($"not found in {bin}", network.Message);

        var runtime = (await daemon.Client.Runtime.StatusAsync(new StatusRequest())).Status.Conditions.Single(c => c.Type == "RuntimeReady");
        Assert.True(runtime.Status, runtime.Message); // the node's network is not the runtime's readiness

        var info = await CniInfoAsync(daemon);
        Assert.False(info.GetProperty("ready").GetBoolean());
    }

    [Fact]
    public async Task ByDefaultPodNetworkingIsLeftToTheClusterUntilAConfigAppears()
    {
        // The embedded default (and the package's and chart's configuration): no built-in network, so a node joining a
        // cluster stays NotReady until the cluster's network add-on installs its configuration.
        await using var daemon = await DaemonProcess.StartAsync();

        var network = await NetworkReadyAsync(daemon);
        Assert.False(network.Status);
        Assert.Equal("NetworkPluginNotReady", network.Reason);
        Assert.Contains("cni config uninitialized", network.Message);
        Assert.Contains(daemon.CniConfDir, network.Message);
        Assert.Contains("left to the cluster's network add-on", network.Message);
        Assert.False((await CniInfoAsync(daemon)).GetProperty("ready").GetBoolean());
        var status = await daemon.Client.Runtime.StatusAsync(new StatusRequest { Verbose = true });
        using (var config = JsonDocument.Parse(status.Info["config"]))
        {
            Assert.Equal("none", config.RootElement.GetProperty("cni").GetProperty("default_network").GetString());
        }

        // The add-on's DaemonSet writes its configuration: ready without a restart, with that network.
        Install(daemon.CniConfDir, "10-cluster.conflist", Conflist("e2e-cluster", "bridge", "portmap"));
        network = await WaitForNetworkAsync(daemon, c => c.Status, TimeSpan.FromSeconds(10));
        Assert.True(network.Status, $"{network.Reason}: {network.Message}");
        Assert.Contains("network e2e-cluster from", network.Message);

        // And when it is removed again the node is NotReady again (never the built-in network).
        File.Delete(Path.Combine(daemon.CniConfDir, "10-cluster.conflist"));
        network = await WaitForNetworkAsync(daemon, c => !c.Status, TimeSpan.FromSeconds(10));
        Assert.False(network.Status);
        Assert.Contains("left to the cluster's network add-on", network.Message);
    }

    [Fact]
    public async Task AConfigNeedingAPluginThatIsNotInstalledIsNotReadyNamingIt()
    {
        var dir = Directory.CreateTempSubdirectory("nacelle-e2e-").FullName;
        var toml = DaemonProcess.CniToml(dir);
        Install(Path.Combine(dir, "cni", "net.d"), "10-overlay.conflist", Conflist("e2e-overlay", "e2e-no-such-plugin"));
        await using var daemon = await DaemonProcess.StartAsync(toml, directory: dir);

        var network = await NetworkReadyAsync(daemon);
        Assert.False(network.Status);
        Assert.Equal("NetworkPluginNotReady", network.Reason);
        Assert.Contains("e2e-overlay", network.Message);
        Assert.Contains("e2e-no-such-plugin", network.Message);
        Assert.Contains($"not found in {DaemonProcess.HostCniBinDir}", network.Message);
    }

    [Fact]
    public async Task AConflistInstalledAfterStartIsUsedWithoutARestart()
    {
        await using var daemon = await StartWithBuiltinNetworkAsync();
        Assert.Contains("built-in network", (await NetworkReadyAsync(daemon)).Message);

        Install(daemon.CniConfDir, "10-e2e.conflist", Conflist("e2e-net", "bridge", "portmap"));
        var network = await WaitForNetworkAsync(daemon, c => c.Message.Contains("e2e-net", StringComparison.Ordinal), TimeSpan.FromSeconds(10));
        Assert.True(network.Status, $"{network.Reason}: {network.Message}");
        Assert.Contains($"network e2e-net from {Path.Combine(daemon.CniConfDir, "10-e2e.conflist")}", network.Message);
        var info = await CniInfoAsync(daemon);
        Assert.Equal("e2e-net", info.GetProperty("network").GetString());
        Assert.False(info.GetProperty("default").GetBoolean());

        // A broken file sorting first is skipped and named; the valid one stays in use.
        Install(daemon.CniConfDir, "05-broken.conflist", "{ this is not json");
        network = await WaitForNetworkAsync(daemon, c => c.Message.Contains("05-broken", StringComparison.Ordinal), TimeSpan.FromSeconds(10));
        Assert.True(network.Status, $"{network.Reason}: {network.Message}");
        Assert.Contains("e2e-net", network.Message);
        Assert.Contains("05-broken.conflist", network.Message);

        // Removing the configs falls back to the built-in network.
        File.Delete(Path.Combine(daemon.CniConfDir, "10-e2e.conflist"));
        File.Delete(Path.Combine(daemon.CniConfDir, "05-broken.conflist"));
        network = await WaitForNetworkAsync(daemon, c => c.Message.Contains("built-in network", StringComparison.Ordinal), TimeSpan.FromSeconds(10));
        Assert.True(network.Status, $"{network.Reason}: {network.Message}");
        Assert.Contains("built-in network nacelle-default", network.Message);
    }

    [Fact]
    public async Task UpdateRuntimeConfigSetsTheBuiltInNetworksPodCidr()
    {
        await using var daemon = await StartWithBuiltinNetworkAsync();
        var runtime = daemon.Client.Runtime;

        static UpdateRuntimeConfigRequest Request(string cidr) => new()
        {
            RuntimeConfig = new Runtime.V1.RuntimeConfig { NetworkConfig = new NetworkConfig { PodCidr = cidr } },
        };

        await runtime.UpdateRuntimeConfigAsync(Request("10.244.1.0/24"));
        Assert.Contains("built-in network nacelle-default (10.244.1.0/24)", (await NetworkReadyAsync(daemon)).Message);
        Assert.Equal("10.244.1.0/24", (await CniInfoAsync(daemon)).GetProperty("podCidr").GetString());

        // Dual stack, as kubelet sends it.
        await runtime.UpdateRuntimeConfigAsync(Request("10.244.2.0/24,fd00:10:244:2::/64"));
        Assert.Equal("10.244.2.0/24,fd00:10:244:2::/64", (await CniInfoAsync(daemon)).GetProperty("podCidr").GetString());
        Assert.True((await NetworkReadyAsync(daemon)).Status);

        // Empty changes nothing; so does a request without a network config.
        await runtime.UpdateRuntimeConfigAsync(Request(string.Empty));
        await runtime.UpdateRuntimeConfigAsync(new UpdateRuntimeConfigRequest());
        Assert.Equal("10.244.2.0/24,fd00:10:244:2::/64", (await CniInfoAsync(daemon)).GetProperty("podCidr").GetString());

        // Invalid CIDRs are refused, named, and change nothing.
        foreach (var (bad, named) in new[] { ("10.244.0.0", "'10.244.0.0'"), ("10.244.0.1/16", "'10.244.0.1/16'"), ("banana/24", "'banana/24'") })
        {
            var e = await Assert.ThrowsAsync<RpcException>(async () => await runtime.UpdateRuntimeConfigAsync(Request(bad)));
            Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
            Assert.Contains(named, e.Status.Detail);
        }

        Assert.Equal("10.244.2.0/24,fd00:10:244:2::/64", (await CniInfoAsync(daemon)).GetProperty("podCidr").GetString());
    }

    [Fact]
    public async Task AnInvalidCniKeyStopsTheDaemonNamingIt()
    {
        var dir = Directory.CreateTempSubdirectory("nacelle-e2e-").FullName;
        await using var daemon = await DaemonProcess.StartAsync(
            DaemonProcess.CniToml(dir, extra: "default_pod_cidr = \"10.88.0.0/33\""), directory: dir, waitUntilServing: false);

        Assert.Equal(2, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains("cni.default_pod_cidr: pod CIDR '10.88.0.0/33'", daemon.Output);
    }
}
