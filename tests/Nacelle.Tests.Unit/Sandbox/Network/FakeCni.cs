using System.Text.Json.Nodes;
using Nacelle.Sandbox.Network;

namespace Nacelle.Tests.Unit.SandboxNetwork;

/// <summary>
/// A scratch directory with a conf dir, a bin dir of fake plugins (shell scripts that record their environment and stdin
/// and print what the test tells them to), a cache dir and a stand-in netns file. Removed on dispose.
/// </summary>
internal sealed class FakeCni : IDisposable
{
    public FakeCni()
    {
        Root = Path.Combine(Path.GetTempPath(), "nacelle-cni-" + Guid.NewGuid().ToString("N")[..12]);
        ConfDir = Path.Combine(Root, "net.d");
        BinDir = Path.Combine(Root, "bin");
        CacheDir = Path.Combine(Root, "cache");
        Records = Path.Combine(Root, "records");
        Netns = Path.Combine(Root, "netns");
        Directory.CreateDirectory(ConfDir);
        Directory.CreateDirectory(BinDir);
        Directory.CreateDirectory(Records);
        File.WriteAllText(Netns, "");
    }

    public string Root { get; }
    public string ConfDir { get; }
    public string BinDir { get; }
    public string CacheDir { get; }
    public string Records { get; }
    public string Netns { get; }

    public CniOptions Options(TimeSpan? timeout = null, bool defaultNetwork = false) => new()
    {
        ConfDir = ConfDir,
        BinDirs = [Path.Combine(Root, "no-such-bin"), BinDir],
        CacheDir = CacheDir,
        PluginTimeout = timeout ?? TimeSpan.FromSeconds(20),
        EnableDefaultNetwork = defaultNetwork,
        HostLocalDataDir = Path.Combine(Root, "ipam"),
        RescanInterval = TimeSpan.FromMilliseconds(300),
    };

    /// <summary>Installs a fake plugin. Its ADD prints <paramref name="addResult"/> (or nothing).</summary>
    public void Plugin(string name, string? addResult = null)
    {
        var script = $$"""
            #!/bin/sh
            d='{{Records}}'
            n=$(basename "$0")
            input=$(cat)
            printf '%s' "$input" > "$d/stdin.$n.$CNI_COMMAND.$CNI_IFNAME"
            echo "$n $CNI_COMMAND $CNI_IFNAME|$CNI_CONTAINERID|$CNI_NETNS|$CNI_ARGS|$CNI_PATH" >> "$d/calls.log"
            if [ -f "$d/$n.$CNI_COMMAND.sleep" ]; then sleep 30 & echo $! > "$d/$n.sleep.pid"; wait; fi
            if [ -f "$d/$n.$CNI_COMMAND.out" ]; then cat "$d/$n.$CNI_COMMAND.out"; fi
            if [ -f "$d/$n.$CNI_COMMAND.exit" ]; then exit $(cat "$d/$n.$CNI_COMMAND.exit"); fi
            exit 0

            """;
        var path = Path.Combine(BinDir, name);
        File.WriteAllText(path, script);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        if (addResult is not null)
        {
            Behave(name, "ADD", output: addResult);
        }
    }

    public void Behave(string plugin, string command, string? output = null, int? exit = null, bool sleep = false)
    {
        if (output is not null)
        {
            File.WriteAllText(Path.Combine(Records, $"{plugin}.{command}.out"), output);
        }

        if (exit is not null)
        {
            File.WriteAllText(Path.Combine(Records, $"{plugin}.{command}.exit"), exit.Value.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        if (sleep)
        {
            File.WriteAllText(Path.Combine(Records, $"{plugin}.{command}.sleep"), "");
        }
    }

    /// <summary>The recorded calls: "plugin COMMAND ifname|containerid|netns|args|path".</summary>
    public IReadOnlyList<string> Calls()
    {
        var path = Path.Combine(Records, "calls.log");
        return File.Exists(path) ? File.ReadAllLines(path) : [];
    }

    /// <summary>The calls as "plugin COMMAND ifname".</summary>
    public IReadOnlyList<string> CallNames() => [.. Calls().Select(c => c.Split('|')[0])];

    public JsonObject Stdin(string plugin, string command, string ifName) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(Records, $"stdin.{plugin}.{command}.{ifName}")))!.AsObject();

    public bool HasStdin(string plugin, string command, string ifName) => File.Exists(Path.Combine(Records, $"stdin.{plugin}.{command}.{ifName}"));

    public void Conf(string fileName, string json) => File.WriteAllText(Path.Combine(ConfDir, fileName), json);

    public static string Result(string version, string ip, string ifName = "eth0", string sandbox = "/ns") => $$"""
        {"cniVersion":"{{version}}","interfaces":[{"name":"veth1","mac":"aa:bb:cc:dd:ee:01"},{"name":"{{ifName}}","mac":"aa:bb:cc:dd:ee:02","sandbox":"{{sandbox}}"}],
         "ips":[{"address":"{{ip}}","gateway":"10.9.0.1","interface":1}]}
        """;

    public PodNetworkRequest Request(string podId = "pod1") => new()
    {
        PodId = podId,
        NetnsPath = Netns,
        PodName = "web",
        PodNamespace = "default",
        PodUid = "uid-1",
    };

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
