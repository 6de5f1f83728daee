using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Nacelle.Common;

namespace Nacelle.Sandbox.Network;

/// <summary>
/// The networks nacelle brings itself: the built-in default pod network (bridge + host-local + portmap, used when the conf
/// dir has no valid configuration) and the loopback network run for <c>lo</c> in every pod.
/// </summary>
public static class DefaultNetwork
{
    /// <summary>Name of the loopback network (as containerd's).</summary>
    public const string LoopbackName = "cni-loopback";

    /// <summary>The loopback network: one <c>loopback</c> plugin, run with CNI_IFNAME=lo.</summary>
    public static CniNetworkConfigList Loopback { get; } = CniNetworkConfigList.Parse(
        new JsonObject
        {
            ["cniVersion"] = CniVersions.Current,
            ["name"] = LoopbackName,
            ["plugins"] = new JsonArray(new JsonObject { ["type"] = "loopback" }),
        }.ToJsonString(),
        "built-in");

    /// <summary>
    /// Validates pod CIDRs (one, or an IPv4 and an IPv6 one separated by a comma) and returns them normalised. Throws
    /// InvalidArgument naming the problem.
    /// </summary>
    public static IReadOnlyList<string> ParsePodCidrs(string cidr)
    {
        if (string.IsNullOrWhiteSpace(cidr))
        {
            throw NacelleException.InvalidArgument("pod CIDR is empty");
        }

        var result = new List<string>();
        var families = new HashSet<AddressFamily>();
        foreach (var part in cidr.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!CniResult.TryParseCidr(part, out var address, out var prefix))
            {
                throw NacelleException.InvalidArgument($"pod CIDR '{part}' is not an address/prefix (e.g. 10.88.0.0/16)");
            }

            var v4 = address.AddressFamily == AddressFamily.InterNetwork;
            var (min, max) = v4 ? (8, 30) : (8, 126);
            if (prefix < min || prefix > max)
            {
                throw NacelleException.InvalidArgument($"pod CIDR '{part}': prefix /{prefix} must be within /{min}../{max}");
            }

            var network = Mask(address, prefix);
            if (!network.Equals(address))
            {
                throw NacelleException.InvalidArgument($"pod CIDR '{part}' has host bits set (the network is {network}/{prefix})");
            }

            if (IPAddress.IsLoopback(address) || address.IsIPv6Multicast || (v4 && address.GetAddressBytes()[0] >= 224)
                || address.IsIPv6LinkLocal)
            {
                throw NacelleException.InvalidArgument($"pod CIDR '{part}' is a loopback, link-local or multicast range");
            }

            if (!families.Add(address.AddressFamily))
            {
                throw NacelleException.InvalidArgument($"pod CIDR '{cidr}' has two ranges of the same address family");
            }

            result.Add($"{network}/{prefix}");
        }

        return result;
    }

    /// <summary>The default network for <paramref name="podCidr"/> (already validated by <see cref="ParsePodCidrs"/>).</summary>
    public static CniNetworkConfigList Build(CniOptions options, string podCidr)
    {
        var cidrs = ParsePodCidrs(podCidr);
        var ranges = new JsonArray();
        var routes = new JsonArray();
        foreach (var cidr in cidrs)
        {
            ranges.Add((JsonNode)new JsonArray(new JsonObject { ["subnet"] = cidr }));
            routes.Add((JsonNode)new JsonObject { ["dst"] = cidr.Contains(':', StringComparison.Ordinal) ? "::/0" : "0.0.0.0/0" });
        }

        var ipam = new JsonObject
        {
            ["type"] = "host-local",
            ["ranges"] = ranges,
            ["routes"] = routes,
        };
        if (!string.IsNullOrEmpty(options.HostLocalDataDir))
        {
            ipam["dataDir"] = options.HostLocalDataDir;
        }

        var list = new JsonObject
        {
            ["cniVersion"] = CniVersions.Current,
            ["name"] = options.DefaultNetworkName,
            ["plugins"] = new JsonArray(
                new JsonObject
                {
                    ["type"] = "bridge",
                    ["bridge"] = options.DefaultBridgeName,
                    ["isGateway"] = true,
                    // Traffic from a pod to anything outside the pod range leaves with the host's address.
                    ["ipMasq"] = options.DefaultNetworkMasquerade,
                    ["hairpinMode"] = true,
                    ["ipam"] = ipam,
                },
                new JsonObject
                {
                    ["type"] = "portmap",
                    ["capabilities"] = new JsonObject { ["portMappings"] = true },
                }),
        };
        return CniNetworkConfigList.Parse(list.ToJsonString(), "built-in");
    }

    private static IPAddress Mask(IPAddress address, int prefix)
    {
        var bytes = address.GetAddressBytes();
        for (var i = 0; i < bytes.Length; i++)
        {
            var bits = Math.Clamp(prefix - (i * 8), 0, 8);
            bytes[i] &= (byte)(0xFF << (8 - bits));
        }

        return new IPAddress(bytes);
    }
}
