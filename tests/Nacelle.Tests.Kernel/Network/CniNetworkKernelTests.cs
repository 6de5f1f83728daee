// Compiled only when the kernel test project references src/Sandbox (see the note in CniKernelScope.cs).
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Nacelle.Common;
using Nacelle.Sandbox.Network;

namespace Nacelle.Tests.Kernel.Cni;

/// <summary>
/// The CNI client against Debian's real plugins (/usr/lib/cni) on the built-in default network, with a test bridge,
/// subnet, IPAM dir and cache dir per test. Root only; one class so the tests run one after the other.
/// </summary>
public sealed class CniNetworkKernelTests
{
    private static string Ping(string netns, string address) =>
        CniKernelScope.Check(CniKernelScope.Run("ip", "netns", "exec", netns, "/bin/busybox", "ping", "-c1", "-W2", address),
            $"ping {address} from {netns}");

    private static string HostVeth(PodNetworkResult result, string bridge)
    {
        var interfaces = JsonNode.Parse(result.Result.ToJson())!["interfaces"]!.AsArray();
        return interfaces.Select(i => i!.AsObject())
            .Where(i => i["sandbox"] is null && i["name"]!.GetValue<string>() != bridge)
            .Select(i => i["name"]!.GetValue<string>()).Single();
    }

    /// <summary>The addresses host-local has handed out (one file per address in its data dir).</summary>
    private static List<string> AllocatedAddresses(CniKernelScope scope)
    {
        var dir = Path.Combine(scope.IpamDir, CniOptions.DefaultNetworkNameValue);
        return Directory.Exists(dir)
            ? [.. Directory.GetFiles(dir).Select(Path.GetFileName).Where(n => System.Net.IPAddress.TryParse(n, out _)).Select(n => n!)]
            : [];
    }

    [Fact]
    public async Task TwoPodsGetAddressesPingEachOtherAndDelReleasesEverythingEvenAfterARestart()
    {
        Assert.SkipUnless(CniKernelScope.Available, "needs root, Debian's CNI plugins in /usr/lib/cni and iptables");

        await using var scope = new CniKernelScope();
        var nsA = scope.NewNetns();
        var nsB = scope.NewNetns();
        var podA = "pa" + scope.Id;
        var podB = "pb" + scope.Id;
        var ipamNetworkDir = Path.Combine(scope.IpamDir, CniOptions.DefaultNetworkNameValue);

        PodNetworkResult a;
        PodNetworkResult b;
        using (var network = new CniNetwork(scope.Options()))
        {
            var status = network.Status();
            Assert.True(status.Ready, status.Message);
            Assert.True(status.IsDefaultNetwork);

            a = await network.SetUpPodAsync(scope.Track(network, scope.Request(nsA, podA)), CancellationToken.None);
            b = await network.SetUpPodAsync(scope.Track(network, scope.Request(nsB, podB)), CancellationToken.None);

            var prefix = scope.Subnet[..scope.Subnet.LastIndexOf('.')] + ".";
            Assert.StartsWith(prefix, a.PrimaryIp, StringComparison.Ordinal);
            Assert.StartsWith(prefix, b.PrimaryIp, StringComparison.Ordinal);
            Assert.NotEqual(a.PrimaryIp, b.PrimaryIp);
            Assert.Equal("eth0", a.Interface!.Name);

            // the kernel agrees: eth0 has the address, lo is up
            Assert.Contains($"inet {a.Ips[0].Cidr}", CniKernelScope.Check(CniKernelScope.Run("ip", "-n", nsA, "addr", "show", "dev", "eth0"), "ip addr"), StringComparison.Ordinal);
            Assert.Contains($"inet {b.Ips[0].Cidr}", CniKernelScope.Check(CniKernelScope.Run("ip", "-n", nsB, "addr", "show", "dev", "eth0"), "ip addr"), StringComparison.Ordinal);
            var lo = CniKernelScope.Check(CniKernelScope.Run("ip", "-n", nsA, "addr", "show", "dev", "lo"), "ip addr lo");
            Assert.Contains("inet 127.0.0.1/8", lo, StringComparison.Ordinal);
            Assert.Contains("UP", lo, StringComparison.Ordinal);

            Ping(nsA, b.PrimaryIp!);
            Ping(nsB, a.PrimaryIp!);
            Ping(nsA, "127.0.0.1");

            Assert.True(File.Exists(Path.Combine(ipamNetworkDir, a.PrimaryIp!)));
            Assert.True(File.Exists(Path.Combine(ipamNetworkDir, b.PrimaryIp!)));
            var vethA = HostVeth(a, scope.BridgeName);
            Assert.True(CniKernelScope.LinkExists(vethA));
            await network.CheckPodAsync(scope.Request(nsA, podA), CancellationToken.None);

            // DEL of pod A: veth gone, address released, cache gone; a second DEL is harmless
            await network.TearDownPodAsync(scope.Request(nsA, podA), CancellationToken.None);
            Assert.False(CniKernelScope.LinkExists(vethA));
            Assert.False(File.Exists(Path.Combine(ipamNetworkDir, a.PrimaryIp!)));
            Assert.False(File.Exists(Path.Combine(scope.CacheDir, "results", $"{CniOptions.DefaultNetworkNameValue}-{podA}-eth0")));
            Assert.DoesNotContain("inet ", CniKernelScope.Run("ip", "-n", nsA, "addr", "show", "dev", "eth0").Stdout, StringComparison.Ordinal);
            await network.TearDownPodAsync(scope.Request(nsA, podA), CancellationToken.None);
        }

        // "restart": a new instance, and the admin has meanwhile installed a different network and changed the pod CIDR
        var otherBridge = scope.BridgeName + "x";
        scope.Guard(otherBridge);
        File.WriteAllText(Path.Combine(scope.ConfDir, "10-other.conflist"), $$$"""
            {"cniVersion":"1.0.0","name":"other","plugins":[{"type":"bridge","bridge":"{{{otherBridge}}}","ipMasq":false,
              "ipam":{"type":"host-local","dataDir":"{{{scope.IpamDir}}}","ranges":[[{"subnet":"10.213.0.0/24"}]]}}]}
            """);
        var vethB = HostVeth(b, scope.BridgeName);
        Assert.True(CniKernelScope.LinkExists(vethB));
        using (var restarted = new CniNetwork(scope.Options() with { DefaultPodCidr = "10.213.250.0/24" }))
        {
            Assert.Equal("other", restarted.Status().Network!.Name);
            await restarted.TearDownPodAsync(scope.Request(nsB, podB), CancellationToken.None);
        }

        Assert.False(CniKernelScope.LinkExists(vethB));
        Assert.False(File.Exists(Path.Combine(ipamNetworkDir, b.PrimaryIp!)));
        Assert.False(CniKernelScope.LinkExists(otherBridge)); // the current config was not used
        Assert.Empty(Directory.GetFiles(Path.Combine(scope.CacheDir, "results")));
    }

