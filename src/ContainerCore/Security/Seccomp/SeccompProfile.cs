using System.Text.Json;
using System.Text.Json.Serialization;
using Nacelle.Common;

namespace Nacelle.ContainerCore.Security.Seccomp;

// The OCI runtime-spec `linux.seccomp` section (also the format of Localhost profile files). Actions, ops and
// architectures stay strings here: the compiler checks them and refuses unknown ones naming the field. Absent or null
// lists and strings read as empty (the generated deserializer assigns every init property). Docker's profile format
// (archMap, per-rule includes/excludes) is recognised only to be refused: read as OCI it would silently lose its
// conditions.

/// <summary>A seccomp profile as the OCI runtime spec describes it.</summary>
public sealed record SeccompProfile
{
    [JsonPropertyName("defaultAction")] public string DefaultAction { get; init => field = value ?? string.Empty; } = string.Empty;
    [JsonPropertyName("defaultErrnoRet")] public uint? DefaultErrnoRet { get; init; }
    [JsonPropertyName("architectures")] public IReadOnlyList<string> Architectures { get; init => field = value ?? []; } = [];
    [JsonPropertyName("flags")] public IReadOnlyList<string> Flags { get; init => field = value ?? []; } = [];
    [JsonPropertyName("syscalls")] public IReadOnlyList<SeccompSyscallRule> Syscalls { get; init => field = value ?? []; } = [];
    [JsonPropertyName("listenerPath")] public string? ListenerPath { get; init; }

    /// <summary>Docker's format only; its presence means the profile is not an OCI one.</summary>
    [JsonPropertyName("archMap")] public JsonElement? ArchMap { get; init; }

    /// <summary>The profile as OCI linux.seccomp JSON.</summary>
    public string ToJson() => JsonMetadata.SerializeToString(this, SeccompJson.Current.SeccompProfile, capacity: 4096);

    /// <summary>Refuses Docker-format profiles (archMap, includes, excludes), naming the field: taken as OCI they
    /// would lose their architecture and capability conditions without a word.</summary>
    public void ThrowIfNotOci()
    {
        if (ArchMap is { ValueKind: not JsonValueKind.Null })
        {
            throw NacelleException.InvalidArgument("seccomp: archMap: this is Docker's profile format; give an OCI profile (architectures, syscalls)");
        }

        for (var i = 0; i < Syscalls.Count; i++)
        {
            if (Syscalls[i] is { } rule && (rule.Includes is { ValueKind: not JsonValueKind.Null } || rule.Excludes is { ValueKind: not JsonValueKind.Null }))
            {
                throw NacelleException.InvalidArgument(
                    $"seccomp: syscalls[{i}].{(rule.Includes is { ValueKind: not JsonValueKind.Null } ? "includes" : "excludes")}: this is Docker's profile format; give an OCI profile");
            }
        }
    }

    /// <summary>Parses a profile from JSON text (a spec's seccomp section or a Localhost profile file).</summary>
    public static SeccompProfile Parse(string json)
    {
        try
        {
            var profile = JsonMetadata.Deserialize(json, SeccompJson.Current.SeccompProfile)
                ?? throw new NacelleException(ErrorKind.InvalidArgument, "seccomp profile: the JSON is null");
            profile.ThrowIfNotOci();
            return profile;
        }
        catch (JsonException e)
        {
            throw new NacelleException(ErrorKind.InvalidArgument, $"seccomp profile: invalid JSON: {e.Message}", e);
        }
    }

    /// <summary>Reads a profile from a spec's already-parsed <c>linux.seccomp</c> element.</summary>
    public static SeccompProfile FromJson(JsonElement element)
    {
        try
        {
            var profile = element.Deserialize(SeccompJson.Current.SeccompProfile)
                ?? throw new NacelleException(ErrorKind.InvalidArgument, "seccomp profile: the JSON is null");
            profile.ThrowIfNotOci();
            return profile;
        }
        catch (JsonException e)
        {
            throw new NacelleException(ErrorKind.InvalidArgument, $"seccomp profile: invalid JSON: {e.Message}", e);
        }
    }
}

/// <summary>One entry of <c>syscalls</c>: the named syscalls get <see cref="Action"/> when every arg condition holds.</summary>
public sealed record SeccompSyscallRule
{
    [JsonPropertyName("names")] public IReadOnlyList<string> Names { get; init => field = value ?? []; } = [];
    [JsonPropertyName("action")] public string Action { get; init => field = value ?? string.Empty; } = string.Empty;
    [JsonPropertyName("errnoRet")] public uint? ErrnoRet { get; init; }
    [JsonPropertyName("args")] public IReadOnlyList<SeccompArg> Args { get; init => field = value ?? []; } = [];

    /// <summary>Docker's format only (a capability/architecture/kernel condition); refused.</summary>
    [JsonPropertyName("includes")] public JsonElement? Includes { get; init; }

    /// <summary>Docker's format only; refused.</summary>
    [JsonPropertyName("excludes")] public JsonElement? Excludes { get; init; }
}

/// <summary>A condition on syscall argument <see cref="Index"/> (0-5). For SCMP_CMP_MASKED_EQ,
/// <see cref="Value"/> is the mask and <see cref="ValueTwo"/> the expected masked value.</summary>
public sealed record SeccompArg
{
    [JsonPropertyName("index")] public uint Index { get; init; }
    [JsonPropertyName("value")] public ulong Value { get; init; }
    [JsonPropertyName("valueTwo")] public ulong ValueTwo { get; init; }
    [JsonPropertyName("op")] public string Op { get; init => field = value ?? string.Empty; } = string.Empty;
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, WriteIndented = true)]
[JsonSerializable(typeof(SeccompProfile))]
public sealed partial class SeccompJson : JsonSerializerContext
{
    private static readonly Nacelle.Common.JsonMetadata.Releasable<SeccompJson> Uncached =
        new(static () => new(new JsonSerializerOptions { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, WriteIndented = true }));

    /// <summary>The context to use: <see cref="Default"/>, or with <see cref="Nacelle.Common.JsonMetadata.Cached"/> off one
    /// kept until <see cref="Nacelle.Common.JsonMetadata.Release"/>, whose metadata then goes with it (its options are the
    /// attribute's above; a unit test compares the two).</summary>
    public static SeccompJson Current => Nacelle.Common.JsonMetadata.Cached ? Default : Uncached.Get();
}
