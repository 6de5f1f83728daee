using System.Text;
using System.Text.Json;
using Nacelle.Common;

namespace Nacelle.ContainerCore.Spec;

/// <summary>Reading and writing config.json.</summary>
public static class RuntimeSpecFile
{
    public static RuntimeSpec Parse(string json, string source = "config.json")
    {
        ArgumentNullException.ThrowIfNull(json);
        return Parse(Encoding.UTF8.GetBytes(json), source);
    }

    /// <summary>Parses UTF-8 JSON (as read from a file; a string is first encoded into an array of its own, not a
    /// pooled buffer).</summary>
    public static RuntimeSpec Parse(ReadOnlySpan<byte> json, string source = "config.json")
    {
        try
        {
            return JsonSerializer.Deserialize(json, RuntimeSpecJson.Current.RuntimeSpec)
                ?? throw NacelleException.InvalidArgument($"{source}: the spec is null");
        }
        catch (JsonException e)
        {
            throw NacelleException.InvalidArgument($"{source}: not a valid OCI runtime spec: {e.Path}: {e.Message}");
        }
    }

    public static string Serialize(RuntimeSpec spec) => Encoding.UTF8.GetString(SerializeToUtf8(spec));

    /// <summary>The spec as UTF-8 JSON (config.json's bytes).</summary>
    public static byte[] SerializeToUtf8(RuntimeSpec spec) => JsonMetadata.Serialize(spec, RuntimeSpecJson.Current.RuntimeSpec, capacity: 4096);
}