    [Fact]
    public async Task PortmapInstallsAHostPortRuleAndDelRemovesIt()
    {
        Assert.SkipUnless(CniKernelScope.Available, "needs root, Debian's CNI plugins in /usr/lib/cni and iptables");

        await using var scope = new CniKernelScope();
        var ns = scope.NewNetns();
        var pod = "pp" + scope.Id;
        var hostPort = RandomNumberGenerator.GetInt32(20000, 30000);
        using var network = new CniNetwork(scope.Options());
        var request = scope.Track(network, scope.Request(ns, pod) with { PortMappings = [new CniPortMapping(hostPort, 80, "TCP", scope.Gateway)] });

        var result = await network.SetUpPodAsync(request, CancellationToken.None);

        // traffic to the host port reaches a server in the pod (busybox httpd, stopped by its pid below)
        var www = Path.Combine(scope.Root, "www");
        Directory.CreateDirectory(www);
        File.WriteAllText(Path.Combine(www, "index.html"), "hello from " + pod);
        var server = scope.Start("ip", "netns", "exec", ns, "/bin/busybox", "httpd", "-f", "-p", "80", "-h", www);
        using var http = new HttpClient(new HttpClientHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(2) };
        string? body = null;
        string? lastError = null;
        for (var i = 0; i < 50 && body is null; i++)
        {
            try
            {
                body = await http.GetStringAsync($"http://{scope.Gateway}:{hostPort}/");
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                lastError = e.Message;
                await Task.Delay(100);
            }
        }

        Assert.True(body == "hello from " + pod, $"via {scope.Gateway}:{hostPort}: '{body}' ({lastError})");
        server.Kill();
        server.WaitForExit(5000);

        var port = CniKernelScope.Format(hostPort);
        var rules = CniKernelScope.Check(CniKernelScope.Run("iptables", "-t", "nat", "-S"), "iptables -t nat -S").Split('\n');
        Assert.Contains(rules, r => r.Contains($"--dport {port}", StringComparison.Ordinal) && r.Contains($"{result.PrimaryIp}:80", StringComparison.Ordinal));

        await network.TearDownPodAsync(request, CancellationToken.None);
        rules = CniKernelScope.Check(CniKernelScope.Run("iptables", "-t", "nat", "-S"), "iptables -t nat -S").Split('\n');
        Assert.DoesNotContain(rules, r => r.Contains($"--dport {port}", StringComparison.Ordinal));
        Assert.DoesNotContain(rules, r => r.Contains(result.PrimaryIp + ":80", StringComparison.Ordinal));
    }

