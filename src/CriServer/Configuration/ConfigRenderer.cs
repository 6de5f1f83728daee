using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Nacelle.CriServer.Configuration;

/// <summary>Writes a configuration out as commented TOML (`nacelle config default`) or as JSON (Status verbose info).</summary>
public static class ConfigRenderer
{
    public static string ToToml(NacelleConfig config)
    {
        var text = new StringBuilder();
        text.AppendLine("# nacelle configuration.");
        text.AppendLine("# Main file: /etc/nacelle/config.toml (--config); drop-ins: config.d/*.toml beside it, applied in");
        text.AppendLine("# lexical order; command-line flags (--socket, --root, --state, --log-level, --default-network) win over both.");
        text.AppendLine("# Unknown keys are refused, so a typo cannot go unnoticed. Check a file with `nacelle config check FILE`.");

        foreach (var group in ConfigKeys.All.GroupBy(k => k.Section))
        {
            text.AppendLine();
            if (group.Key.Length > 0)
            {
                if (ConfigKeys.SectionComments.TryGetValue(group.Key, out var sectionComment))
                {
                    AppendComment(text, sectionComment);
                }

                text.Append('[').Append(group.Key).AppendLine("]");
            }

            foreach (var key in group)
            {
                AppendComment(text, key.Comment);
                text.Append(key.Name).Append(" = ").AppendLine(TomlValue(key.Type, key.Get(config)));
            }

            if (group.Key == "registry")
            {
                AppendRegistryHosts(text, config);
            }
        }

        AppendRuntimeHandlers(text, config);
        return text.ToString();
    }

    // Handler tables are keyed by name, so the defaults show a commented example; configured handlers print as tables.
    private static void AppendRuntimeHandlers(StringBuilder text, NacelleConfig config)
    {
        text.AppendLine();
        AppendComment(text, ConfigKeys.RuntimeHandlersComment);
        AppendTables(text, ConfigKeys.RuntimeHandlersPath, config.Runtime.Handlers, ConfigKeys.RuntimeHandlerKeys, name => name,
            ("runc", new NacelleConfig.RuntimeHandlerSection { Path = "/usr/sbin/runc" }));
    }

    // Registry tables are keyed by host, so the defaults show a commented example; configured hosts print as tables.
    private static void AppendRegistryHosts(StringBuilder text, NacelleConfig config)
    {
        text.AppendLine();
        if (config.Registry.Hosts.Count == 0)
        {
            text.AppendLine("# One table per registry host, as written in image names (\"registry.example:5000\", \"docker.io\"):");
        }

        AppendTables(text, ConfigKeys.RegistryHostsPath, config.Registry.Hosts, ConfigKeys.RegistryHostKeys, Quote,
            ("registry.example:5000", new NacelleConfig.RegistryHostSection()));
    }

    /// <summary>
    /// A table of tables keyed by name ([&lt;path&gt;.&lt;name&gt;]): each configured one with its keys, or, when there is
    /// none, <paramref name="example"/> commented out with each key's comment.
    /// </summary>
    private static void AppendTables<T>(StringBuilder text, string path, IReadOnlyDictionary<string, T> tables, IReadOnlyList<ConfigKey<T>> keys,
        Func<string, string> name, (string Name, T Section) example)
    {
        if (tables.Count == 0)
        {
            text.Append("# [").Append(path).Append('.').Append(name(example.Name)).AppendLine("]");
            foreach (var key in keys)
            {
                foreach (var line in key.Comment.Split('\n'))
                {
                    text.Append("# # ").AppendLine(line);
                }

                text.Append("# ").Append(key.Path).Append(" = ").AppendLine(TomlValue(key.Type, key.Get(example.Section)));
            }

            return;
        }

        foreach (var (table, section) in tables)
        {
            text.Append('[').Append(path).Append('.').Append(name(table)).AppendLine("]");
            foreach (var key in keys)
            {
                AppendComment(text, key.Comment);
                text.Append(key.Path).Append(" = ").AppendLine(TomlValue(key.Type, key.Get(section)));
            }
        }
    }

    public static string ToJson(NacelleConfig config) => JsonText.Write(json =>
    {
        json.WriteStartObject();
        foreach (var group in ConfigKeys.All.GroupBy(k => k.Section))
        {
            if (group.Key.Length > 0)
            {
                json.WriteStartObject(group.Key);
            }

            foreach (var key in group)
            {
                WriteJson(json, key.Name, key.Get(config));
            }

            if (group.Key == "registry")
            {
                WriteTables(json, "hosts", config.Registry.Hosts, ConfigKeys.RegistryHostKeys);
            }

            if (group.Key.Length > 0)
            {
                json.WriteEndObject();
            }
        }

        json.WriteStartObject("runtime");
        WriteTables(json, "handlers", config.Runtime.Handlers, ConfigKeys.RuntimeHandlerKeys);
        json.WriteEndObject();
        json.WriteEndObject();
    });

    /// <summary>A table of tables as a JSON object of objects, one per name.</summary>
    private static void WriteTables<T>(Utf8JsonWriter json, string name, IReadOnlyDictionary<string, T> tables, IReadOnlyList<ConfigKey<T>> keys)
    {
        json.WriteStartObject(name);
        foreach (var (table, section) in tables)
        {
            json.WriteStartObject(table);
            foreach (var key in keys)
            {
                WriteJson(json, key.Path, key.Get(section));
            }

            json.WriteEndObject();
        }

        json.WriteEndObject();
    }

    private static void WriteJson(Utf8JsonWriter json, string name, object value)
    {
        switch (value)
        {
            case string s: json.WriteString(name, s); break;
            case bool b: json.WriteBoolean(name, b); break;
            case long l: json.WriteNumber(name, l); break;
            case double d: json.WriteNumber(name, d); break;
            case TimeSpan t: json.WriteString(name, Duration.Format(t)); break;
            case List<string> list:
                json.WriteStartArray(name);
                foreach (var item in list)
                {
                    json.WriteStringValue(item);
                }

                json.WriteEndArray();
                break;
            default: throw new InvalidOperationException($"{name}: no JSON form for {value.GetType()}");
        }
    }

    private static void AppendComment(StringBuilder text, string comment)
    {
        foreach (var line in comment.Split('\n'))
        {
            text.Append("# ").AppendLine(line);
        }
    }

    private static string TomlValue(ConfigValueType type, object value) => type switch
    {
        ConfigValueType.String => Quote((string)value),
        ConfigValueType.Boolean => (bool)value ? "true" : "false",
        ConfigValueType.Integer => ((long)value).ToString(CultureInfo.InvariantCulture),
        ConfigValueType.Float => FormatFloat((double)value),
        ConfigValueType.Duration => Quote(Duration.Format((TimeSpan)value)),
        ConfigValueType.StringList => "[" + string.Join(", ", ((List<string>)value).Select(Quote)) + "]",
        _ => throw new InvalidOperationException(type.ToString()),
    };

    private static string FormatFloat(double value)
    {
        var text = value.ToString("R", CultureInfo.InvariantCulture);
        return text.Contains('.') || text.Contains('E') ? text : text + ".0";
    }

    private static string Quote(string value)
    {
        var text = new StringBuilder("\"");
        foreach (var c in value)
        {
            _ = c switch
            {
                '"' => text.Append("\\\""),
                '\\' => text.Append("\\\\"),
                '\n' => text.Append("\\n"),
                '\t' => text.Append("\\t"),
                '\r' => text.Append("\\r"),
                < ' ' => text.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:X4}"),
                _ => text.Append(c),
            };
        }

        return text.Append('"').ToString();
    }
}
