using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Cgroups;
using Nacelle.ContainerCore.Spec;
using Nacelle.Sandbox.Containers.Spec;
using Nacelle.Sandbox.Monitor;
using Nacelle.Sandbox.Store;

namespace Nacelle.Sandbox.Containers;

/// <summary>What a running container is asked: exec-sync, new resources, log reopening, and its usage (stats).</summary>
public sealed partial class ContainerManager
{
    /// <summary>Runs <paramref name="command"/> in the running container with its environment, user and working
    /// directory; output is captured up to kubelet's cap. A timeout is DeadlineExceeded.</summary>
    public async Task<MonitorExecResult> ExecSyncAsync(string idOrPrefix, IReadOnlyList<string> command, TimeSpan timeout,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (command.Count == 0)
        {
            throw NacelleException.InvalidArgument("cmd is empty: ExecSync needs a command");
        }

        var container = Get(idOrPrefix);
        if (container.State != ContainerRecordState.Running)
        {
            throw NacelleException.FailedPrecondition($"container {container.Id} is {StateName(container.State)}: exec needs a running container");
        }

        var spec = SpecJson(container) is { } json ? RuntimeSpecFile.Parse(json) : throw NacelleException.NotFound($"container {container.Id} has no spec");
        var process = spec.Process ?? new SpecProcess();
        process.Args = [.. command];
        process.Terminal = false;
        SpecValidator.ValidateProcess(process, "cmd");
        // A connection of its own: a long exec (a slow probe) must not hold up the pod's other requests, and the
        // monitor serves connections concurrently.
        await using var client = new MonitorClient(_pods.MonitorSocket(container.PodId));
        await client.ConnectAsync(TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
        var result = (await client.SendAsync(new MonitorRequest
        {
            Op = MonitorProtocol.ExecSync, ContainerId = container.Id,
            ProcessJson = System.Text.Json.JsonSerializer.Serialize(process, RuntimeSpecJson.Default.SpecProcess),
            TimeoutMs = timeout > TimeSpan.Zero ? (long)timeout.TotalMilliseconds : null, OutputLimit = _options.ExecOutputLimit,
        }, cancellationToken).ConfigureAwait(false)).Exec!;
        if (result.TimedOut)
        {
            throw new NacelleException(ErrorKind.DeadlineExceeded,
                $"command {string.Join(' ', command)} in container {container.Id} timed out after {timeout.TotalSeconds:0.###}s");
        }

        return result;
    }

    /// <summary>New linux resources for a container's cgroup (checked as at create time).</summary>
    public async Task UpdateResourcesAsync(string idOrPrefix, ResourceRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var resources = ContainerSpecBuilder.BuildResources(request);
        var container = Get(idOrPrefix);
        if (container.State == ContainerRecordState.Exited)
        {
            throw NacelleException.FailedPrecondition($"container {container.Id} has exited: its resources cannot change");
        }

        var client = await MonitorOfAsync(_pods.Get(container.PodId), cancellationToken).ConfigureAwait(false);
        await client.SendAsync(new MonitorRequest
        {
            Op = MonitorProtocol.Update, ContainerId = container.Id,
            ResourcesJson = System.Text.Json.JsonSerializer.Serialize(resources, RuntimeSpecJson.Default.SpecResources),
        }, cancellationToken).ConfigureAwait(false);
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
        CgroupStats? stats = null;
        if (container.State == ContainerRecordState.Running && container.CgroupPath.Length > 0)
        {
            try
            {
                stats = _cgroups.Value.Open(container.CgroupPath).Stats();
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
