using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using Nacelle.Common;

namespace Nacelle.Sandbox.Network;

/// <summary>An interface a plugin created or configured (<c>interfaces[]</c>). Sandbox is empty for host-side interfaces.</summary>
public sealed record CniInterface(string Name, string Mac, string Sandbox);

/// <summary>An address a plugin assigned (<c>ips[]</c>): the address with its prefix, the gateway, the interface index.</summary>
public sealed record CniIpConfig(IPAddress Address, int PrefixLength, IPAddress? Gateway, int? InterfaceIndex)
{
    public bool IsIPv6 => Address.AddressFamily == AddressFamily.InterNetworkV6;

    /// <summary>The address in CIDR notation as plugins write it (e.g. 10.88.0.5/16).</summary>
    public string Cidr => $"{Address}/{PrefixLength}";
}

/// <summary>A parsed CNI result of any supported version (0.1/0.2 <c>ip4</c>/<c>ip6</c>, 0.3.x/0.4.0/1.x <c>ips</c>).</summary>
public sealed class CniResult
{
    private CniResult(string cniVersion, IReadOnlyList<CniInterface> interfaces, IReadOnlyList<CniIpConfig> ips, JsonObject raw)
    {
        CniVersion = cniVersion;
        Interfaces = interfaces;
        Ips = ips;
        Raw = raw;
    }

    /// <summary>The result's cniVersion (empty when the plugin did not say).</summary>
    public string CniVersion { get; }

    public IReadOnlyList<CniInterface> Interfaces { get; }

    public IReadOnlyList<CniIpConfig> Ips { get; }

    internal JsonObject Raw { get; }

    /// <summary>The result as JSON (as the plugin printed it).</summary>
    public string ToJson() => Raw.ToJsonString();

    /// <summary>
    /// The pod's addresses: those on an interface inside the sandbox (or with no interface index), IPv4 before IPv6,
    /// otherwise in result order; the first is the primary pod IP.
    /// </summary>
    public IReadOnlyList<CniIpConfig> PodIps()
    {
        var selected = Ips.Where(ip => ip.InterfaceIndex is not int index
                                       || index < 0 || index >= Interfaces.Count
                                       || Interfaces[index].Sandbox.Length > 0).ToList();
        return [.. selected.Where(ip => !ip.IsIPv6), .. selected.Where(ip => ip.IsIPv6)];
    }

    /// <summary>The interface inside the sandbox named <paramref name="ifName"/>, if the result lists it.</summary>
    public CniInterface? SandboxInterface(string ifName) =>
        Interfaces.FirstOrDefault(i => i.Sandbox.Length > 0 && i.Name == ifName)
        ?? Interfaces.FirstOrDefault(i => i.Sandbox.Length > 0);

    public static CniResult Parse(string json)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(json);
        }
        catch (JsonException e)
        {
            throw NacelleException.Internal($"CNI result is not valid JSON: {e.Message}");
        }

        if (node is not JsonObject raw)
        {
            throw NacelleException.Internal("CNI result is not a JSON object");
        }

        return Parse(raw);
    }

    internal static CniResult Parse(JsonObject raw)
    {
        var version = String(raw, "cniVersion") ?? "";
        var interfaces = new List<CniInterface>();
        if (raw["interfaces"] is JsonArray interfaceArray)
        {
            foreach (var item in interfaceArray)
            {
                if (item is JsonObject i)
                {
                    interfaces.Add(new CniInterface(String(i, "name") ?? "", String(i, "mac") ?? "", String(i, "sandbox") ?? ""));
                }
            }
        }

        var ips = new List<CniIpConfig>();
        if (raw["ips"] is JsonArray ipArray)
        {
            foreach (var item in ipArray)
            {
                if (item is not JsonObject ip)
                {
                    throw NacelleException.Internal("CNI result: an ips[] entry is not an object");
                }

                int? index = null;
                if (ip["interface"] is JsonValue indexValue)
                {
                    index = indexValue.TryGetValue<int>(out var n) ? n
                        : throw NacelleException.Internal("CNI result: ips[].interface is not an integer");
                }

                ips.Add(ParseIp(String(ip, "address"), String(ip, "gateway"), index));
            }
        }
        else
        {
            // 0.1.0 / 0.2.0: ip4 and ip6 objects
            foreach (var key in new[] { "ip4", "ip6" })
            {
                if (raw[key] is JsonObject legacy)
                {
                    ips.Add(ParseIp(String(legacy, "ip"), String(legacy, "gateway"), null));
                }
            }
        }

        return new CniResult(version, interfaces, ips, (JsonObject)raw.DeepClone());
    }

    private static CniIpConfig ParseIp(string? address, string? gateway, int? index)
    {
        if (address is null || !TryParseCidr(address, out var ip, out var prefix))
        {
            throw NacelleException.Internal($"CNI result: address '{address}' is not an address/prefix");
        }

        IPAddress? gatewayAddress = null;
        if (!string.IsNullOrEmpty(gateway) && !IPAddress.TryParse(gateway, out gatewayAddress))
        {
            throw NacelleException.Internal($"CNI result: gateway '{gateway}' is not an address");
        }

        return new CniIpConfig(ip, prefix, gatewayAddress, index);
    }

    internal static bool TryParseCidr(string text, out IPAddress address, out int prefix)
    {
        address = IPAddress.None;
        prefix = 0;
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || !IPAddress.TryParse(text[..slash], out var parsed)
            || !int.TryParse(text[(slash + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out prefix))
        {
            return false;
        }

        if (parsed.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6) || text.Contains('%', StringComparison.Ordinal))
        {
            return false;
        }

        var max = parsed.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        if (prefix > max)
        {
            return false;
        }

        address = parsed;
        return true;
    }

    private static string? String(JsonObject o, string key) =>
        o[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
}
