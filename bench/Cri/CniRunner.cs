using System.Text.Json.Nodes;

namespace Nacelle.Bench.Cri;

/// <summary>
/// The reference's pod network, done the way containerd's go-cni does it: the loopback plugin for <c>lo</c>, then every
/// plugin of the conflist for <c>eth0</c> in order, each ADD getting the previous plugin's result as prevResult; DEL runs
/// them in reverse. The plugins are the same binaries and the conflist the same file the nacelle daemon uses.
/// </summary>
internal sealed class CniRunner
{
    private readonly string _binDir;
    private readonly string _version;
    private readonly string _name;
    private readonly List<JsonObject> _plugins;

    public CniRunner(string conflistPath, string binDir)
    {
        _binDir = binDir;
        var list = JsonNode.Parse(File.ReadAllText(conflistPath))!.AsObject();
        _version = (string)list["cniVersion"]!;
        _name = (string)list["name"]!;
        _plugins = [.. list["plugins"]!.AsArray().Select(p => p!.AsObject())];
    }

    /// <summary>The network's name (its "name" field).</summary>
    public string NetworkName => _name;

    /// <summary>CNI ADD of lo and eth0 in <paramref name="netnsPath"/>; returns eth0's first IP.</summary>
    public async Task<string> AddAsync(string containerId, string netnsPath)
    {
        await InvokeAsync("ADD", containerId, netnsPath, "lo", "cni-loopback", new JsonObject { ["type"] = "loopback" }, null);
        JsonNode? previous = null;
        foreach (var plugin in _plugins)
        {
            previous = JsonNode.Parse(await InvokeAsync("ADD", containerId, netnsPath, "eth0", _name, plugin, previous));
        }

        return ((string?)previous?["ips"]?[0]?["address"]) ?? "(no address)";
    }

    /// <summary>CNI DEL of eth0's plugins in reverse order, then lo.</summary>
    public async Task DelAsync(string containerId, string netnsPath)
    {
        for (var i = _plugins.Count - 1; i >= 0; i--)
        {
            await InvokeAsync("DEL", containerId, netnsPath, "eth0", _name, _plugins[i], null);
        }

        await InvokeAsync("DEL", containerId, netnsPath, "lo", "cni-loopback", new JsonObject { ["type"] = "loopback" }, null);
    }

    private async Task<string> InvokeAsync(string command, string containerId, string netnsPath, string ifName, string network,
        JsonObject plugin, JsonNode? previousResult)
    {
        // The plugin's stdin: its own config plus the network's name and version (and the chain's result so far).
        var config = plugin.DeepClone().AsObject();
        config["cniVersion"] = _version;
        config["name"] = network;
        if (previousResult is not null)
        {
            config["prevResult"] = previousResult.DeepClone();
        }

        var type = (string)plugin["type"]!;
        var result = await Processes.RunAsync(Path.Combine(_binDir, type), [], config.ToJsonString(), new Dictionary<string, string>
        {
            ["CNI_COMMAND"] = command,
            ["CNI_CONTAINERID"] = containerId,
            ["CNI_NETNS"] = netnsPath,
            ["CNI_IFNAME"] = ifName,
            ["CNI_PATH"] = _binDir,
        });
        return result.Stdout;
    }
}
