using Nacelle.Common;
using Runtime.V1;

namespace Nacelle.CriServer.Streaming;

/// <summary>The three kinds of stream, named as in their URL path.</summary>
internal enum StreamKind
{
    Exec,
    Attach,
    PortForward,
}

/// <summary>
/// A validated Exec, Attach or PortForward request, kept on the server with its token until the client connects
/// (nothing is decoded from the URL). <see cref="PodId"/> is what per-pod stream limits count.
/// </summary>
internal abstract record PendingStream(StreamKind Kind, string PodId)
{
    /// <summary>"exec", "attach" or "portforward": the URL path segment.</summary>
    public string PathSegment => Kind switch
    {
        StreamKind.Exec => "exec",
        StreamKind.Attach => "attach",
        _ => "portforward",
    };
}

internal sealed record ExecStream(string ContainerId, string PodId, IReadOnlyList<string> Command, bool Stdin, bool Stdout, bool Stderr, bool Tty)
    : PendingStream(StreamKind.Exec, PodId);

internal sealed record AttachStream(string ContainerId, string PodId, bool Stdin, bool Stdout, bool Stderr, bool Tty)
    : PendingStream(StreamKind.Attach, PodId);

/// <summary>A port-forward; <see cref="Ports"/> empty means any port the client names.</summary>
internal sealed record PortForwardStream(string PodId, IReadOnlyList<int> Ports) : PendingStream(StreamKind.PortForward, PodId);

/// <summary>What the rpcs know of a container when they check a stream request.</summary>
internal sealed record StreamContainer(string Id, string PodId, bool Running, string State, bool Tty, bool Stdin);

/// <summary>What the rpcs know of a pod when they check a port-forward request.</summary>
internal sealed record StreamPod(string Id, bool Ready);

/// <summary>
/// The checks the Exec, Attach and PortForward rpcs make before a URL is handed out (kubelet's, plus the
/// container's and pod's state), each refusal naming what was wrong.
/// </summary>
internal static class StreamRequests
{
    public static ExecStream Exec(ExecRequest request, StreamContainer container)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(container);
        if (request.Cmd.Count == 0)
        {
            throw NacelleException.InvalidArgument("cmd is empty: Exec needs a command");
        }

        CheckStreams(request.Stdin, request.Stdout, request.Stderr, request.Tty);
        CheckRunning(container, "exec");
        return new ExecStream(container.Id, container.PodId, [.. request.Cmd], request.Stdin, request.Stdout, request.Stderr, request.Tty);
    }

    public static AttachStream Attach(AttachRequest request, StreamContainer container)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(container);
        CheckStreams(request.Stdin, request.Stdout, request.Stderr, request.Tty);
        CheckRunning(container, "attach");
        if (request.Stdin && !container.Stdin)
        {
            throw NacelleException.FailedPrecondition(
                $"container {container.Id} was created without stdin (stdin: false), so attach cannot write to it; attach without stdin");
        }

        if (request.Tty && !container.Tty)
        {
            throw NacelleException.FailedPrecondition(
                $"container {container.Id} has no terminal (tty: false); attach with tty needs a container created with tty");
        }

        return new AttachStream(container.Id, container.PodId, request.Stdin, request.Stdout, request.Stderr, request.Tty);
    }

    public static PortForwardStream PortForward(PortForwardRequest request, StreamPod pod)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(pod);
        foreach (var port in request.Port)
        {
            if (port is < 1 or > 65535)
            {
                throw NacelleException.InvalidArgument($"port {port} is not a TCP port (1-65535)");
            }
        }

        if (!pod.Ready)
        {
            throw NacelleException.FailedPrecondition($"pod sandbox {pod.Id} is not ready: port-forward needs a running pod");
        }

        return new PortForwardStream(pod.Id, request.Port.Distinct().ToArray());
    }

    private static void CheckStreams(bool stdin, bool stdout, bool stderr, bool tty)
    {
        if (tty && stderr)
        {
            throw NacelleException.InvalidArgument("tty and stderr cannot both be true: a terminal has a single output stream");
        }

        if (!stdin && !stdout && !stderr)
        {
            throw NacelleException.InvalidArgument("one of stdin, stdout or stderr must be true");
        }
    }

    private static void CheckRunning(StreamContainer container, string what)
    {
        if (!container.Running)
        {
            throw NacelleException.FailedPrecondition($"container {container.Id} is {container.State}: {what} needs a running container");
        }
    }
}
