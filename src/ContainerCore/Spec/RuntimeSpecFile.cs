using System.Text.Json;
using Nacelle.Common;

namespace Nacelle.ContainerCore.Spec;

/// <summary>Reading and writing config.json.</summary>
public static class RuntimeSpecFile
{
    public static RuntimeSpec Parse(string json, string source = "config.json")
    {
        try
        {
            return JsonSerializer.Deserialize(json, RuntimeSpecJson.Default.RuntimeSpec)
                ?? throw NacelleException.InvalidArgument($"{source}: the spec is null");
        }
        catch (JsonException e)
        {
            throw NacelleException.InvalidArgument($"{source}: not a valid OCI runtime spec: {e.Path}: {e.Message}");
        }
    }

    public static string Serialize(RuntimeSpec spec) => JsonSerializer.Serialize(spec, RuntimeSpecJson.Default.RuntimeSpec);
}
