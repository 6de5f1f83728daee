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
        text.AppendLine("# lexical order; command-line flags (--socket, --root, --state, --log-level) win over both.");
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
        }

        return text.ToString();
    }

    public static string ToJson(NacelleConfig config)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
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
                    var value = key.Get(config);
                    switch (value)
                    {
                        case string s: json.WriteString(key.Name, s); break;
                        case bool b: json.WriteBoolean(key.Name, b); break;
                        case long l: json.WriteNumber(key.Name, l); break;
                        case double d: json.WriteNumber(key.Name, d); break;
                        case TimeSpan t: json.WriteString(key.Name, Duration.Format(t)); break;
                        default: throw new InvalidOperationException($"{key.Path}: no JSON form for {value.GetType()}");
                    }
                }

                if (group.Key.Length > 0)
                {
                    json.WriteEndObject();
                }
            }

            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
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
