using System.Globalization;
using Tomlyn;
using Tomlyn.Model;
using Tomlyn.Parsing;

namespace Nacelle.CriServer.Configuration;

/// <summary>A value given on the command line for a config key (e.g. --socket).</summary>
public sealed record ConfigOverride(string Flag, string KeyPath, string Value);

/// <summary>Where the configuration comes from.</summary>
public sealed record ConfigSources(
    string ConfigPath,
    bool ConfigPathExplicit,
    string DropInDirectory,
    IReadOnlyList<ConfigOverride> Overrides)
{
    public const string DefaultConfigPath = "/etc/nacelle/config.toml";

    public static ConfigSources Defaults { get; } = new(DefaultConfigPath, false, DropInDirectoryFor(DefaultConfigPath), []);

    /// <summary>Drop-ins live in config.d beside the main file: /etc/nacelle/config.d/*.toml by default.</summary>
    public static string DropInDirectoryFor(string configPath) =>
        System.IO.Path.Combine(System.IO.Path.GetDirectoryName(configPath) ?? "/", "config.d");
}

/// <summary>The effective configuration and what it was made of.</summary>
public sealed record LoadedConfig(NacelleConfig Config, IReadOnlyList<string> Files, IReadOnlySet<string> ExplicitKeys);

/// <summary>
/// Builds the effective configuration: embedded defaults, then the main TOML file, then drop-ins in lexical
/// order, then command-line flags. Unknown keys, wrong types and invalid values are refused with a
/// <see cref="ConfigException"/> naming the file, the key and the reason.
/// </summary>
public static class ConfigLoader
{
    public static LoadedConfig Load(ConfigSources sources)
    {
        var config = new NacelleConfig();
        var files = new List<string>();
        var explicitKeys = new HashSet<string>(StringComparer.Ordinal);

        if (Directory.Exists(sources.ConfigPath))
        {
            throw new ConfigException(sources.ConfigPath, null, "is a directory, not a configuration file; point --config at a TOML file");
        }

        if (File.Exists(sources.ConfigPath))
        {
            ApplyFile(config, sources.ConfigPath, explicitKeys);
            files.Add(sources.ConfigPath);
        }
        else if (sources.ConfigPathExplicit)
        {
            throw new ConfigException(sources.ConfigPath, null, "configuration file does not exist");
        }

        if (Directory.Exists(sources.DropInDirectory))
        {
            var dropIns = Directory.GetFiles(sources.DropInDirectory, "*.toml");
            Array.Sort(dropIns, StringComparer.Ordinal);
            foreach (var dropIn in dropIns)
            {
                ApplyFile(config, dropIn, explicitKeys);
                files.Add(dropIn);
            }
        }

        foreach (var flag in sources.Overrides)
        {
            var key = ConfigKeys.Find(flag.KeyPath)
                ?? throw new InvalidOperationException($"flag {flag.Flag} maps to unknown key {flag.KeyPath}");
            var value = ParseText(key, flag.Value, flag.Flag);
            Assign(config, key, value, flag.Flag);
            explicitKeys.Add(key.Path);
        }

        ValidateWhole(config, files.Count > 0 ? files[^1] : "configuration");
        return new LoadedConfig(config, files, explicitKeys);
    }

