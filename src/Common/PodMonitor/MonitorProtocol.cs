using System.Text.Json.Serialization.Metadata;

namespace Nacelle.Common.PodMonitor;

/// <summary>
/// The daemon <-> nacelle-monitor protocol: one JSON object per line on the pod's monitor socket, each request
/// answered by one response with the same <see cref="MonitorRequest.Id"/>. Versioned: a hello names the version and
/// a monitor refuses a version it does not speak.
/// </summary>
public static class MonitorProtocol
{
    /// <summary>The newest version this side speaks. Version 2 adds <see cref="ExecStream"/>, <see cref="Attach"/> and the
    /// create fields <see cref="MonitorRequest.Stdin"/> and <see cref="MonitorRequest.StdinOnce"/>; a version 1 monitor
    /// (started by an older daemon) still serves every version 1 operation.</summary>
    public const int Version = 2;

    /// <summary>The oldest version this side still speaks.</summary>
    public const int MinVersion = 1;

    /// <summary>
    /// The container id of a pod's pause-init (nacelle-pause), which the daemon creates first in every pod. It never
    /// forks, so it leaves no orphans: the monitor does not scan for them on its account even when it shares the
    /// monitor's pid namespace (a pod without a shared pid namespace, Kubernetes' default).
    /// </summary>
    public const string PauseInitId = "pause";

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

    /// <summary>
    /// Starts a process in a running container whose stdio the DAEMON then carries (kubectl exec, and ExecSync on a
    /// version 2 monitor, so output never passes through the monitor's memory). Request: <see cref="MonitorRequest.ProcessJson"/>
    /// (OCI process: terminal and consoleSize for a tty), <see cref="MonitorRequest.Stdin"/>. The ok answer carries file
    /// descriptors as SCM_RIGHTS on the answer line (<see cref="MonitorResponse.Fds"/> names them, in order): with a
    /// terminal one, "pty" (the pty master, allocated from the container's devpts; the daemon writes stdin to it, reads
    /// the output from it and resizes it); without, "stdin" (the write end of the process's stdin pipe, when asked for),
    /// "stdout" and "stderr" (read ends). From then on the connection belongs to that process: the monitor, still its
    /// parent, reaps it and writes one event line (<see cref="EventExited"/>, <see cref="MonitorResponse.Exec"/> with the
    /// exit code, 128+N for a signal) and closes; if the daemon closes the connection first (the client went away, a
    /// timeout), the monitor SIGKILLs the process and reaps it.
    /// </summary>
    public const string ExecStream = "exec-stream";

    /// <summary>
    /// Attaches to a container's main process (kubectl attach). Request: <see cref="MonitorRequest.ContainerId"/>,
    /// <see cref="MonitorRequest.Stdin"/>, <see cref="MonitorRequest.Stdout"/>, <see cref="MonitorRequest.Stderr"/>. The ok
    /// answer carries, as SCM_RIGHTS, in this order and named by <see cref="MonitorResponse.Fds"/>: "stdin" (a dup of
    /// the write end of the container's stdin pipe, or "pty", a dup of its pty master, which also takes resizes) when
    /// asked for and the container was created with stdin; "stdout" and "stderr" (read ends of pipes of the monitor's
    /// own, a tty container has only "stdout") when asked for. The monitor copies the container's output into them from
    /// then on, next to the CRI log, which never waits for an attacher: an attacher whose pipe stays full is dropped
    /// (event <see cref="EventDetached"/> with <see cref="MonitorResponse.Error"/>). When the container exits: an
    /// <see cref="EventExited"/> line with <see cref="MonitorResponse.Container"/>, then the monitor closes. The daemon
    /// closing the connection detaches; for a container created with stdin_once, the container's stdin is closed when
    /// the first attach that took stdin ends. The daemon closes its "stdin" descriptor at its client's end of input
    /// (kubectl's <c>echo hi | kubectl run -i</c>); so that the container sees that end at once, as with containerd, a
    /// monitor may hand the first stdin_once attacher the write end itself instead of a dup, keeping no copy.
    /// </summary>
    public const string Attach = "attach";

    /// <summary>An attacher was dropped by the monitor (too slow: its output pipe stayed full).</summary>
    public const string EventDetached = "detached";

    /// <summary>The longest line either side accepts (a spec with a large seccomp profile fits comfortably).</summary>
    public const int MaxLineBytes = 4 << 20;

    /// <summary>exec-sync keeps at most this much of each stream when the request names no limit (kubelet's cap).</summary>
    public const int DefaultExecOutputLimit = 16 << 20;

    /// <summary>A message as one line (JSON and a newline).</summary>
    public static byte[] Encode<T>(T message, JsonTypeInfo<T> type)
    {
        var bytes = JsonMetadata.Serialize(message, type);
        var line = new byte[bytes.Length + 1];
        bytes.CopyTo(line, 0);
        line[^1] = (byte)'\n';
        return line;
    }

    /// <summary>
    /// Reads one line, as the UTF-8 bytes it came in (without its newline), to be parsed from those: JSON parsed from a
    /// string is first transcoded into a buffer rented from the shared array pool, three times the string's length,
    /// which the pool then keeps. Null at end of stream.
    /// </summary>
    public static async Task<byte[]?> ReadLineAsync(Stream stream, MemoryStream pending, CancellationToken cancellationToken)
    {
        var buffer = new byte[8192];
        while (true)
        {
            var data = pending.GetBuffer().AsSpan(0, (int)pending.Length);
            var newline = data.IndexOf((byte)'\n');
            if (newline >= 0)
            {
                var line = data[..newline].ToArray();
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
