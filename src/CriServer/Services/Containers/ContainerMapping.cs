using System.Runtime.CompilerServices;
using Google.Protobuf;
using Nacelle.Common;
using Nacelle.Sandbox.Containers;
using Nacelle.Sandbox.Store;
using Runtime.V1;

namespace Nacelle.CriServer.Services.Containers;

/// <summary>
/// CRI container messages <-> the container layer's records. A record's list item and status are built once per record
/// and kept with it (by reference identity, for as long as something holds the record): records are immutable and every
/// change of a container (state, exit, update) publishes a new one, so a kept message can never be stale. The kept
/// messages are shared by every answer that carries them and must never be changed: callers put them into a new
/// response as they are (the serializer only reads them) and clone one before changing it.
/// </summary>
internal static class ContainerMapping
{
    private static readonly ConditionalWeakTable<ContainerRecord, Container> ListItems = new();
    private static readonly ConditionalWeakTable<ContainerRecord, ContainerStatus> Statuses = new();

    /// <summary>The container's ContainerConfig as stored: binary, or the JSON of a container made before the binary form.</summary>
    public static ContainerConfig Config(ContainerRecord container) =>
        container.Config.Length > 0 ? ContainerConfig.Parser.ParseFrom(container.Config)
        : container.LegacyConfigJson.Length > 0 ? JsonParser.Default.Parse<ContainerConfig>(container.LegacyConfigJson)
        : new ContainerConfig();

    /// <summary>What Exec and Attach check of a container: its state, pod, and whether it was created with a
    /// terminal and stdin.</summary>
    public static Streaming.StreamContainer StreamTarget(ContainerRecord container)
    {
        var config = Config(container);
        return new Streaming.StreamContainer(container.Id, container.PodId, container.State == ContainerRecordState.Running,
            container.State.ToString().ToLowerInvariant(), config.Tty, config.Stdin);
    }

    public static ContainerMetadata Metadata(ContainerRecord container) => new() { Name = container.Name, Attempt = container.Attempt };

    public static ContainerState State(ContainerRecord container) => container.State switch
    {
        ContainerRecordState.Created => ContainerState.ContainerCreated,
        ContainerRecordState.Running => ContainerState.ContainerRunning,
        ContainerRecordState.Exited => ContainerState.ContainerExited,
        _ => ContainerState.ContainerUnknown,
    };

    /// <summary>A filter on a state CRI does not define matches no container (containerd compares states for equality);
    /// the store only knows the defined ones.</summary>
    public static bool MatchesNothing(ContainerFilter? filter) => filter?.State is { } state && !Enum.IsDefined(state.State);

    public static ContainerRecordFilter Filter(ContainerFilter? filter) => filter is null
        ? new ContainerRecordFilter()
        : new ContainerRecordFilter(
            IdPrefix: filter.Id.Length > 0 ? filter.Id : null,
            State: filter.State is { } state ? (ContainerRecordState)(int)state.State : null,
            PodIdPrefix: filter.PodSandboxId.Length > 0 ? filter.PodSandboxId : null,
            LabelSelector: filter.LabelSelector.Count > 0 ? new Dictionary<string, string>(filter.LabelSelector) : null);

    public static ContainerRecordFilter Filter(ContainerStatsFilter? filter) => filter is null
        ? new ContainerRecordFilter()
        : new ContainerRecordFilter(
            IdPrefix: filter.Id.Length > 0 ? filter.Id : null,
            PodIdPrefix: filter.PodSandboxId.Length > 0 ? filter.PodSandboxId : null,
            LabelSelector: filter.LabelSelector.Count > 0 ? new Dictionary<string, string>(filter.LabelSelector) : null);

    private static ImageSpec Image(ContainerRecord container) => new() { Image = container.ImageName.Length > 0 ? container.ImageName : container.ImageRef, UserSpecifiedImage = container.ImageRef };

    /// <summary>The container's ListContainers item, shared (read only: see the class).</summary>
    public static Container ToListItem(ContainerRecord container) => ListItems.GetValue(container, BuildListItem);

    private static Container BuildListItem(ContainerRecord container)
    {
        var item = new Container
        {
            Id = container.Id, PodSandboxId = container.PodId, Metadata = Metadata(container), Image = Image(container),
            ImageRef = container.ImageDigestRef, ImageId = container.ImageId, State = State(container), CreatedAt = container.CreatedAt,
        };
        CriMaps.Copy(container.Labels, item.Labels);
        CriMaps.Copy(container.Annotations, item.Annotations);
        return item;
    }

    /// <summary>The container's CRI status, shared (read only: see the class): its record, and the config and user of
    /// its <see cref="ContainerStatusParts"/> (fixed for a record: an update that changes them makes a new record).</summary>
    public static ContainerStatus ToStatus(ContainerRecord container, Func<ContainerRecord, string?> specJson) =>
        Statuses.TryGetValue(container, out var status)
            ? status
            : Statuses.GetValue(container, record => BuildStatus(record, ContainerStatusParts.Of(record, specJson)));

    /// <summary>The container's CRI status from its record and <paramref name="parts"/>, built anew.</summary>
    internal static ContainerStatus BuildStatus(ContainerRecord container, ContainerStatusParts parts)
    {
        var status = new ContainerStatus
        {
            Id = container.Id,
            Metadata = Metadata(container),
            State = State(container),
            CreatedAt = container.CreatedAt,
            StartedAt = container.StartedAt ?? 0,
            FinishedAt = container.FinishedAt ?? 0,
            ExitCode = container.ExitCode ?? 0,
            Image = Image(container),
            ImageRef = container.ImageDigestRef,
            ImageId = container.ImageId,
            Reason = container.Reason,
            Message = container.Message,
            LogPath = container.LogFile,
            User = parts.User?.Clone(),
        };
        CriMaps.Copy(container.Labels, status.Labels);
        CriMaps.Copy(container.Annotations, status.Annotations);
        status.Mounts.Add(parts.Config.Mounts.Select(m => m.Clone()));
        if (parts.Config.Linux?.Resources is { } resources)
        {
            status.Resources = new ContainerResources { Linux = resources.Clone() };
        }

        // The enum's C# names are "Sigterm", not "SIGTERM": map the number, never parse the name.
        status.StopSignal = CriSignals.ToCri(container.StopSignal);
        return status;
    }

    public static Runtime.V1.ContainerStats ToStats(ContainerRecord container, ContainerUsage usage, string writableMountpoint)
    {
        var at = UnixTime.Nanoseconds(usage.At);
        var attributes = new ContainerAttributes { Id = container.Id, Metadata = Metadata(container) };
        CriMaps.Copy(container.Labels, attributes.Labels);
        CriMaps.Copy(container.Annotations, attributes.Annotations);
        var stats = new Runtime.V1.ContainerStats
        {
            Attributes = attributes,
            WritableLayer = new FilesystemUsage
            {
                Timestamp = at,
                FsId = new FilesystemIdentifier { Mountpoint = writableMountpoint },
                UsedBytes = new UInt64Value { Value = (ulong)usage.WritableBytes },
                InodesUsed = new UInt64Value { Value = (ulong)usage.WritableInodes },
            },
        };
        stats.Cpu = CgroupUsageMapping.Cpu(usage.Cgroup, at);
        stats.Memory = CgroupUsageMapping.Memory(usage.Cgroup, at);
        if (usage.Cgroup?.Memory is { } memory)
        {
            stats.Swap = new SwapUsage { Timestamp = at, SwapUsageBytes = new UInt64Value { Value = memory.Swap } };
        }

        return stats;
    }
}
