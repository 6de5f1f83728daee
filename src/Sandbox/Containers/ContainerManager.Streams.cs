using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Spec;
using Nacelle.Sandbox.Monitor;
using Nacelle.Sandbox.Store;
using Nacelle.Sandbox.Streams;

namespace Nacelle.Sandbox.Containers;

/// <summary>Exec and attach connections to a container's monitor (protocol version 2): the stdio descriptors come to the
/// daemon, which carries the bytes itself (<see cref="ContainerStreams"/>, and ExecSync).</summary>
public sealed partial class ContainerManager
{
    /// <summary>The container when it runs; FailedPrecondition naming its state otherwise.</summary>
    internal ContainerRecord Running(string idOrPrefix, string what)
    {
        var container = Get(idOrPrefix);
        return container.State == ContainerRecordState.Running
            ? container
            : throw NacelleException.FailedPrecondition($"container {container.Id} is {StateName(container.State)}: {what} needs a running container");
    }

    /// <summary>Throws FailedPrecondition (saying why) unless the pod's monitor can hand exec and attach stdio to the
    /// daemon: a monitor an older nacelle started speaks protocol version 1 only.</summary>
    public async Task EnsureStreamsAsync(string podId, string what, CancellationToken cancellationToken = default)
    {
        var client = await MonitorOfAsync(_pods.Get(podId), cancellationToken).ConfigureAwait(false);
        client.EnsureStreams(what);
    }

    /// <summary>
    /// Starts <paramref name="command"/> in the running container as ExecSync would run it (the container's user,
    /// environment, working directory, capabilities, seccomp, no_new_privs, cgroup and namespaces), its stdio handed to
    /// the daemon: with <paramref name="tty"/> a terminal from the container's devpts ("pty", sized
    /// <paramref name="size"/> when known), else pipes ("stdin" when asked for, "stdout", "stderr").
    /// </summary>
    internal async Task<MonitorStreamConnection> OpenExecStreamAsync(ContainerRecord container, IReadOnlyList<string> command, bool stdin,
        bool tty, TerminalSize? size, CancellationToken cancellationToken)
    {
        var process = ExecProcess(container, command);
        process.Terminal = tty;
        if (tty && size is { Width: > 0, Height: > 0 } known)
        {
            process.ConsoleSize = new SpecConsoleSize { Height = known.Height, Width = known.Width };
        }

        var client = await MonitorOfAsync(_pods.Get(container.PodId), cancellationToken).ConfigureAwait(false);
        return await client.OpenStreamAsync(new MonitorRequest
        {
            Op = MonitorProtocol.ExecStream, ContainerId = container.Id,
            ProcessJson = JsonMetadata.SerializeToString(process, RuntimeSpecJson.Default.SpecProcess), Stdin = stdin,
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Attaches to the running container's main process: "stdin" or "pty" when <paramref name="stdin"/> (and the
    /// container has one), "stdout" and "stderr" (a tty container: "stdout" only) as asked for.</summary>
    internal async Task<MonitorStreamConnection> OpenAttachAsync(ContainerRecord container, bool stdin, bool stdout, bool stderr,
        CancellationToken cancellationToken)
    {
        var client = await MonitorOfAsync(_pods.Get(container.PodId), cancellationToken).ConfigureAwait(false);
        return await client.OpenStreamAsync(new MonitorRequest
        {
            Op = MonitorProtocol.Attach, ContainerId = container.Id, Stdin = stdin, Stdout = stdout, Stderr = stderr,
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The OCI process of an exec in <paramref name="container"/>: the container's own process (user, env, cwd,
    /// capabilities, rlimits...) running <paramref name="command"/>, without a terminal.</summary>
    private SpecProcess ExecProcess(ContainerRecord container, IReadOnlyList<string> command)
    {
        if (command.Count == 0)
        {
            throw NacelleException.InvalidArgument("cmd is empty: exec needs a command");
        }

        var spec = SpecJson(container) is { } json ? RuntimeSpecFile.Parse(json) : throw NacelleException.NotFound($"container {container.Id} has no spec");
        var process = spec.Process ?? new SpecProcess();
        process.Args = [.. command];
        process.Terminal = false;
        process.ConsoleSize = null;
        SpecValidator.ValidateProcess(process, "cmd");
        return process;
    }
}
