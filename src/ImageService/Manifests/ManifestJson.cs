using System.Text.Json;
using System.Text.Json.Serialization;

namespace Nacelle.ImageService.Manifests;

// Wire shapes of manifests, indexes and image configs. Only the fields nacelle reads; unknown fields are ignored.

internal sealed class PlatformJson
{
    [JsonPropertyName("os")] public string? Os { get; set; }
    [JsonPropertyName("architecture")] public string? Architecture { get; set; }
    [JsonPropertyName("variant")] public string? Variant { get; set; }
}

internal sealed class DescriptorJson
{
    [JsonPropertyName("mediaType")] public string? MediaType { get; set; }
    [JsonPropertyName("digest")] public string? Digest { get; set; }
    [JsonPropertyName("size")] public long Size { get; set; }
    [JsonPropertyName("urls")] public List<string>? Urls { get; set; }
    [JsonPropertyName("platform")] public PlatformJson? Platform { get; set; }
}

internal sealed class ManifestJson
{
    [JsonPropertyName("schemaVersion")] public int SchemaVersion { get; set; }
    [JsonPropertyName("mediaType")] public string? MediaType { get; set; }
    [JsonPropertyName("config")] public DescriptorJson? Config { get; set; }
    [JsonPropertyName("layers")] public List<DescriptorJson>? Layers { get; set; }
    [JsonPropertyName("manifests")] public List<DescriptorJson>? Manifests { get; set; }
}

internal sealed class RootFsJson
{
    [JsonPropertyName("type")] public string? Type { get; set; }
    [JsonPropertyName("diff_ids")] public List<string>? DiffIds { get; set; }
}

internal sealed class ContainerConfigJson
{
    [JsonPropertyName("User")] public string? User { get; set; }
    [JsonPropertyName("Env")] public List<string>? Env { get; set; }
    [JsonPropertyName("Entrypoint")] public List<string>? Entrypoint { get; set; }
    [JsonPropertyName("Cmd")] public List<string>? Cmd { get; set; }
    [JsonPropertyName("WorkingDir")] public string? WorkingDir { get; set; }
    [JsonPropertyName("StopSignal")] public string? StopSignal { get; set; }
    [JsonPropertyName("Labels")] public Dictionary<string, string>? Labels { get; set; }
    [JsonPropertyName("ExposedPorts")] public Dictionary<string, JsonElement>? ExposedPorts { get; set; }
    [JsonPropertyName("Volumes")] public Dictionary<string, JsonElement>? Volumes { get; set; }
}

internal sealed class ImageConfigJson
{
    [JsonPropertyName("created")] public string? Created { get; set; }
    [JsonPropertyName("os")] public string? Os { get; set; }
    [JsonPropertyName("architecture")] public string? Architecture { get; set; }
    [JsonPropertyName("variant")] public string? Variant { get; set; }
    [JsonPropertyName("config")] public ContainerConfigJson? Config { get; set; }
    [JsonPropertyName("rootfs")] public RootFsJson? RootFs { get; set; }
}

internal sealed class TokenResponseJson
{
    [JsonPropertyName("token")] public string? Token { get; set; }
    [JsonPropertyName("access_token")] public string? AccessToken { get; set; }
    [JsonPropertyName("expires_in")] public int ExpiresIn { get; set; }
    [JsonPropertyName("issued_at")] public string? IssuedAt { get; set; }
    [JsonPropertyName("refresh_token")] public string? RefreshToken { get; set; }
}

[JsonSourceGenerationOptions(ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true, NumberHandling = JsonNumberHandling.AllowReadingFromString)]
[JsonSerializable(typeof(ManifestJson))]
[JsonSerializable(typeof(ImageConfigJson))]
[JsonSerializable(typeof(TokenResponseJson))]
internal sealed partial class ImageJsonContext : JsonSerializerContext;
