namespace Nacelle.Sandbox.Store;

/// <summary>A container's state (CRI <c>ContainerState</c>).</summary>
public enum ContainerRecordState
{
    Created = 0,
    Running = 1,
    Exited = 2,
    Unknown = 3,
}

/// <summary>
/// A container as the metadata database keeps it. Times are unix nanoseconds. Identity fields (<see cref="Id"/>,
/// <see cref="PodId"/>, <see cref="Name"/>, <see cref="Attempt"/>, <see cref="CreatedAt"/>) never change after
/// <see cref="PodStore.AddContainer"/>.
/// </summary>
public sealed record ContainerRecord
{
    /// <summary>64 lower-case hex digits.</summary>
    public required string Id { get; init; }

    /// <summary>The pod the container belongs to (must exist).</summary>
    public required string PodId { get; init; }

    /// <summary>Container name (CRI metadata.name).</summary>
    public required string Name { get; init; }

    /// <summary>Restart attempt (CRI metadata.attempt).</summary>
    public uint Attempt { get; init; }

    /// <summary>The image as asked for (CRI image.image).</summary>
    public string ImageRef { get; init; } = "";

    /// <summary>The resolved image id (config digest).</summary>
    public string ImageId { get; init; } = "";

    public ContainerRecordState State { get; init; } = ContainerRecordState.Created;

    /// <summary>Creation time, unix nanoseconds.</summary>
    public long CreatedAt { get; init; }

    /// <summary>Start time, unix nanoseconds; null before start.</summary>
    public long? StartedAt { get; init; }

    /// <summary>Exit time, unix nanoseconds; null before exit.</summary>
    public long? FinishedAt { get; init; }

    public int? ExitCode { get; init; }

    /// <summary>Short reason for the state (e.g. OOMKilled, Error, Completed).</summary>
    public string Reason { get; init; } = "";

    public string Message { get; init; } = "";

    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    public IReadOnlyDictionary<string, string> Annotations { get; init; } = new Dictionary<string, string>();

    /// <summary>The log path relative to the pod's log directory (CRI log_path).</summary>
    public string LogPath { get; init; } = "";

    /// <summary>The container's init pid, null when not running / unknown.</summary>
    public int? Pid { get; init; }

    /// <summary>The original ContainerConfig in protobuf's binary encoding, opaque to the store. The same array instance
    /// stays with every record of the container until UpdateContainerResources replaces it.</summary>
    public byte[] Config { get; init; } = [];

    /// <summary>The ContainerConfig as protobuf JSON, as daemons before the binary form stored it; empty for containers
    /// made since (<see cref="Config"/> holds theirs).</summary>
    public string LegacyConfigJson { get; init; } = "";

    /// <summary>False while CreateContainer is still building the container: a row left incomplete by a daemon that
    /// died half way is cleaned up by recovery, never shown as a container.</summary>
    public bool Complete { get; init; } = true;

    /// <summary>The signal StopContainer sends first (the container's or the image's stop signal, else SIGTERM).</summary>
    public int StopSignal { get; init; } = 15;

    /// <summary>The full path of the CRI log file the monitor writes ("" when kubelet asked for none).</summary>
    public string LogFile { get; init; } = "";

    /// <summary>The image's digest reference (repo@sha256:...), CRI image_ref.</summary>
    public string ImageDigestRef { get; init; } = "";

    /// <summary>The container's cgroup (path inside the hierarchy).</summary>
    public string CgroupPath { get; init; } = "";

    /// <summary>The image's name as the store knows it (its first repo tag), CRI ContainerStatus.image.</summary>
    public string ImageName { get; init; } = "";

    /// <summary>Whether the container keeps a stdin open for attachers (CRI stdin), and closes it after the first
    /// attach ends (stdin_once): what StartContainer hands the pod's monitor with the spec.</summary>
    public bool Stdin { get; init; }

    public bool StdinOnce { get; init; }
}
