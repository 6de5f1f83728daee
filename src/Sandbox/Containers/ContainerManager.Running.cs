using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Cgroups;
using Nacelle.ContainerCore.Spec;
using Nacelle.Sandbox.Containers.Spec;
using Nacelle.Sandbox.Monitor;
using Nacelle.Sandbox.Store;
using Nacelle.Sandbox.Streams;

namespace Nacelle.Sandbox.Containers;

/// <summary>What a running container is asked: exec-sync, new resources, log reopening, and its usage (stats).</summary>
public sealed partial class ContainerManager
{
    /// <summary>
    /// Runs <paramref name="command"/> in the running container (its user, environment, working directory and security
    /// settings) and answers with its exit code and output. On a monitor that speaks protocol version 2 the daemon reads
    /// the process's pipes itself, so the output never passes through the monitor's memory or its protocol lines; at most
    /// <see cref="ContainerManagerOptions.ExecSyncOutputLimit"/> bytes of stdout and stderr together are answered, and a
    /// command that writes more is killed and answered ResourceExhausted, never cut short in silence. A timeout (zero:
    /// none) that fires kills the process: DeadlineExceeded. The timeout is the command's: once it has exited, a background
    /// child of it that still holds its stdout or stderr (`sh -c "daemon &"`) is read for at most
    /// <see cref="OutputDrainAfterExit"/> and then left running, and the answer is the command's exit code and output.
    /// </summary>
    public async Task<MonitorExecResult> ExecSyncAsync(string idOrPrefix, IReadOnlyList<string> command, TimeSpan timeout,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (command.Count == 0)
        {
            throw NacelleException.InvalidArgument("cmd is empty: ExecSync needs a command");
        }

        var container = Running(idOrPrefix, "exec");
        var client = await MonitorOfAsync(_pods.Get(container.PodId), cancellationToken).ConfigureAwait(false);
        var what = $"command {string.Join(' ', command)} in container {container.Id}";
        return client.ProtocolVersion >= 2
            ? await ExecSyncOnPipesAsync(container, command, timeout, what, cancellationToken).ConfigureAwait(false)
            : await ExecSyncInMonitorAsync(container, command, timeout, what, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>How long ExecSync goes on reading the pipes after the command exited, for what it wrote before its exit
    /// and what a child that outlives it writes; a child holding them open longer does not hold the answer.</summary>
    public static readonly TimeSpan OutputDrainAfterExit = TimeSpan.FromSeconds(1);

    /// <summary>ExecSync as an exec-stream: the daemon reads stdout and stderr from the process's pipes.</summary>
    private async Task<MonitorExecResult> ExecSyncOnPipesAsync(ContainerRecord container, IReadOnlyList<string> command, TimeSpan timeout,
        string what, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (timeout > TimeSpan.Zero)
        {
            stop.CancelAfter(timeout);
        }

        var capture = new ExecOutputCapture(_options.ExecSyncOutputLimit, stop);
        try
        {
            // Disposed last: closing the connection kills the process if it still runs (timeout, too much output).
            await using var connection = await OpenExecStreamAsync(container, command, stdin: false, tty: false, size: null, stop.Token)
                .ConfigureAwait(false);
            using var stdout = new DescriptorStream(connection.TakeRequired("stdout"), read: true);
            using var stderr = new DescriptorStream(connection.TakeRequired("stderr"), read: true);
            using var reading = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
            var exit = StreamPump.ExitCodeAsync(connection, what, stop.Token);
            var readStdout = capture.ReadAsync(stdout, capture.Stdout, reading.Token);
            var readStderr = capture.ReadAsync(stderr, capture.Stderr, reading.Token);
            try
            {
                // The exit (a read that fails, or output over the limit, stops everything)...
                var pipes = StreamPump.AllAsync(stop, readStdout, readStderr);
                if (await Task.WhenAny(exit, pipes).ConfigureAwait(false) == pipes && !pipes.IsCompletedSuccessfully && !exit.IsCompletedSuccessfully)
                {
                    await pipes.ConfigureAwait(false);
                }

                await exit.ConfigureAwait(false);

                // ...then everything written before it: the pipes at their end, or what a child that keeps them open
                // wrote within the drain window or until the timeout, whichever comes first (reading stops; the child
                // goes on). The command ended in time, so the answer is its exit, unless the output went over the limit
                // meanwhile or the caller went away. A timeout during the drain cancels the readers, and may end them
                // before it ends the drain's delay: that is the drain's end too, not the command's timeout.
                if (await Task.WhenAny(pipes, Task.Delay(OutputDrainAfterExit, stop.Token)).ConfigureAwait(false) != pipes || pipes.IsCanceled)
                {
                    await reading.CancelAsync().ConfigureAwait(false);
                    await StreamPump.SettleAsync(pipes).ConfigureAwait(false);
                    if (capture.Overflowed || cancellationToken.IsCancellationRequested)
                    {
                        await pipes.ConfigureAwait(false);
                    }
                }
                else
                {
                    await pipes.ConfigureAwait(false);
                }
            }
            finally
            {
                await StreamPump.SettleAsync(exit, readStdout, readStderr).ConfigureAwait(false);
            }

            return new MonitorExecResult { ExitCode = exit.Result, Stdout = capture.Stdout.ToArray(), Stderr = capture.Stderr.ToArray() };
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && capture.Overflowed)
        {
            throw NacelleException.ResourceExhausted(
                $"{what} wrote more output than ExecSync can answer: {capture.StdoutRead} bytes of stdout and {capture.StderrRead} of stderr " +
                $"when it was stopped, over the limit of {capture.Limit} bytes for both together (grpc.max_send_message_size; kubelet accepts " +
                "16 MiB); the command was killed. Run it with Exec (kubectl exec, crictl exec without -s) to stream its output");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new NacelleException(ErrorKind.DeadlineExceeded, $"{what} timed out after {timeout.TotalSeconds:0.###}s (it was killed)");
        }
    }

    /// <summary>ExecSync on a monitor an older nacelle started (protocol version 1): the monitor captures the output and
    /// answers it on one protocol line, which bounds what fits; more is answered ResourceExhausted.</summary>
    private async Task<MonitorExecResult> ExecSyncInMonitorAsync(ContainerRecord container, IReadOnlyList<string> command, TimeSpan timeout,
        string what, CancellationToken cancellationToken)
    {
        var process = ExecProcess(container, command);
        var limit = (int)Math.Min(_options.ExecSyncOutputLimit / 2, V1ExecOutputLimit);
        // A connection of its own: a long exec (a slow probe) must not hold up the pod's other requests, and the
        // monitor serves connections concurrently.
        await using var client = new MonitorClient(_pods.MonitorSocket(container.PodId));
        await client.ConnectAsync(TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
        var result = (await client.SendAsync(new MonitorRequest
        {
            Op = MonitorProtocol.ExecSync, ContainerId = container.Id,
            ProcessJson = JsonMetadata.SerializeToString(process, RuntimeSpecJson.Default.SpecProcess),
            TimeoutMs = timeout > TimeSpan.Zero ? (long)timeout.TotalMilliseconds : null, OutputLimit = limit,
        }, cancellationToken).ConfigureAwait(false)).Exec!;
        if (result.TimedOut)
        {
            throw new NacelleException(ErrorKind.DeadlineExceeded, $"{what} timed out after {timeout.TotalSeconds:0.###}s");
        }

        return result.Truncated
            ? throw NacelleException.ResourceExhausted(
                $"{what} wrote more than {limit} bytes to stdout or stderr, more than ExecSync can answer from this pod: its monitor was " +
                "started by an older nacelle (protocol version 1), which carries the output on one protocol line. Recreate the pod for " +
                "the full limit, or run the command with Exec")
            : result;
    }

    /// <summary>The most output per stream a version 1 monitor's answer line carries: both streams, base64 (4 bytes per
    /// 3), and the rest of the answer fit in <see cref="MonitorProtocol.MaxLineBytes"/>.</summary>
    internal const int V1ExecOutputLimit = (MonitorProtocol.MaxLineBytes - 4096) / 8 * 3;

    /// <summary>New linux resources for a container's cgroup (checked as at create time); a created container's go into
    /// its spec, which its start spawns it with.</summary>
    public async Task UpdateResourcesAsync(string idOrPrefix, ResourceRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var resources = ContainerSpecBuilder.BuildResources(request);
        var container = Get(idOrPrefix);
        if (container.State == ContainerRecordState.Created)
        {
            // Not beside its start: the spec is read there.
            await using var held = await _operations.EnterAsync(container.Id, cancellationToken).ConfigureAwait(false);
            container = Get(container.Id);
            if (container.State == ContainerRecordState.Created)
            {
                await UpdateSpecResourcesAsync(container, resources, cancellationToken).ConfigureAwait(false);
            }
        }

        if (container.State == ContainerRecordState.Exited)
        {
            throw NacelleException.FailedPrecondition($"container {container.Id} has exited: its resources cannot change");
        }

        var client = await MonitorOfAsync(_pods.Get(container.PodId), cancellationToken).ConfigureAwait(false);
        try
        {
            await client.SendAsync(new MonitorRequest
            {
                Op = MonitorProtocol.Update, ContainerId = container.Id,
                ResourcesJson = JsonMetadata.SerializeToString(resources, RuntimeSpecJson.Default.SpecResources),
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (NacelleException e) when (e.Kind == ErrorKind.NotFound && container.State == ContainerRecordState.Created)
        {
            // Not spawned yet: its spec has the new resources (only a start cut short leaves it in the monitor, parked).
        }
    }

    /// <summary>The created container's bundle spec with <paramref name="update"/> in its resources.</summary>
    private async Task UpdateSpecResourcesAsync(ContainerRecord container, SpecResources update, CancellationToken cancellationToken)
    {
        var path = Path.Combine(BundleDirectory(container.PodId, container.Id), "config.json");
        var spec = RuntimeSpecFile.Parse(await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false));
        var linux = spec.Linux ??= new SpecLinux();
        ContainerSpecBuilder.UpdateResources(linux.Resources ??= new SpecResources(), update);
        // Whole or not at all: a crash half way leaves the spec as it was.
        var temporary = path + ".new";
        await File.WriteAllTextAsync(temporary, RuntimeSpecFile.Serialize(spec), cancellationToken).ConfigureAwait(false);
        File.Move(temporary, path, overwrite: true);
    }

    public async Task ReopenLogAsync(string idOrPrefix, CancellationToken cancellationToken = default)
    {
        var container = Get(idOrPrefix);
        if (container.State != ContainerRecordState.Running)
        {
            throw NacelleException.FailedPrecondition($"container {container.Id} is {StateName(container.State)}: only a running container's log is reopened");
        }

        var client = await MonitorOfAsync(_pods.Get(container.PodId), cancellationToken).ConfigureAwait(false);
        await client.SendAsync(new MonitorRequest { Op = MonitorProtocol.ReopenLog, ContainerId = container.Id }, cancellationToken).ConfigureAwait(false);
    }

    public ContainerUsage Usage(ContainerRecord container)
    {
        ArgumentNullException.ThrowIfNull(container);
        CgroupUsage? stats = null;
        if (container.State == ContainerRecordState.Running && container.CgroupPath.Length > 0)
        {
            try
            {
                stats = _cgroups.Value.Open(container.CgroupPath).Usage(withProcessCount: false);
            }
            catch (NacelleException)
            {
                // exited meanwhile: no numbers rather than wrong ones
            }
        }

        var (bytes, inodes) = _images.Rootfs.WritableUsage(container.Id);
        return new ContainerUsage(DateTimeOffset.UtcNow, stats, bytes, inodes);
    }
}
