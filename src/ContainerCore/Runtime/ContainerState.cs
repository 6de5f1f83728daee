using System.Text.Json;
using System.Text.Json.Serialization;

namespace Nacelle.ContainerCore.Runtime;

/// <summary>The OCI lifecycle states (runtime-spec "state"), plus paused.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ContainerStatus>))]
public enum ContainerStatus
{
    /// <summary>Created: the init process is parked before execve, waiting for start.</summary>
    Created,
    Running,
    Paused,
    /// <summary>The init process has exited.</summary>
    Stopped,
}

/// <summary>What the core knows of one container; persisted as state.json in its state directory.</summary>
public sealed record ContainerState
{
    public required string Id { get; init; }
    public required ContainerStatus Status { get; init; }
    public required int Pid { get; init; }

    /// <summary>The init process's start time (clock ticks since boot, /proc/PID/stat field 22): with the pid, its identity.</summary>
    public required ulong PidStartTime { get; init; }

    public required string Bundle { get; init; }
    public required string Rootfs { get; init; }
    public required string CgroupPath { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }

    /// <summary>Exit code (128 + signal when killed by one); null while running or when the exit was not observed.</summary>
    public int? ExitCode { get; init; }

    public int? ExitSignal { get; init; }

    /// <summary>True when the kernel's OOM killer killed a process of this container.</summary>
    public bool OomKilled { get; init; }

    public Dictionary<string, string> Annotations { get; init; } = [];

    /// <summary>The external OCI runtime running this container (null: the built-in core): a restarted monitor drives
    /// the container through it again.</summary>
    public Nacelle.Common.PodMonitor.ExternalRuntime? Runtime { get; init; }
}

[JsonSourceGenerationOptions(WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ContainerState))]
internal sealed partial class ContainerStateJson : JsonSerializerContext
{
    private static readonly Nacelle.Common.JsonMetadata.Releasable<ContainerStateJson> Uncached =
        new(static () => new(new JsonSerializerOptions { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull }));

    /// <summary>The context to use: <see cref="Default"/>, or with <see cref="Nacelle.Common.JsonMetadata.Cached"/> off one
    /// kept until <see cref="Nacelle.Common.JsonMetadata.Release"/>, whose metadata then goes with it (its options are the
    /// attribute's above; a unit test compares the two).</summary>
    public static ContainerStateJson Current => Nacelle.Common.JsonMetadata.Cached ? Default : Uncached.Get();
}
