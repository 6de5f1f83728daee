using Nacelle.Tests.Support;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;

namespace Nacelle.Tests.EndToEnd.Infrastructure;

/// <summary>
/// A CNI test network for one daemon: a conflist (loopback-free chain of bridge <c>nce2e&lt;hex&gt;</c> with isGateway and no
/// masquerade, host-local on a random 10.217.N.0/24 with its data dir inside the test directory, portmap with the
/// portMappings capability) written into the daemon's conf dir, and an iptables FORWARD guard that fences the bridge off from
/// the host, installed before any pod exists. Disposing removes, even after a failed test: processes started through
/// <see cref="Start"/> (by pid), portmap rules of this network, portmap's shared nat chains when this object created them
/// and nothing else uses them, the bridge, the guard, and ip_forward when it was off before.
/// </summary>
internal sealed class TestBridge : IAsyncDisposable
{
    /// <summary>Where Debian's containernetworking-plugins live (as <see cref="DaemonProcess.HostCniBinDir"/>).</summary>
    public const string PluginDir = DaemonProcess.HostCniBinDir;

    /// <summary>busybox-static (ping, nc) runs inside pod network namespaces through nsenter.</summary>
    public const string Busybox = "/bin/busybox";


    private readonly List<Process> _processes = [];
    private readonly List<string[]> _guards = [];
    private readonly PortmapChains _portmap;
    private readonly string? _ipForwardBefore;

    /// <summary>Creates the names and installs the FORWARD guard; <paramref name="directory"/> is the daemon's directory.</summary>
    public TestBridge(string directory)
    {
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
        BridgeName = "nce2e" + id; // 11 characters, within IFNAMSIZ
        NetworkName = "nce2e-net-" + id;
        var third = RandomNumberGenerator.GetInt32(1, 255);
        Subnet = $"10.217.{third}.0/24";
        Gateway = $"10.217.{third}.1";
        IpamDir = Path.Combine(directory, "ipam");
        _portmap = PortmapChains.Use();
        _ipForwardBefore = File.Exists("/proc/sys/net/ipv4/ip_forward") ? File.ReadAllText("/proc/sys/net/ipv4/ip_forward").Trim() : null;
        try
        {
            InstallGuard();
        }
        catch
        {
            RemoveGuard();
            throw;
        }
    }

    /// <summary>Root, the plugins, iptables, nsenter and busybox are needed; tests return early without them.</summary>
    public static bool Available =>
        Environment.UserName == "root"
        && new[] { "bridge", "host-local", "portmap", "loopback" }.All(p => File.Exists(Path.Combine(PluginDir, p)))
        && File.Exists(Busybox) && File.Exists("/usr/bin/nsenter")
        && Run("iptables", "-S", "FORWARD").Exit == 0;

    public string BridgeName { get; }

    public string NetworkName { get; }

    public string Subnet { get; }

    /// <summary>The bridge's address (host-local's default gateway: the subnet's first address).</summary>
    public string Gateway { get; }

    /// <summary>host-local's data dir (one file per reserved IP under &lt;dir&gt;/&lt;network name&gt;/).</summary>
    public string IpamDir { get; }

    /// <summary>The directory host-local keeps this network's reservations in.</summary>
    public string ReservationDir => Path.Combine(IpamDir, NetworkName);

    /// <summary>The addresses host-local holds on this network (one file per address in its data dir).</summary>
    public IReadOnlyList<string> Reservations() =>
        Directory.Exists(ReservationDir)
            ? [.. Directory.GetFiles(ReservationDir).Select(Path.GetFileName).OfType<string>().Where(name => System.Net.IPAddress.TryParse(name, out _))]
            : [];