    [Fact]
    public async Task TheBuiltInNetworkMasqueradesTrafficLeavingThePodRangeAndDelRemovesTheRule()
    {
        Assert.SkipUnless(CniKernelScope.Available, "needs root, Debian's CNI plugins in /usr/lib/cni and iptables");

        // The only test network with masquerade on. It is checked by the nat rules the bridge plugin installs, never by
        // traffic: the scope's FORWARD guard keeps every packet from the bridge on this machine.
        await using var scope = new CniKernelScope();
        var ns = scope.NewNetns();
        var pod = "pm" + scope.Id;
        using var network = new CniNetwork(scope.Options() with { DefaultNetworkMasquerade = true });
        var request = scope.Track(network, scope.Request(ns, pod));
        var result = await network.SetUpPodAsync(request, CancellationToken.None);

        static string[] NatRules() => CniKernelScope.Check(CniKernelScope.Run("iptables", "-t", "nat", "-S"), "iptables -t nat -S").Split('\n');
        var rules = NatRules();
        // POSTROUTING sends the pod's traffic to a chain of its own (commented with the network and the pod's id)...
        var jump = Assert.Single(rules, r => r.StartsWith("-A POSTROUTING ", StringComparison.Ordinal)
            && r.Contains($"-s {result.PrimaryIp}/32", StringComparison.Ordinal) && r.Contains(pod, StringComparison.Ordinal));
        var chain = jump[(jump.LastIndexOf("-j ", StringComparison.Ordinal) + 3)..].Trim();
        Assert.StartsWith("CNI-", chain, StringComparison.Ordinal);
        // ...which leaves traffic inside the pod range alone and masquerades the rest (multicast excepted).
        Assert.Contains(rules, r => r.StartsWith($"-A {chain} ", StringComparison.Ordinal) && r.Contains($"-d {scope.Subnet}", StringComparison.Ordinal)
            && r.Contains("-j ACCEPT", StringComparison.Ordinal));
        Assert.Contains(rules, r => r.StartsWith($"-A {chain} ", StringComparison.Ordinal) && r.Contains("! -d 224.0.0.0/4", StringComparison.Ordinal)
            && r.Contains("-j MASQUERADE", StringComparison.Ordinal));

        await network.TearDownPodAsync(request, CancellationToken.None);
        rules = NatRules();
        Assert.DoesNotContain(rules, r => r.Contains(chain, StringComparison.Ordinal));
        Assert.DoesNotContain(rules, r => r.Contains($"-s {result.PrimaryIp}/32", StringComparison.Ordinal));
    }

    [Fact]
    public async Task DelAfterTheNetnsIsGoneStillReleasesTheAddress()
    {
        Assert.SkipUnless(CniKernelScope.Available, "needs root, Debian's CNI plugins in /usr/lib/cni and iptables");

        await using var scope = new CniKernelScope();
        var ns = scope.NewNetns();
        var pod = "pg" + scope.Id;
        using var network = new CniNetwork(scope.Options());
        var result = await network.SetUpPodAsync(scope.Track(network, scope.Request(ns, pod)), CancellationToken.None);
        var veth = HostVeth(result, scope.BridgeName);
        var ipFile = Path.Combine(scope.IpamDir, CniOptions.DefaultNetworkNameValue, result.PrimaryIp!);
        Assert.True(File.Exists(ipFile));

        scope.DeleteNetns(ns);
        await network.TearDownPodAsync(scope.Request(ns, pod), CancellationToken.None);

        Assert.False(File.Exists(ipFile));
        // With the namespace gone the plugin has no veth to delete: the kernel deletes the pair while it destroys the
        // namespace, in a work queue of its own, which a loaded machine may not have reached yet (up to 10 s).
        for (var i = 0; i < 100 && CniKernelScope.LinkExists(veth); i++)
        {
            await Task.Delay(100);
        }

        Assert.False(CniKernelScope.LinkExists(veth));
        Assert.Empty(Directory.GetFiles(Path.Combine(scope.CacheDir, "results")));
    }

    [Fact]
    public async Task CheckNoticesAMissingInterfaceAndAFailedAddLeavesNothing()
    {
        Assert.SkipUnless(CniKernelScope.Available, "needs root, Debian's CNI plugins in /usr/lib/cni and iptables");

        await using var scope = new CniKernelScope();
        var ns = scope.NewNetns();
        var pod = "pc" + scope.Id;
        using var network = new CniNetwork(scope.Options());
        var request = scope.Track(network, scope.Request(ns, pod));
        await network.SetUpPodAsync(request, CancellationToken.None);
        await network.CheckPodAsync(request, CancellationToken.None);

        CniKernelScope.Check(CniKernelScope.Run("ip", "-n", ns, "link", "del", "eth0"), "ip link del eth0");
        var error = await Assert.ThrowsAsync<NacelleException>(() => network.CheckPodAsync(request, CancellationToken.None));
        Assert.Contains("CHECK", error.Message, StringComparison.Ordinal);
        await network.TearDownPodAsync(request, CancellationToken.None);
        Assert.Equal([], AllocatedAddresses(scope));

        // a second ADD of the same pod into the same netns fails (eth0 exists): the error names the plugin and nothing leaks
        var ns2 = scope.NewNetns();
        CniKernelScope.Check(CniKernelScope.Run("ip", "-n", ns2, "link", "add", "eth0", "type", "veth", "peer", "name", "p0"), "ip link add veth eth0");
        var failed = await Assert.ThrowsAsync<NacelleException>(() => network.SetUpPodAsync(scope.Track(network, scope.Request(ns2, "pd" + scope.Id)), CancellationToken.None));
        Assert.Contains("bridge ADD", failed.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(Path.Combine(scope.CacheDir, "results")));
        Assert.Equal([], AllocatedAddresses(scope));
    }
}
