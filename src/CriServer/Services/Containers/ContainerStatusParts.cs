using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Nacelle.ContainerCore.Spec;
using Nacelle.Sandbox.Store;
using Runtime.V1;

namespace Nacelle.CriServer.Services.Containers;

/// <summary>
/// What a container's status reports beyond its record's fields, and what would cost a parse per call: the mounts and
/// resources of its ContainerConfig as created (or as UpdateContainerResources left them) and its process user from the
/// OCI spec in its bundle. Computed once per container and config, kept with the stored config: a container's records
/// (a state change makes a new one) carry the same config array until an update replaces it, so the parts live
/// exactly as long as some record of the container holds that array, and a new one (an update) computes them again.
/// CreateContainer seeds them from the request it mapped, so the first status parses no ContainerConfig.
/// </summary>
internal sealed class ContainerStatusParts
{
    // By the stored config's instance (reference identity): the binary config, or the JSON text of a container made by a
    // daemon before the binary form. The entry names its container: an instance two records share by chance never
    // serves another container.
    private static readonly ConditionalWeakTable<object, ContainerStatusParts> ByConfig = new();
    private static readonly ConditionalWeakTable<ContainerRecord, ContainerStatusParts> ByRecord = new();

    private readonly string _containerId;

    private ContainerStatusParts(string containerId, ContainerConfig config, ContainerUser? user)
    {
        _containerId = containerId;
        Config = config;
        User = user;
    }

    /// <summary>The ContainerConfig as kubelet sent it (read only: clone what goes into a message).</summary>
    public ContainerConfig Config { get; }

    /// <summary>The container process's uid, gid and supplementary groups from its spec; null without a spec.</summary>
    public ContainerUser? User { get; }

    /// <summary>The parts of <paramref name="container"/>; <paramref name="specJson"/> reads its spec (null: none).</summary>
    public static ContainerStatusParts Of(ContainerRecord container, Func<ContainerRecord, string?> specJson)
    {
        if (ConfigKey(container) is not { } key)
        {
            return ByRecord.GetValue(container, record => new ContainerStatusParts(record.Id, new ContainerConfig(), UserOf(specJson(record))));
        }

        if (ByConfig.TryGetValue(key, out var parts) && parts._containerId == container.Id)
        {
            return parts;
        }

        return Keep(container, ContainerMapping.Config(container), specJson);
    }

    /// <summary>CreateContainer's seed: the parts of the container it just created, from the ContainerConfig it mapped (a
    /// copy is kept), so no status parses that config again.</summary>
    public static void Seed(ContainerRecord container, ContainerConfig config, Func<ContainerRecord, string?> specJson)
    {
        if (ConfigKey(container) is not null)
        {
            Keep(container, config.Clone(), specJson);
        }
    }

    private static ContainerStatusParts Keep(ContainerRecord container, ContainerConfig config, Func<ContainerRecord, string?> specJson)
    {
        var parts = new ContainerStatusParts(container.Id, config, UserOf(specJson(container)));
        ByConfig.AddOrUpdate(ConfigKey(container)!, parts);
        return parts;
    }

    /// <summary>The stored config a container's records share, null when it has none.</summary>
    private static object? ConfigKey(ContainerRecord container) =>
        container.Config.Length > 0 ? container.Config : container.LegacyConfigJson.Length > 0 ? container.LegacyConfigJson : null;

    /// <summary>process.user of an OCI spec, read without building the rest of the spec (a status needs nothing else).</summary>
    internal static ContainerUser? UserOf(string? specJson)
    {
        if (specJson is null)
        {
            return null;
        }

        var reader = new Utf8JsonReader(Encoding.UTF8.GetBytes(specJson));
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject || FindProperty(ref reader, "process"u8) is not JsonTokenType.StartObject
            || FindProperty(ref reader, "user"u8) is not JsonTokenType.StartObject
            || JsonSerializer.Deserialize(ref reader, RuntimeSpecJson.Default.SpecUser) is not { } specUser)
        {
            return null;
        }

        var linux = new LinuxContainerUser { Uid = specUser.Uid, Gid = specUser.Gid };
        linux.SupplementalGroups.Add(specUser.AdditionalGids.Select(g => (long)g));
        return new ContainerUser { Linux = linux };
    }

    /// <summary>Moves the reader (inside an object, before its first property) to the value of <paramref name="name"/>
    /// and returns that value's token type; null when the object has no such property.</summary>
    private static JsonTokenType? FindProperty(ref Utf8JsonReader reader, ReadOnlySpan<byte> name)
    {
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var match = reader.ValueTextEquals(name);
            reader.Read();
            if (match)
            {
                return reader.TokenType;
            }

            reader.Skip();
        }

        return null;
    }
}
