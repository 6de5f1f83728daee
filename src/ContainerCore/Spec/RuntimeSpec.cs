using System.Text.Json;
using System.Text.Json.Serialization;

namespace Nacelle.ContainerCore.Spec;

// The OCI runtime-spec (config.json) subset nacelle supports, field names as the spec defines them.
// Unknown fields are kept out (not an error): the validator refuses what nacelle cannot honour.

/// <summary>An OCI runtime spec: what a container is.</summary>
public sealed class RuntimeSpec
{
    [JsonPropertyName("ociVersion")] public string OciVersion { get; set; } = "1.2.0";
    [JsonPropertyName("process")] public SpecProcess? Process { get; set; }
    [JsonPropertyName("root")] public SpecRoot? Root { get; set; }
    [JsonPropertyName("hostname")] public string? Hostname { get; set; }
    [JsonPropertyName("domainname")] public string? Domainname { get; set; }
    [JsonPropertyName("mounts")] public List<SpecMount> Mounts { get; set; } = [];
    [JsonPropertyName("linux")] public SpecLinux? Linux { get; set; }
    [JsonPropertyName("annotations")] public Dictionary<string, string> Annotations { get; set; } = [];
}

public sealed class SpecProcess
{
    [JsonPropertyName("terminal")] public bool Terminal { get; set; }
    [JsonPropertyName("consoleSize")] public SpecConsoleSize? ConsoleSize { get; set; }
    [JsonPropertyName("user")] public SpecUser User { get; set; } = new();
    [JsonPropertyName("args")] public List<string> Args { get; set; } = [];
    [JsonPropertyName("env")] public List<string> Env { get; set; } = [];
    [JsonPropertyName("cwd")] public string Cwd { get; set; } = "/";
    [JsonPropertyName("capabilities")] public SpecCapabilities? Capabilities { get; set; }
    [JsonPropertyName("rlimits")] public List<SpecRlimit> Rlimits { get; set; } = [];
    [JsonPropertyName("noNewPrivileges")] public bool NoNewPrivileges { get; set; }
    [JsonPropertyName("oomScoreAdj")] public int? OomScoreAdj { get; set; }
    [JsonPropertyName("apparmorProfile")] public string? ApparmorProfile { get; set; }
    [JsonPropertyName("selinuxLabel")] public string? SelinuxLabel { get; set; }
}

public sealed class SpecConsoleSize
{
    [JsonPropertyName("height")] public uint Height { get; set; }
    [JsonPropertyName("width")] public uint Width { get; set; }
}

public sealed class SpecUser
{
    [JsonPropertyName("uid")] public uint Uid { get; set; }
    [JsonPropertyName("gid")] public uint Gid { get; set; }
    [JsonPropertyName("umask")] public uint? Umask { get; set; }
    [JsonPropertyName("additionalGids")] public List<uint> AdditionalGids { get; set; } = [];
}

public sealed class SpecCapabilities
{
    [JsonPropertyName("bounding")] public List<string> Bounding { get; set; } = [];
    [JsonPropertyName("effective")] public List<string> Effective { get; set; } = [];
    [JsonPropertyName("inheritable")] public List<string> Inheritable { get; set; } = [];
    [JsonPropertyName("permitted")] public List<string> Permitted { get; set; } = [];
    [JsonPropertyName("ambient")] public List<string> Ambient { get; set; } = [];
}

public sealed class SpecRlimit
{
    [JsonPropertyName("type")] public string Type { get; set; } = string.Empty;
    [JsonPropertyName("hard")] public ulong Hard { get; set; }
    [JsonPropertyName("soft")] public ulong Soft { get; set; }
}

public sealed class SpecRoot
{
    [JsonPropertyName("path")] public string Path { get; set; } = string.Empty;
    [JsonPropertyName("readonly")] public bool Readonly { get; set; }
}

public sealed class SpecMount
{
    [JsonPropertyName("destination")] public string Destination { get; set; } = string.Empty;
    [JsonPropertyName("type")] public string? Type { get; set; }
    [JsonPropertyName("source")] public string? Source { get; set; }
    [JsonPropertyName("options")] public List<string> Options { get; set; } = [];

    /// <summary>An idmapped bind mount's mappings (runtime-spec 1.1): host ids seen through the mount as container ids.</summary>
    [JsonPropertyName("uidMappings")] public List<SpecIdMapping>? UidMappings { get; set; }
    [JsonPropertyName("gidMappings")] public List<SpecIdMapping>? GidMappings { get; set; }
}

public sealed class SpecLinux
{
    [JsonPropertyName("namespaces")] public List<SpecNamespace> Namespaces { get; set; } = [];
    [JsonPropertyName("uidMappings")] public List<SpecIdMapping> UidMappings { get; set; } = [];
    [JsonPropertyName("gidMappings")] public List<SpecIdMapping> GidMappings { get; set; } = [];
    [JsonPropertyName("devices")] public List<SpecDevice> Devices { get; set; } = [];
    [JsonPropertyName("cgroupsPath")] public string? CgroupsPath { get; set; }
    [JsonPropertyName("resources")] public SpecResources? Resources { get; set; }
    [JsonPropertyName("sysctl")] public Dictionary<string, string> Sysctl { get; set; } = [];
    [JsonPropertyName("rootfsPropagation")] public string? RootfsPropagation { get; set; }
    [JsonPropertyName("maskedPaths")] public List<string> MaskedPaths { get; set; } = [];
    [JsonPropertyName("readonlyPaths")] public List<string> ReadonlyPaths { get; set; } = [];
    [JsonPropertyName("mountLabel")] public string? MountLabel { get; set; }

