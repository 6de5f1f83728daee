using System.Text.Json.Nodes;
using Nacelle.Common;

namespace Nacelle.Sandbox.Network;

/// <summary>
/// The per-invocation arguments of one attachment (CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS) and the capability
/// arguments offered to plugins as <c>runtimeConfig</c>. Cached with the result so DEL can repeat them exactly.
/// </summary>
public sealed record CniRuntimeConf(
    string ContainerId,
    string NetnsPath,
    string IfName,
    IReadOnlyList<KeyValuePair<string, string>> Args,
    JsonObject CapabilityArgs)
{
    /// <summary>CNI_ARGS: <c>KEY=VALUE</c> pairs joined with ';'.</summary>
    public string ArgsString => string.Join(';', Args.Select(a => a.Key + "=" + a.Value));

    public CniRuntimeConf WithIfName(string ifName) => this with { IfName = ifName };

    /// <summary>The CNI_ARGS of a Kubernetes pod (as containerd and CRI-O pass them).</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> PodArgs(PodNetworkRequest request) =>
    [
        new("K8S_POD_NAMESPACE", request.PodNamespace),
        new("K8S_POD_NAME", request.PodName),
        new("K8S_POD_INFRA_CONTAINER_ID", request.PodId),
        new("K8S_POD_UID", request.PodUid),
        new("IgnoreUnknown", "1"),
    ];

    /// <summary>
    /// The capability arguments of a pod: <c>portMappings</c>, <c>bandwidth</c> (explicit, or from the pod's bandwidth
    /// annotations), <c>dns</c> and <c>io.kubernetes.cri.pod-annotations</c>. Only those present are included; each is
    /// passed to a plugin only when the plugin declares the capability.
    /// </summary>
    public static JsonObject PodCapabilityArgs(PodNetworkRequest request)
    {
        var args = new JsonObject();
        var mappings = new JsonArray();
        foreach (var mapping in request.PortMappings)
        {
            mapping.Validate();
            if (!mapping.Published)
            {
                continue; // not published on the host: nothing for portmap to do (as containerd)
            }

            var protocol = mapping.NormalizedProtocol;
            var entry = new JsonObject
            {
                ["hostPort"] = mapping.HostPort,
                ["containerPort"] = mapping.ContainerPort,
                ["protocol"] = protocol,
            };
            if (!string.IsNullOrEmpty(mapping.HostIp))
            {
                entry["hostIP"] = mapping.HostIp;
            }

            mappings.Add((JsonNode)entry);
        }

        if (mappings.Count > 0)
        {
            args["portMappings"] = mappings;
        }

        var bandwidth = request.Bandwidth ?? CniBandwidth.FromAnnotations(request.Annotations);
        if (bandwidth is not null)
        {
            var b = new JsonObject();
            Add(b, "ingressRate", bandwidth.IngressRate);
            Add(b, "ingressBurst", bandwidth.IngressBurst);
            Add(b, "egressRate", bandwidth.EgressRate);
            Add(b, "egressBurst", bandwidth.EgressBurst);
            if (b.Count > 0)
            {
                args["bandwidth"] = b;
            }
        }

        if (request.Dns is { } dns && (dns.Servers.Count > 0 || dns.Searches.Count > 0 || dns.Options.Count > 0))
        {
            args["dns"] = new JsonObject
            {
                ["servers"] = Strings(dns.Servers),
                ["searches"] = Strings(dns.Searches),
                ["options"] = Strings(dns.Options),
            };
        }

        if (request.Annotations.Count > 0)
        {
            var annotations = new JsonObject();
            foreach (var (key, value) in request.Annotations.OrderBy(a => a.Key, StringComparer.Ordinal))
            {
                annotations[key] = value;
            }

            args["io.kubernetes.cri.pod-annotations"] = annotations;
        }

        return args;
    }

    /// <summary>
    /// A plugin's stdin: its configuration with the list's <c>name</c> and <c>cniVersion</c>, the <c>prevResult</c>
    /// (when given) and a <c>runtimeConfig</c> holding only the capability arguments the plugin declares.
    /// </summary>
    public static string BuildStdin(CniNetworkConfigList list, CniPluginConfig plugin, string? prevResult, JsonObject capabilityArgs) =>
        BuildStdinNode(list, plugin, prevResult is null ? null : JsonNode.Parse(prevResult) as JsonObject, capabilityArgs).ToJsonString();

    internal static JsonObject BuildStdinNode(CniNetworkConfigList list, CniPluginConfig plugin, JsonObject? prevResult, JsonObject capabilityArgs)
    {
        var conf = (JsonObject)plugin.Raw.DeepClone();
        conf["name"] = list.Name;
        conf["cniVersion"] = list.CniVersion;
        if (prevResult is not null)
        {
            conf["prevResult"] = prevResult.DeepClone();
        }

        var runtimeConfig = new JsonObject();
        foreach (var capability in plugin.Capabilities)
        {
            if (capabilityArgs[capability] is JsonNode value)
            {
                runtimeConfig[capability] = value.DeepClone();
            }
        }

        if (runtimeConfig.Count > 0)
        {
            conf["runtimeConfig"] = runtimeConfig;
        }

        return conf;
    }

    private static void Add(JsonObject o, string key, ulong? value)
    {
        if (value is ulong v)
        {
            o[key] = v;
        }
    }

    private static JsonArray Strings(IReadOnlyList<string> values)
    {
        var array = new JsonArray();
        foreach (var v in values)
        {
            array.Add((JsonNode)v);
        }

        return array;
    }

    /// <summary>Checks a container id and interface name as the CNI spec requires.</summary>
    internal static void Validate(string containerId, string ifName)
    {
        if (!CniNetworkConfigList.IsValidIdentifier(containerId))
        {
            throw NacelleException.InvalidArgument($"'{containerId}' is not a valid CNI container id (letters, digits, '_', '.', '-')");
        }

        if (ifName.Length is 0 or > 15 || ifName is "." or ".." || ifName.Any(c => c is '/' or ':' || char.IsWhiteSpace(c)))
        {
            throw NacelleException.InvalidArgument($"'{ifName}' is not a valid interface name");
        }
    }
}
