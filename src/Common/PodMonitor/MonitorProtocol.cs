using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Nacelle.Common.PodMonitor;

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

    /// <summary>exec-sync keeps at most this much of each stream when the request names no limit (kubelet's cap).</summary>
    public const int DefaultExecOutputLimit = 16 << 20;

    public static byte[] Encode<T>(T message, JsonTypeInfo<T> type)
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