    /// <summary>The seccomp section, kept as JSON here and compiled by the security layer.</summary>
    [JsonPropertyName("seccomp")] public JsonElement? Seccomp { get; set; }
}

public sealed class SpecNamespace
{
    [JsonPropertyName("type")] public string Type { get; set; } = string.Empty;
    [JsonPropertyName("path")] public string? Path { get; set; }
}

public sealed class SpecIdMapping
{
    [JsonPropertyName("containerID")] public uint ContainerId { get; set; }
    [JsonPropertyName("hostID")] public uint HostId { get; set; }
    [JsonPropertyName("size")] public uint Size { get; set; }
}

public sealed class SpecDevice
{
    [JsonPropertyName("type")] public string Type { get; set; } = string.Empty;
    [JsonPropertyName("path")] public string Path { get; set; } = string.Empty;
    [JsonPropertyName("major")] public long Major { get; set; }
    [JsonPropertyName("minor")] public long Minor { get; set; }
    [JsonPropertyName("fileMode")] public uint? FileMode { get; set; }
    [JsonPropertyName("uid")] public uint? Uid { get; set; }
    [JsonPropertyName("gid")] public uint? Gid { get; set; }
}

public sealed class SpecResources
{
    [JsonPropertyName("devices")] public List<SpecDeviceRule> Devices { get; set; } = [];
    [JsonPropertyName("memory")] public SpecMemory? Memory { get; set; }
    [JsonPropertyName("cpu")] public SpecCpu? Cpu { get; set; }
    [JsonPropertyName("pids")] public SpecPids? Pids { get; set; }
    [JsonPropertyName("blockIO")] public SpecBlockIo? BlockIo { get; set; }
    [JsonPropertyName("hugepageLimits")] public List<SpecHugepageLimit> HugepageLimits { get; set; } = [];
    [JsonPropertyName("unified")] public Dictionary<string, string> Unified { get; set; } = [];
}

public sealed class SpecDeviceRule
{
    [JsonPropertyName("allow")] public bool Allow { get; set; }
    [JsonPropertyName("type")] public string? Type { get; set; }
    [JsonPropertyName("major")] public long? Major { get; set; }
    [JsonPropertyName("minor")] public long? Minor { get; set; }
    [JsonPropertyName("access")] public string? Access { get; set; }
}

public sealed class SpecMemory
{
    [JsonPropertyName("limit")] public long? Limit { get; set; }
    [JsonPropertyName("reservation")] public long? Reservation { get; set; }
    [JsonPropertyName("swap")] public long? Swap { get; set; }
    [JsonPropertyName("swappiness")] public ulong? Swappiness { get; set; }
    [JsonPropertyName("disableOOMKiller")] public bool? DisableOomKiller { get; set; }
}

public sealed class SpecCpu
{
    [JsonPropertyName("shares")] public ulong? Shares { get; set; }
    [JsonPropertyName("quota")] public long? Quota { get; set; }
    [JsonPropertyName("period")] public ulong? Period { get; set; }
    [JsonPropertyName("cpus")] public string? Cpus { get; set; }
    [JsonPropertyName("mems")] public string? Mems { get; set; }
}

public sealed class SpecPids
{
    [JsonPropertyName("limit")] public long Limit { get; set; }
}

public sealed class SpecBlockIo
{
    [JsonPropertyName("weight")] public ushort? Weight { get; set; }
    [JsonPropertyName("throttleReadBpsDevice")] public List<SpecThrottleDevice> ThrottleReadBpsDevice { get; set; } = [];
    [JsonPropertyName("throttleWriteBpsDevice")] public List<SpecThrottleDevice> ThrottleWriteBpsDevice { get; set; } = [];
    [JsonPropertyName("throttleReadIOPSDevice")] public List<SpecThrottleDevice> ThrottleReadIopsDevice { get; set; } = [];
    [JsonPropertyName("throttleWriteIOPSDevice")] public List<SpecThrottleDevice> ThrottleWriteIopsDevice { get; set; } = [];
}

public sealed class SpecThrottleDevice
{
    [JsonPropertyName("major")] public long Major { get; set; }
    [JsonPropertyName("minor")] public long Minor { get; set; }
    [JsonPropertyName("rate")] public ulong Rate { get; set; }
}

public sealed class SpecHugepageLimit
{
    [JsonPropertyName("pageSize")] public string PageSize { get; set; } = string.Empty;
    [JsonPropertyName("limit")] public ulong Limit { get; set; }
}

/// <summary>Source-generated JSON metadata for the spec (Native AOT: no reflection).</summary>
[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, WriteIndented = true)]
[JsonSerializable(typeof(RuntimeSpec))]
[JsonSerializable(typeof(SpecProcess))]
[JsonSerializable(typeof(SpecResources))]
public sealed partial class RuntimeSpecJson : JsonSerializerContext
{
    private static readonly Nacelle.Common.JsonMetadata.Releasable<RuntimeSpecJson> Uncached =
        new(static () => new(new JsonSerializerOptions { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, WriteIndented = true }));

    /// <summary>The context to use: <see cref="Default"/>, or with <see cref="Nacelle.Common.JsonMetadata.Cached"/> off one
    /// kept until <see cref="Nacelle.Common.JsonMetadata.Release"/>, whose metadata then goes with it (its options are the
    /// attribute's above; a unit test compares the two).</summary>
    public static RuntimeSpecJson Current => Nacelle.Common.JsonMetadata.Cached ? Default : Uncached.Get();
}
