using System.Text.Json;
using System.Text.Json.Serialization;

namespace Nacelle.Common.PodMonitor;

/// <summary>A request to the monitor; fields not used by an operation stay null.</summary>
public sealed record MonitorRequest
{
    public long Id { get; init; }
    public required string Op { get; init; }
    public int? Version { get; init; }
    public string? ContainerId { get; init; }

    /// <summary>create: the OCI runtime spec (config.json text) and the bundle directory relative paths resolve against.</summary>
    public string? SpecJson { get; init; }
    public string? Bundle { get; init; }

    /// <summary>create: the CRI log file the monitor writes, an absolute path (null: output discarded). On the wire
    /// "logPath", as protocol version 1 named it.</summary>
    [JsonPropertyName("logPath")]
    public string? LogFile { get; init; }

    public int? Signal { get; init; }
    public bool All { get; init; }
    public bool Force { get; init; }

    /// <summary>exec-sync: the process to run, OCI "process" JSON (args, env, cwd, user, capabilities...).</summary>
    public string? ProcessJson { get; init; }

    /// <summary>exec-sync: kill the process (SIGKILL) after this many milliseconds; null or 0: no timeout.</summary>
    public long? TimeoutMs { get; init; }

    /// <summary>exec-sync: the most bytes kept of each of stdout and stderr (null or 0:
    /// <see cref="MonitorProtocol.DefaultExecOutputLimit"/>, kubelet's cap); more is dropped and flagged
    /// <see cref="MonitorExecResult.Truncated"/>.</summary>
    public int? OutputLimit { get; init; }

    /// <summary>update: OCI linux.resources JSON.</summary>
    public string? ResourcesJson { get; init; }

    /// <summary>create (v2): the container keeps its stdin open (CRI stdin): a pipe whose write end the monitor holds
    /// for attachers (a tty container's stdin is its pty). exec-stream/attach: a stdin descriptor is wanted.</summary>
    public bool Stdin { get; init; }

    /// <summary>create (v2): CRI stdin_once: the container's stdin is closed when the first attach that took it ends.</summary>
    public bool StdinOnce { get; init; }

    /// <summary>attach: the container's stdout (for a tty container, its terminal's output) is wanted.</summary>
    public bool Stdout { get; init; }

    /// <summary>attach: the container's stderr is wanted (a tty container has none).</summary>
    public bool Stderr { get; init; }

    /// <summary>create: the external OCI runtime of the pod's RuntimeClass handler; null: nacelle's built-in core.</summary>
    public ExternalRuntime? Runtime { get; init; }
}

/// <summary>The outcome of an exec-sync.</summary>
public sealed record MonitorExecResult
{
    public int ExitCode { get; init; }

    /// <summary>Captured output, base64 in JSON (byte arrays).</summary>
    public byte[] Stdout { get; init; } = [];
    public byte[] Stderr { get; init; } = [];

    /// <summary>The timeout fired and the process was killed (ExitCode is then 137 or what it died of).</summary>
    public bool TimedOut { get; init; }

    /// <summary>Output beyond OutputLimit was dropped.</summary>
    public bool Truncated { get; init; }
}

/// <summary>What the monitor knows of one container: state, pid, times, and the durably recorded exit.</summary>
public sealed record MonitorContainer
{
    public required string Id { get; init; }
    public required string Status { get; init; }
    public int Pid { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }
    public int? ExitCode { get; init; }
    public int? ExitSignal { get; init; }
    public bool OomKilled { get; init; }

    /// <summary>The CRI log file the monitor writes (wire name "logPath", as in <see cref="MonitorRequest.LogFile"/>).</summary>
    [JsonPropertyName("logPath")]
    public string? LogFile { get; init; }

    /// <summary>The container's cgroup (path inside the hierarchy): the daemon reads stats from it directly.</summary>
    public string? CgroupPath { get; init; }
}

public sealed record MonitorResponse
{
    public long Id { get; init; }
    public bool Ok { get; init; }
    public string? ErrorKind { get; init; }
    public string? Error { get; init; }
    public int? Version { get; init; }
    public string? PodId { get; init; }
    public int? MonitorPid { get; init; }
    public MonitorContainer? Container { get; init; }
    public List<MonitorContainer>? Containers { get; init; }
    public MonitorExecResult? Exec { get; init; }

    /// <summary>On a watch connection: the event kind (<see cref="MonitorProtocol.EventExited"/>).</summary>
    public string? Event { get; init; }

    /// <summary>exec-stream/attach (v2): the names of the descriptors that came with this answer as SCM_RIGHTS, in their
    /// order ("pty", "stdin", "stdout", "stderr").</summary>
    public List<string>? Fds { get; init; }

    /// <summary>The failure as the exception the caller would have got in process.</summary>
    public NacelleException ToException() =>
        new(Enum.TryParse<ErrorKind>(ErrorKind, out var kind) ? kind : Nacelle.Common.ErrorKind.Internal, Error ?? "monitor error");
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(MonitorRequest))]
[JsonSerializable(typeof(MonitorResponse))]
public sealed partial class MonitorJson : JsonSerializerContext
{
    private static readonly Nacelle.Common.JsonMetadata.Releasable<MonitorJson> Uncached =
        new(static () => new(new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull }));

    /// <summary>The context to use: <see cref="Default"/>, or with <see cref="Nacelle.Common.JsonMetadata.Cached"/> off one
    /// kept until <see cref="Nacelle.Common.JsonMetadata.Release"/>, whose metadata then goes with it (its options are the
    /// attribute's above; a unit test compares the two).</summary>
    public static MonitorJson Current => Nacelle.Common.JsonMetadata.Cached ? Default : Uncached.Get();
}