    /// <summary>The conflist: bridge (isGateway, no ipMasq) with host-local, then portmap with the portMappings capability.</summary>
    public string Conflist() => JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["cniVersion"] = "1.0.0",
        ["name"] = NetworkName,
        ["plugins"] = new object[]
        {
            new Dictionary<string, object>
            {
                ["type"] = "bridge",
                ["bridge"] = BridgeName,
                ["isGateway"] = true,
                ["ipMasq"] = false,
                ["hairpinMode"] = true,
                ["ipam"] = new Dictionary<string, object>
                {
                    ["type"] = "host-local",
                    ["dataDir"] = IpamDir,
                    ["ranges"] = new[] { new[] { new Dictionary<string, string> { ["subnet"] = Subnet } } },
                    ["routes"] = new[] { new Dictionary<string, string> { ["dst"] = "0.0.0.0/0" } },
                },
            },
            new Dictionary<string, object>
            {
                ["type"] = "portmap",
                ["capabilities"] = new Dictionary<string, bool> { ["portMappings"] = true },
                ["snat"] = true,
            },
        },
    });

    /// <summary>The [cni] table of a daemon using only this network: the conflist in its conf dir, no built-in network.</summary>
    public string InstallInto(string directory)
    {
        var toml = DaemonProcess.CniToml(directory, extra: "default_network = \"none\"");
        var confDir = Path.Combine(directory, "cni", "net.d");
        var temporary = Path.Combine(confDir, ".10-e2e.conflist.tmp");
        File.WriteAllText(temporary, Conflist());
        File.Move(temporary, Path.Combine(confDir, "10-e2e.conflist"));
        return toml;
    }

    /// <summary>Starts a process that dispose stops by its pid (when the test has not).</summary>
    public Process Start(string file, params string[] arguments)
    {
        var info = new ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        var process = Process.Start(info)!;
        process.StandardInput.Close();
        _processes.Add(process);
        return process;
    }

    /// <summary>Stops a process started by <see cref="Start"/> (SIGKILL by pid) and waits for it.</summary>
    public static void Stop(Process process)
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
            // already reaped
        }
    }

    /// <summary>Runs a program to completion (30 s at most) and returns its exit code and output.</summary>
    public static (int Exit, string Stdout, string Stderr) Run(string file, params string[] arguments) =>
        Nacelle.Tests.Support.TestProcesses.Run(file, arguments);

    /// <summary>Runs busybox's ping once from inside <paramref name="netnsPath"/>; returns its exit code and output.</summary>
    public static (int Exit, string Stdout, string Stderr) Ping(string netnsPath, string address) =>
        Run("nsenter", $"--net={netnsPath}", Busybox, "ping", "-c1", "-W2", address);

    public static bool LinkExists(string name) => Run("ip", "link", "show", "dev", name).Exit == 0;

    /// <summary>The nat table's rules that mention this network (portmap's comments name it).</summary>
    public IReadOnlyList<string> PortmapRules() =>
        [.. Run("iptables-save", "-t", "nat").Stdout.Split('\n').Where(l => l.Contains(NetworkName, StringComparison.Ordinal))];

    /// <summary>Every iptables rule (filter and nat) naming the bridge or the network.</summary>
    public IReadOnlyList<string> RulesNamingThisNetwork() =>
        [.. Run("iptables-save").Stdout.Split('\n').Where(l => l.Contains(BridgeName, StringComparison.Ordinal) || l.Contains(NetworkName, StringComparison.Ordinal))];

    private void InstallGuard()
    {
        string[][] rules =
        [
            ["FORWARD", "-i", BridgeName, "!", "-o", BridgeName, "-j", "DROP"],
            ["FORWARD", "-o", BridgeName, "!", "-i", BridgeName, "-j", "DROP"],
        ];
        foreach (var rule in rules)
        {
            var run = Run("iptables", ["-I", .. rule]);
            if (run.Exit != 0)
            {
                throw new InvalidOperationException($"iptables -I {string.Join(' ', rule)} failed ({run.Exit}): {run.Stderr}");
            }

            _guards.Add(rule);
        }
    }

    private void RemoveGuard()
    {
        foreach (var rule in _guards)
        {
            Run("iptables", ["-D", .. rule]);
        }

        _guards.Clear();
    }

    /// <summary>Removes portmap's per-pod chains of this network and the jumps to them (leftovers of a failed test).</summary>
    private void RemovePortmapLeftovers()
    {
        var rules = Run("iptables-save", "-t", "nat").Stdout.Split('\n');
        var chains = new HashSet<string>(StringComparer.Ordinal);
        foreach (var rule in rules.Where(r => r.StartsWith("-A ", StringComparison.Ordinal) && r.Contains(NetworkName, StringComparison.Ordinal)))
        {
            var parts = rule.Split(' ');
            var jump = Array.IndexOf(parts, "-j");
            if (jump > 0 && jump + 1 < parts.Length && parts[jump + 1].StartsWith("CNI-", StringComparison.Ordinal)
                && !PortmapChains.Shared.Contains(parts[jump + 1]))
            {
                chains.Add(parts[jump + 1]);
            }

            if (parts[1].StartsWith("CNI-DN-", StringComparison.Ordinal) || parts[1].StartsWith("CNI-SN-", StringComparison.Ordinal))
            {
                chains.Add(parts[1]);
            }

            // The rule text is shell-quoted (comments): let the shell split it.
            Run("/bin/sh", "-c", "iptables -t nat -D " + rule[3..]);
        }

        foreach (var chain in chains)
        {
            Run("iptables", "-t", "nat", "-F", chain);
            Run("iptables", "-t", "nat", "-X", chain);
        }
    }

    public ValueTask DisposeAsync()
    {
        foreach (var process in _processes)
        {
            Stop(process);
            process.Dispose();
        }

        RemovePortmapLeftovers();
        if (LinkExists(BridgeName))
        {
            Run("ip", "link", "del", BridgeName);
        }

        RemoveGuard();
        _portmap.Dispose();

        if (_ipForwardBefore == "0" && File.ReadAllText("/proc/sys/net/ipv4/ip_forward").Trim() != "0")
        {
            File.WriteAllText("/proc/sys/net/ipv4/ip_forward", "0");
        }

        return ValueTask.CompletedTask;
    }

    public static string Format(int value) => value.ToString(CultureInfo.InvariantCulture);
}
