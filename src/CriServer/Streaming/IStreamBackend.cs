using System.Net.Sockets;
using Nacelle.Sandbox.Streams;

namespace Nacelle.CriServer.Streaming;

/// <summary>
/// What the streaming server needs from the runtime once a client is connected: run a command, attach to a
/// container, open a TCP connection in a pod. The wire protocols (SPDY, WebSocket) are the server's business; the
/// backend sees plain byte streams. Every call ends when <c>cancellationToken</c> fires (the client went away, the
/// connection idled out, the daemon stops): an exec process is then killed and reaped, an attach detached, and the
/// call throws <see cref="OperationCanceledException"/>. A write to the client that fails (IOException) ends the
/// call the same way: its process is killed, the exception passed on. Refusals throw <see cref="Nacelle.Common.NacelleException"/>;
/// the client sees their message.
/// </summary>
internal interface IStreamBackend
{
    /// <summary>
    /// Runs <see cref="ExecStream.Command"/> in the running container exactly as ExecSync would (its namespaces,
    /// cgroup, user, capabilities, seccomp, no_new_privs, environment), with <paramref name="io"/> as its stdio: a
    /// terminal when <see cref="StreamIo.Tty"/> (sized by every <see cref="StreamIo.Resize"/> event), else separate
    /// pipes. Returns the exit code (128+N for a signal N) once the process has exited and everything it wrote has
    /// been written to <see cref="StreamIo.Stdout"/>/<see cref="StreamIo.Stderr"/>. stdin EOF closes the process's
    /// stdin; once the process has exited, stdin is no longer read.
    /// </summary>
    Task<int> ExecAsync(ExecStream request, StreamIo io, CancellationToken cancellationToken);

    /// <summary>
    /// Attaches <paramref name="io"/> to the container's main process: its output from now on (while the CRI log
    /// keeps being written), <see cref="StreamIo.Stdin"/> to its stdin when the container has one, resize events
    /// to its terminal. Returns the exit code when the container exits; cancellation detaches without touching it.
    /// </summary>
    Task<int> AttachAsync(AttachStream request, StreamIo io, CancellationToken cancellationToken);

    /// <summary>
    /// A TCP connection to localhost:<paramref name="port"/> inside the pod's network namespace (the host's for
    /// host-network pods), connected, owned by the caller. It must be made without leaving a pool thread of the
    /// daemon in the pod's namespace (a socket made there and handed back as a descriptor).
    /// </summary>
    Task<Socket> OpenPortAsync(string podId, int port, CancellationToken cancellationToken);
}
