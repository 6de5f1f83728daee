using Nacelle.Tests.Support;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Nacelle.Sandbox.Network;

namespace Nacelle.Tests.Kernel.Cni;

/// <summary>
/// Everything one CNI kernel test creates, removed on dispose even when the test failed: network namespaces
/// (nacelle-t-&lt;random&gt;-&lt;n&gt;), a test bridge (nct&lt;random&gt;) fenced off from the host by iptables FORWARD drops
/// installed before any plugin runs, temp conf/cache/IPAM dirs, portmap's shared nat chains when the test created them,
/// and ip_forward when the bridge plugin turned it on.
/// </summary>
internal sealed class CniKernelScope : IAsyncDisposable
{
    public const string PluginDir = "/usr/lib/cni";

    private readonly List<string> _namespaces = [];
    private readonly List<Process> _processes = [];
    private readonly List<(CniNetwork Network, PodNetworkRequest Request)> _pods = [];
    private readonly List<string[]> _guards = [];
    private readonly List<string> _bridges = [];
    private readonly PortmapChains _portmap;
    private readonly string? _ipForwardBefore;

    public CniKernelScope()
    {
        Id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        BridgeName = "nct" + Id; // 11 characters, within IFNAMSIZ
        Subnet = $"10.213.{RandomNumberGenerator.GetInt32(1, 255)}.0/24";
        Root = Path.Combine(Path.GetTempPath(), "nacelle-cni-k-" + Id);
        ConfDir = Path.Combine(Root, "net.d");
        CacheDir = Path.Combine(Root, "cache");
        IpamDir = Path.Combine(Root, "ipam");
        Directory.CreateDirectory(ConfDir);
        _portmap = PortmapChains.Use();
        _ipForwardBefore = File.Exists("/proc/sys/net/ipv4/ip_forward") ? File.ReadAllText("/proc/sys/net/ipv4/ip_forward").Trim() : null;
        Guard(BridgeName);
    }

    /// <summary>Root, the real plugins and iptables are needed; tests return early without them.</summary>
    public static bool Available =>
        Environment.UserName == "root" && File.Exists(Path.Combine(PluginDir, "bridge")) && File.Exists(Path.Combine(PluginDir, "host-local"))
        && File.Exists(Path.Combine(PluginDir, "portmap")) && File.Exists(Path.Combine(PluginDir, "loopback"))
        && Run("iptables", "-S", "FORWARD").Exit == 0;

    public string Id { get; }
    public string BridgeName { get; }
    public string Subnet { get; }
    public string Root { get; }
    public string ConfDir { get; }
    public string CacheDir { get; }
    public string IpamDir { get; }

    public CniOptions Options() => new()
    {
        ConfDir = ConfDir,
        BinDirs = CniOptions.DefaultBinDirs,
        CacheDir = CacheDir,
        HostLocalDataDir = IpamDir,
        DefaultBridgeName = BridgeName,
        DefaultPodCidr = Subnet,
        // Test networks never masquerade (nothing leaves the machine); the one masquerade test turns it on.
        DefaultNetworkMasquerade = false,
        PluginTimeout = TimeSpan.FromSeconds(30),
    };

    /// <summary>Fences <paramref name="bridge"/> off from the host's forwarding path (before anything creates it).</summary>
    public void Guard(string bridge)
    {
        _bridges.Add(bridge);
        string[][] rules =
        [
            ["FORWARD", "-i", bridge, "!", "-o", bridge, "-j", "DROP"],
            ["FORWARD", "-o", bridge, "!", "-i", bridge, "-j", "DROP"],
        ];
        foreach (var rule in rules)
        {
            Check(Run("iptables", ["-I", .. rule]), "iptables -I " + string.Join(' ', rule));
            _guards.Add(rule);
        }
    }

    /// <summary>A new network namespace; returns its name (its path is /run/netns/&lt;name&gt;).</summary>
    public string NewNetns()
    {
        var name = $"nacelle-t-{Id}-{_namespaces.Count}";
        Check(Run("ip", "netns", "add", name), "ip netns add " + name);
        _namespaces.Add(name);
        return name;
    }

    public static string NetnsPath(string name) => "/run/netns/" + name;

    public void DeleteNetns(string name) => Run("ip", "netns", "del", name);

    public PodNetworkRequest Request(string netns, string podId) => new()
    {
        PodId = podId,
        NetnsPath = NetnsPath(netns),
        PodName = podId,
        PodNamespace = "nacelle-test",
        PodUid = Guid.NewGuid().ToString(),
    };

    public static (int Exit, string Stdout, string Stderr) Run(string file, params string[] arguments) =>
        Nacelle.Tests.Support.TestProcesses.Run(file, arguments);

    public static string Check((int Exit, string Stdout, string Stderr) run, string what)
    {
        Assert.True(run.Exit == 0, $"{what} failed ({run.Exit}): {run.Stderr}{run.Stdout}");
        return run.Stdout;
    }

    public static bool LinkExists(string name) => Run("ip", "link", "show", "dev", name).Exit == 0;

    /// <summary>Starts a process this scope stops (by its pid) on dispose.</summary>
    public Process Start(string file, params string[] arguments)
    {
        var info = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardInput = true };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        var process = Process.Start(info)!;
        _processes.Add(process);
        return process;
    }

    /// <summary>The bridge's gateway address (the subnet's first address, host-local's default gateway).</summary>
    public string Gateway => Subnet[..Subnet.LastIndexOf('.')] + ".1";

    /// <summary>Remembers a pod so dispose tears its network down (CNI DEL, idempotent) if the test did not.</summary>
    public PodNetworkRequest Track(CniNetwork network, PodNetworkRequest request)
    {
        _pods.Add((network, request));
        return request;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes)
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill();
                    process.WaitForExit(5000);
                }
            }
            catch (InvalidOperationException)
            {
            }

            process.Dispose();
        }

        foreach (var (network, request) in _pods)
        {
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
                await network.TearDownPodAsync(request, timeout.Token);
            }
            catch (Exception)
            {
                // keep cleaning; the netns, bridge and chains below go regardless
            }
        }

        foreach (var ns in _namespaces)
        {
            Run("ip", "netns", "del", ns);
        }

        foreach (var bridge in _bridges)
        {
            if (LinkExists(bridge))
            {
                Run("ip", "link", "del", bridge);
            }
        }

        foreach (var rule in _guards)
        {
            Run("iptables", ["-D", .. rule]);
        }

        _portmap.Dispose();

        if (_ipForwardBefore == "0" && File.ReadAllText("/proc/sys/net/ipv4/ip_forward").Trim() != "0")
        {
            File.WriteAllText("/proc/sys/net/ipv4/ip_forward", "0");
        }

        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    public static string Format(int value) => value.ToString(CultureInfo.InvariantCulture);
}
