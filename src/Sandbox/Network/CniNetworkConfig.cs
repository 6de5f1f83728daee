using System.Text.Json;
using System.Text.Json.Nodes;
using Nacelle.Common;

namespace Nacelle.Sandbox.Network;

/// <summary>One plugin of a network configuration list: its type (the executable's name) and its JSON as written.</summary>
public sealed class CniPluginConfig
{
    internal CniPluginConfig(JsonObject raw)
    {
        Raw = raw;
        Type = raw["type"]!.GetValue<string>();
        var capabilities = new SortedSet<string>(StringComparer.Ordinal);
        if (raw["capabilities"] is JsonObject declared)
        {
            foreach (var (key, value) in declared)
            {
                if (value is JsonValue flag && flag.TryGetValue<bool>(out var enabled) && enabled)
                {
                    capabilities.Add(key);
                }
            }
        }

        Capabilities = capabilities;
    }

    /// <summary>The plugin type, which is also the name of its executable.</summary>
    public string Type { get; }

    /// <summary>The capabilities the plugin declares as true (<c>"capabilities": {"portMappings": true}</c>).</summary>
    public IReadOnlySet<string> Capabilities { get; }

    /// <summary>The plugin's configuration as written (never modified; stdin is built from a copy).</summary>
    internal JsonObject Raw { get; }

    /// <summary>The plugin's configuration as written.</summary>
    public string ToJson() => Raw.ToJsonString();
}

