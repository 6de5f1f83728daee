using Google.Protobuf;
using Nacelle.Common;
using Nacelle.ContainerCore.Spec;
using Nacelle.Sandbox.Containers.Spec;
using Nacelle.Sandbox.Containers;
using Nacelle.Sandbox.Store;
using Runtime.V1;

namespace Nacelle.CriServer.Services.Containers;

/// <summary>CRI container messages <-> the container layer's records.</summary>
internal static class ContainerMapping
{
    public static ContainerConfig Config(ContainerRecord container) =>
        container.ConfigJson.Length > 0 ? JsonParser.Default.Parse<ContainerConfig>(container.ConfigJson) : new ContainerConfig();

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

    public static Container ToListItem(ContainerRecord container)
    {
        var item = new Container
        {
            Id = container.Id, PodSandboxId = container.PodId, Metadata = Metadata(container), Image = Image(container),
            ImageRef = container.ImageDigestRef, ImageId = container.ImageId, State = State(container), CreatedAt = container.CreatedAt,
        };
        item.Labels.Add(new Dictionary<string, string>(container.Labels));
        item.Annotations.Add(new Dictionary<string, string>(container.Annotations));
        return item;
    }

    public static ContainerStatus ToStatus(ContainerRecord container, RuntimeSpec? spec)
    {
        var config = Config(container);
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
        };
        status.Labels.Add(new Dictionary<string, string>(container.Labels));
        status.Annotations.Add(new Dictionary<string, string>(container.Annotations));
        status.Mounts.Add(config.Mounts.Select(m => m.Clone()));
        if (config.Linux?.Resources is { } resources)
        {
            status.Resources = new ContainerResources { Linux = resources.Clone() };
        }

        if (spec?.Process?.User is { } user)
        {
            var linux = new LinuxContainerUser { Uid = user.Uid, Gid = user.Gid };
            linux.SupplementalGroups.Add(user.AdditionalGids.Select(g => (long)g));
            status.User = new ContainerUser { Linux = linux };
        }

        if (Enum.TryParse<Signal>(StopSignals.NameOf(container.StopSignal), out var signal))
        {
            status.StopSignal = signal;
        }

        return status;
    }

    public static Runtime.V1.ContainerStats ToStats(ContainerRecord container, ContainerUsage usage, string writableMountpoint)
    {
        var at = UnixTime.Nanoseconds(usage.At);
        var attributes = new ContainerAttributes { Id = container.Id, Metadata = Metadata(container) };
        attributes.Labels.Add(new Dictionary<string, string>(container.Labels));
        attributes.Annotations.Add(new Dictionary<string, string>(container.Annotations));
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
