using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Nacelle.Common;

namespace Nacelle.Sandbox.Monitor;

/// <summary>
/// The daemon <-> nacelle-monitor protocol: one JSON object per line on the pod's monitor socket, each request
/// answered by one response with the same <see cref="MonitorRequest.Id"/>. Versioned: a hello names the version and
/// a monitor refuses a version it does not speak.
/// </summary>
public static class MonitorProtocol
{
    public const int Version = 1;

    /// <summary>Requests.</summary>
    public const string Hello = "hello";
    public const string Create = "create";
    public const string Start = "start";
    public const string Kill = "kill";
    public const string State = "state";
    public const string List = "list";
    public const string Delete = "delete";
    public const string ReopenLog = "reopen-log";
    public const string Shutdown = "shutdown";

    /// <summary>Runs a process in a running container to completion and answers with its exit and captured output
    /// (<see cref="MonitorRequest.ProcessJson"/>, <see cref="MonitorRequest.TimeoutMs"/>, <see cref="MonitorRequest.OutputLimit"/>
    /// -> <see cref="MonitorResponse.Exec"/>).</summary>
    public const string ExecSync = "exec-sync";

    /// <summary>Changes a container's cgroup limits (<see cref="MonitorRequest.ResourcesJson"/>, OCI linux.resources).</summary>
    public const string Update = "update";

    /// <summary>
    /// Turns the connection into an event stream: after the ok answer the monitor only writes event lines
    /// (<see cref="MonitorResponse.Event"/> with <see cref="MonitorResponse.Container"/>, <see cref="MonitorRequest.Id"/> 0)
    /// until either side closes. <see cref="EventExited"/> is sent once a container's exit is durably recorded; a
    /// container that exited before the watch began is not repeated (the watcher lists first).
    /// </summary>
    public const string Watch = "watch";

    public const string EventExited = "exited";

    /// <summary>The longest line either side accepts (a spec with a large seccomp profile fits comfortably).</summary>
    public const int MaxLineBytes = 4 << 20;

    public static byte[] Encode<T>(T message, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(message, type);
        var line = new byte[bytes.Length + 1];
        bytes.CopyTo(line, 0);
        line[^1] = (byte)'\n';
        return line;
    }

    /// <summary>Reads one line; null at end of stream.</summary>
    public static async Task<string?> ReadLineAsync(Stream stream, MemoryStream pending, CancellationToken cancellationToken)
    {
        var buffer = new byte[8192];
        while (true)
        {
            var data = pending.GetBuffer().AsSpan(0, (int)pending.Length);
            var newline = data.IndexOf((byte)'\n');
            if (newline >= 0)
            {
                var line = Encoding.UTF8.GetString(data[..newline]);
                var rest = data[(newline + 1)..].ToArray();
                pending.SetLength(0);
                pending.Write(rest);
                return line;
            }

            if (pending.Length > MaxLineBytes)
            {
                throw NacelleException.InvalidArgument($"monitor protocol: a line is longer than {MaxLineBytes} bytes");
            }

            var n = await stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                return null;
            }

            pending.Write(buffer, 0, n);
        }
    }
}

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

    /// <summary>create: the CRI log file the monitor writes (null: output discarded).</summary>
    public string? LogPath { get; init; }

    public int? Signal { get; init; }
    public bool All { get; init; }
    public bool Force { get; init; }

    /// <summary>exec-sync: the process to run, OCI "process" JSON (args, env, cwd, user, capabilities...).</summary>
    public string? ProcessJson { get; init; }

    /// <summary>exec-sync: kill the process (SIGKILL) after this many milliseconds; null or 0: no timeout.</summary>
    public long? TimeoutMs { get; init; }

    /// <summary>exec-sync: the most bytes kept of each of stdout and stderr (kubelet's cap is 16 MiB); more is dropped
    /// and flagged <see cref="MonitorExecResult.Truncated"/>.</summary>
    public int? OutputLimit { get; init; }

    /// <summary>update: OCI linux.resources JSON.</summary>
    public string? ResourcesJson { get; init; }
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
    public string? LogPath { get; init; }

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

    /// <summary>The failure as the exception the caller would have got in process.</summary>
    public NacelleException ToException() =>
        new(Enum.TryParse<ErrorKind>(ErrorKind, out var kind) ? kind : Common.ErrorKind.Internal, Error ?? "monitor error");
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(MonitorRequest))]
[JsonSerializable(typeof(MonitorResponse))]
public sealed partial class MonitorJson : JsonSerializerContext;