/// <summary>
/// A CNI network configuration list (a <c>.conflist</c>, or a single-plugin <c>.conf</c> wrapped as a list), validated.
/// </summary>
public sealed class CniNetworkConfigList
{
    private static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = 64 };

    private CniNetworkConfigList(JsonObject raw, string source, string name, string cniVersion, bool disableCheck, IReadOnlyList<CniPluginConfig> plugins)
    {
        Raw = raw;
        Source = source;
        Name = name;
        CniVersion = cniVersion;
        DisableCheck = disableCheck;
        Plugins = plugins;
    }

    /// <summary>The network name (<c>name</c>), injected into every plugin's stdin.</summary>
    public string Name { get; }

    /// <summary>The spec version of the list (<c>cniVersion</c>), injected into every plugin's stdin.</summary>
    public string CniVersion { get; }

    /// <summary>Whether the list asks runtimes not to run CHECK (<c>disableCheck</c>).</summary>
    public bool DisableCheck { get; }

    /// <summary>The plugins, in chain order.</summary>
    public IReadOnlyList<CniPluginConfig> Plugins { get; }

    /// <summary>Where the list came from: a file path, "built-in" or "cache".</summary>
    public string Source { get; }

    internal JsonObject Raw { get; }

    /// <summary>The list as JSON (a single <c>.conf</c> appears in its wrapped, list form).</summary>
    public string ToJson() => Raw.ToJsonString();

    /// <summary>
    /// Parses and validates a configuration. A document with <c>plugins</c> is a list; one without is a single plugin
    /// configuration (<c>.conf</c>) and is wrapped as a list of one. Throws <see cref="NacelleException"/>
    /// (InvalidArgument) naming what is wrong.
    /// </summary>
    public static CniNetworkConfigList Parse(string json, string source)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(json, documentOptions: DocumentOptions);
        }
        catch (JsonException e)
        {
            throw NacelleException.InvalidArgument($"{source}: not valid JSON: {e.Message}");
        }

        if (node is not JsonObject document)
        {
            throw NacelleException.InvalidArgument($"{source}: the configuration is not a JSON object");
        }

        return document.ContainsKey("plugins") ? FromList(document, source) : FromSingle(document, source);
    }

    private static CniNetworkConfigList FromSingle(JsonObject conf, string source)
    {
        var name = RequireName(conf, source);
        var version = RequireVersion(conf, source);
        var list = new JsonObject
        {
            ["cniVersion"] = version,
            ["name"] = name,
        };
        if (conf["disableCheck"] is JsonNode disable)
        {
            list["disableCheck"] = disable.DeepClone();
        }

        list["plugins"] = new JsonArray(conf.DeepClone());
        return FromList(list, source);
    }

    private static CniNetworkConfigList FromList(JsonObject list, string source)
    {
        var name = RequireName(list, source);
        var version = RequireVersion(list, source);
        var disableCheck = false;
        if (list["disableCheck"] is JsonNode disable)
        {
            // libcni accepts a boolean or the strings "true"/"false"
            if (disable is JsonValue value && value.TryGetValue<bool>(out var flag))
            {
                disableCheck = flag;
            }
            else if (disable is JsonValue text && text.TryGetValue<string>(out var s) && bool.TryParse(s, out flag))
            {
                disableCheck = flag;
            }
            else
            {
                throw NacelleException.InvalidArgument($"{source}: disableCheck must be a boolean");
            }
        }

        if (list["plugins"] is not JsonArray array || array.Count == 0)
        {
            throw NacelleException.InvalidArgument($"{source}: network {name} has no plugins (plugins must be a non-empty array)");
        }

        var plugins = new List<CniPluginConfig>(array.Count);
        for (var i = 0; i < array.Count; i++)
        {
            if (array[i] is not JsonObject plugin)
            {
                throw NacelleException.InvalidArgument($"{source}: plugins[{i}] is not a JSON object");
            }

            if (plugin["type"] is not JsonValue typeValue || !typeValue.TryGetValue<string>(out var type) || type.Length == 0)
            {
                throw NacelleException.InvalidArgument($"{source}: plugins[{i}] has no type");
            }

            if (type.Contains('/', StringComparison.Ordinal) || type is "." or "..")
            {
                throw NacelleException.InvalidArgument($"{source}: plugins[{i}] type '{type}' is not a plain executable name");
            }

            if (plugin["capabilities"] is JsonNode capabilities && capabilities is not JsonObject)
            {
                throw NacelleException.InvalidArgument($"{source}: plugins[{i}] ({type}) capabilities must be an object");
            }

            plugins.Add(new CniPluginConfig((JsonObject)plugin.DeepClone()));
        }

        return new CniNetworkConfigList((JsonObject)list.DeepClone(), source, name, version, disableCheck, plugins);
    }

    private static string RequireName(JsonObject document, string source)
    {
        if (document["name"] is not JsonValue value || !value.TryGetValue<string>(out var name) || name.Length == 0)
        {
            throw NacelleException.InvalidArgument($"{source}: the network has no name");
        }

        if (!IsValidNetworkName(name))
        {
            throw NacelleException.InvalidArgument(
                $"{source}: network name '{name}' is invalid (letters, digits, '_', '.', '-', starting with a letter or digit)");
        }

        return name;
    }

    private static string RequireVersion(JsonObject document, string source)
    {
        if (document["cniVersion"] is not JsonValue value || !value.TryGetValue<string>(out var version) || version.Length == 0)
        {
            throw NacelleException.InvalidArgument($"{source}: cniVersion is missing");
        }

        if (!CniVersions.IsSupported(version))
        {
            throw NacelleException.InvalidArgument(
                $"{source}: cniVersion {version} is not supported (supported: {string.Join(", ", CniVersions.Supported)})");
        }

        return version;
    }

    /// <summary>A network name as the CNI spec allows: <c>[a-zA-Z0-9][a-zA-Z0-9_.-]*</c>.</summary>
    public static bool IsValidNetworkName(string name) => IsValidIdentifier(name);

    internal static bool IsValidIdentifier(string value)
    {
        if (value.Length == 0 || !char.IsAsciiLetterOrDigit(value[0]))
        {
            return false;
        }

        foreach (var c in value)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not '_' and not '.' and not '-')
            {
                return false;
            }
        }

        return true;
    }
}