    /// <summary>Applies one TOML file over <paramref name="config"/>.</summary>
    public static void ApplyFile(NacelleConfig config, string path, ISet<string> explicitKeys)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException(path, null,
                $"cannot read configuration file: {e.Message}; make it readable by the user nacelle runs as, or point --config at another file");
        }

        ApplyToml(config, text, path, explicitKeys);
    }

    /// <summary>Applies TOML text over <paramref name="config"/>; <paramref name="source"/> names it in errors.</summary>
    public static void ApplyToml(NacelleConfig config, string text, string source, ISet<string> explicitKeys)
    {
        // The syntax pass validates the document (including keys defined twice) and gives line:column diagnostics.
        var document = SyntaxParser.Parse(text, source, validate: true);
        var errors = document.Diagnostics.Where(d => d.Kind == Tomlyn.Syntax.DiagnosticMessageKind.Error).ToList();
        if (errors.Count > 0)
        {
            throw new ConfigException(source, null, "invalid TOML: " + string.Join("; ", errors.Select(e => e.ToString())));
        }

        TomlTable table;
        try
        {
            table = TomlSerializer.Deserialize(text, ConfigTomlContext.Default.TomlTable)!;
        }
        catch (TomlException e)
        {
            throw new ConfigException(source, null, "invalid TOML: " + e.Message);
        }

        ApplyTable(config, table, prefix: string.Empty, source, explicitKeys);
    }

    private static void ApplyTable(NacelleConfig config, TomlTable table, string prefix, string source, ISet<string> explicitKeys)
    {
        foreach (var (name, raw) in table)
        {
            var path = prefix.Length == 0 ? name : $"{prefix}.{name}";
            if (path == ConfigKeys.RegistryHostsPath)
            {
                ApplyRegistryHosts(config, raw, source, explicitKeys);
                continue;
            }

            if (path == "runtime")
            {
                ApplyRuntime(config, raw, source, explicitKeys);
                continue;
            }

            var key = ConfigKeys.Find(path);
            if (key is not null)
            {
                var value = Convert(key, raw, source);
                Assign(config, key, value, source);
                explicitKeys.Add(path);
                continue;
            }

            var isSection = ConfigKeys.All.Any(k => k.Section == path);
            if (isSection && raw is TomlTable section)
            {
                ApplyTable(config, section, path, source, explicitKeys);
            }
            else if (isSection)
            {
                throw new ConfigException(source, path, $"expected a table ([{path}]), got {Describe(raw)}");
            }
            else
            {
                throw new ConfigException(source, path, "unknown key" + Suggest(path));
            }
        }
    }

    // [runtime.handlers.<name>] tables: one per RuntimeClass handler, each with the keys of ConfigKeys.RuntimeHandlerKeys.
    private static void ApplyRuntime(NacelleConfig config, object? raw, string source, ISet<string> explicitKeys)
    {
        if (raw is not TomlTable runtime)
        {
            throw new ConfigException(source, "runtime", $"expected a table ([runtime]), got {Describe(raw)}");
        }

        foreach (var (name, value) in runtime)
        {
            if (name != "handlers")
            {
                throw new ConfigException(source, $"runtime.{name}", "unknown key (the runtime section takes handlers tables: [runtime.handlers.<name>])");
            }

            if (value is not TomlTable handlers)
            {
                throw new ConfigException(source, ConfigKeys.RuntimeHandlersPath, $"expected a table of handler tables, got {Describe(value)}");
            }

            foreach (var (handler, handlerRaw) in handlers)
            {
                var handlerPath = $"{ConfigKeys.RuntimeHandlersPath}.{handler}";
                if (ConfigKeys.InvalidHandlerName(handler) is { } why)
                {
                    throw new ConfigException(source, handlerPath, why);
                }

                if (handlerRaw is not TomlTable table)
                {
                    throw new ConfigException(source, handlerPath, $"expected a table, got {Describe(handlerRaw)}");
                }

                ApplyEntry(config.Runtime.Handlers, handler, table, ConfigKeys.RuntimeHandlerKeys, "handler", handlerPath, source);
                explicitKeys.Add(handlerPath);
            }
        }
    }

    // [registry.hosts."<host>"] tables: one per registry, each with the keys of ConfigKeys.RegistryHostKeys.
    private static void ApplyRegistryHosts(NacelleConfig config, object? raw, string source, ISet<string> explicitKeys)
    {
        if (raw is not TomlTable hosts)
        {
            throw new ConfigException(source, ConfigKeys.RegistryHostsPath, $"expected a table of registry tables, got {Describe(raw)}");
        }

        foreach (var (host, hostRaw) in hosts)
        {
            var hostPath = $"{ConfigKeys.RegistryHostsPath}.\"{host}\"";
            if (ConfigKeys.InvalidRegistryHost(host) is { } why)
            {
                throw new ConfigException(source, hostPath, why);
            }

            if (hostRaw is not TomlTable table)
            {
                throw new ConfigException(source, hostPath, $"expected a table, got {Describe(hostRaw)}");
            }

            ApplyEntry(config.Registry.Hosts, host, table, ConfigKeys.RegistryHostKeys, "registry", hostPath, source);
            explicitKeys.Add(hostPath);
        }
    }

    /// <summary>One table of a table of tables: its keys applied over the entry of that name (made when new), so tables
    /// of the same name in several files merge.</summary>
    private static void ApplyEntry<T>(IDictionary<string, T> entries, string name, TomlTable table, IReadOnlyList<ConfigKey<T>> keys,
        string kind, string path, string source) where T : new()
    {
        if (!entries.TryGetValue(name, out var section))
        {
            entries[name] = section = new T();
        }

        foreach (var (keyName, value) in table)
        {
            var keyPath = $"{path}.{keyName}";
            var key = keys.FirstOrDefault(k => k.Path == keyName)
                ?? throw new ConfigException(source, keyPath, $"unknown key ({kind} tables take {string.Join(", ", keys.Select(k => k.Path))})");
            Assign(section, key, Convert(key, value, source, keyPath), source, keyPath);
        }
    }

    private static void Assign<T>(T target, ConfigKey<T> key, object value, string source, string keyPath)
    {
        var why = key.Validate(value);
        if (why is not null)
        {
            throw new ConfigException(source, keyPath, why);
        }

        key.Set(target, value);
    }

    private static void Assign(NacelleConfig config, ConfigKey<NacelleConfig> key, object value, string source)
    {
        var why = key.Validate(value);
        if (why is not null)
        {
            throw new ConfigException(source, key.Path, why);
        }

        key.Set(config, value);
    }

    /// <summary>Converts a TOML value to the key's CLR type, or explains the mismatch.</summary>
    private static object Convert<T>(ConfigKey<T> key, object? raw, string source, string? keyPath = null)
    {
        keyPath ??= key.Path;
        object? value = (key.Type, raw) switch
        {
            (ConfigValueType.String, string s) => s,
            (ConfigValueType.Boolean, bool b) => b,
            (ConfigValueType.Integer, long l) => l,
            (ConfigValueType.Float, double d) => d,
            (ConfigValueType.Float, long l) => (double)l,
            (ConfigValueType.Duration, string s) => Duration.TryParse(s, out var t)
                ? t
                : throw new ConfigException(source, keyPath, $"'{s}' is not a duration (e.g. \"500ms\", \"10s\", \"2m\", \"1h30m\")"),
            (ConfigValueType.StringList, TomlArray array) when array.All(e => e is string) => array.Cast<string>().ToList(),
            _ => null,
        };
        return value ?? key.FromOlderRelease(raw) ?? throw new ConfigException(source, keyPath, $"expected {Expected(key.Type)}, got {Describe(raw)}");
    }

    /// <summary>Parses a flag's text as the key's type.</summary>
    private static object ParseText(ConfigKey<NacelleConfig> key, string text, string flag) => key.Type switch
    {
        ConfigValueType.String => text,
        ConfigValueType.Boolean => bool.TryParse(text, out var b) ? b : throw new ConfigException(flag, key.Path, $"'{text}' is not true or false"),
        ConfigValueType.Integer => long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l)
            ? l : throw new ConfigException(flag, key.Path, $"'{text}' is not an integer"),
        ConfigValueType.Float => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)
            ? d : throw new ConfigException(flag, key.Path, $"'{text}' is not a number"),
        ConfigValueType.Duration => Duration.TryParse(text, out var t)
            ? t : throw new ConfigException(flag, key.Path, $"'{text}' is not a duration (e.g. \"10s\")"),
        _ => throw new InvalidOperationException(key.Type.ToString()),
    };

    /// <summary>Rules that involve more than one key.</summary>
    public static void ValidateWhole(NacelleConfig config, string source)
    {
        if (NormalizeDir(config.Root) == NormalizeDir(config.State))
        {
            throw new ConfigException(source, "state", $"must differ from root ('{config.Root}')");
        }

        foreach (var (host, section) in config.Registry.Hosts)
        {
            var hostPath = $"{ConfigKeys.RegistryHostsPath}.\"{host}\"";
            if (!section.Fallback && section.Mirrors.Count == 0)
            {
                throw new ConfigException(source, $"{hostPath}.fallback", "false needs at least one mirror (there would be nowhere to pull from)");
            }

            if (!section.Fallback && section.Server.Length > 0)
            {
                throw new ConfigException(source, $"{hostPath}.server", "is never used with fallback = false (the mirrors only); drop one of them");
            }
        }

        foreach (var (name, handler) in config.Runtime.Handlers)
        {
            var handlerPath = $"{ConfigKeys.RuntimeHandlersPath}.{name}";
            if (handler.Type == NacelleConfig.RuntimeHandlerTypes.Oci && handler.Path.Length == 0)
            {
                throw new ConfigException(source, $"{handlerPath}.path", "is required for type \"oci\" (the runtime's executable, e.g. \"/usr/sbin/runc\")");
            }

            if (handler.Type == NacelleConfig.RuntimeHandlerTypes.BuiltIn && (handler.Path.Length > 0 || handler.Root.Length > 0 || handler.Args.Count > 0))
            {
                throw new ConfigException(source, $"{handlerPath}.type",
                    "\"nacelle\" is the built-in core: path, root and args belong to type \"oci\" handlers");
            }
        }

        if ((config.Stream.CertFile.Length == 0) != (config.Stream.KeyFile.Length == 0))
        {
            throw new ConfigException(source, config.Stream.CertFile.Length == 0 ? "stream.cert_file" : "stream.key_file",
                "stream.cert_file and stream.key_file go together: set both for https, or neither");
        }

        if (config.Stream.MaxStreamsPerPod > config.Stream.MaxStreams)
        {
            throw new ConfigException(source, "stream.max_streams_per_pod",
                $"{config.Stream.MaxStreamsPerPod} is more than stream.max_streams ({config.Stream.MaxStreams})");
        }
    }

    private static string NormalizeDir(string path) => System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(path));

    private static string Expected(ConfigValueType type) => type switch
    {
        ConfigValueType.String => "a string",
        ConfigValueType.Boolean => "a boolean (true or false)",
        ConfigValueType.Integer => "an integer",
        ConfigValueType.Float => "a number",
        ConfigValueType.Duration => "a duration string such as \"10s\"",
        ConfigValueType.StringList => "an array of strings",
        _ => type.ToString(),
    };

    private static string Describe(object? raw) => raw switch
    {
        null => "nothing",
        string s => $"the string \"{s}\"",
        bool b => $"the boolean {(b ? "true" : "false")}",
        long l => $"the integer {l.ToString(CultureInfo.InvariantCulture)}",
        double d => $"the number {d.ToString(CultureInfo.InvariantCulture)}",
        TomlTable => "a table",
        TomlArray or TomlTableArray => "an array",
        _ => $"a {raw.GetType().Name}",
    };

    private static string Suggest(string path)
    {
        var best = ConfigKeys.All
            .Select(k => (k.Path, Distance: EditDistance(k.Path, path)))
            .OrderBy(x => x.Distance)
            .FirstOrDefault();
        return best.Path is not null && best.Distance <= 3 ? $" (did you mean '{best.Path}'?)" : string.Empty;
    }

    private static int EditDistance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }
}

/// <summary>Source-generated TOML metadata for the document model, so parsing needs no reflection (Native AOT).</summary>
[Tomlyn.Serialization.TomlSerializable(typeof(TomlTable))]
internal partial class ConfigTomlContext : Tomlyn.Serialization.TomlSerializerContext
{
}
