using System.Runtime.CompilerServices;
using Nacelle.ContainerCore.Spec;
using Nacelle.Sandbox.Store;
using Runtime.V1;

namespace Nacelle.CriServer.Services.Containers;

/// <summary>
/// What a container's status reports beyond its record's fields, and what would cost a parse per call: the mounts and
/// resources of its ContainerConfig as created (or as UpdateContainerResources left them) and its process user from the
/// OCI spec in its bundle. Computed once per record, kept with it: records are immutable (a state change or an update
/// makes a new one, computed again), and an entry goes when its record is no longer referenced.
/// </summary>
internal sealed class ContainerStatusParts
{
    private static readonly ConditionalWeakTable<ContainerRecord, ContainerStatusParts> Cache = new();

    private ContainerStatusParts(ContainerConfig config, ContainerUser? user)
    {
        Config = config;
        User = user;
    }

    /// <summary>The ContainerConfig as kubelet sent it (read only: clone what goes into a message).</summary>
    public ContainerConfig Config { get; }

    /// <summary>The container process's uid, gid and supplementary groups from its spec; null without a spec.</summary>
    public ContainerUser? User { get; }

    /// <summary>The parts of <paramref name="container"/>; <paramref name="specJson"/> reads its spec (null: none).</summary>
    public static ContainerStatusParts Of(ContainerRecord container, Func<ContainerRecord, string?> specJson) =>
        Cache.GetValue(container, record => Compute(record, specJson(record)));

    private static ContainerStatusParts Compute(ContainerRecord container, string? specJson)
    {
        ContainerUser? user = null;
        if (specJson is not null && RuntimeSpecFile.Parse(specJson).Process?.User is { } specUser)
        {
            var linux = new LinuxContainerUser { Uid = specUser.Uid, Gid = specUser.Gid };
            linux.SupplementalGroups.Add(specUser.AdditionalGids.Select(g => (long)g));
            user = new ContainerUser { Linux = linux };
        }

        return new ContainerStatusParts(ContainerMapping.Config(container), user);
    }
}
