using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Spec;
using Nacelle.Monitor.Containers;
using Nacelle.Monitor.Stdio;

namespace Nacelle.Monitor.Operations;

internal sealed partial class MonitorOperations
{
    /// <summary>
    /// create: spawns the container from its OCI spec, parked before execve until start; its output goes to the CRI
    /// log (and to attachers) from now on, and its exit is watched. With stdin (version 2), a non-tty container's stdin
    /// is a pipe whose write end the monitor keeps for attachers; a tty container's stdin is its pty. On failure nothing
    /// of it remains.
    /// </summary>
    private async Task<MonitorResponse> CreateAsync(MonitorRequest request, MonitorResponse ok)
    {
        var id = Id(request);
        var spec = RuntimeSpecFile.Parse(request.SpecJson ?? throw NacelleException.InvalidArgument("create: specJson is required"), "create.specJson");
        var bundle = request.Bundle ?? options.Directory;
        var terminal = spec.Process?.Terminal == true;
        var stdio = ContainerStdio.Prepare(request.LogFile, terminal, request.Stdin);
        try
        {
            using (reaper?.Hold())
            {
                await runtime.CreateAsync(id, spec, bundle, stdio.Stdio, external: request.Runtime).ConfigureAwait(false);
            }

            var tracked = new TrackedContainer
            {
                Log = stdio.Log, LogFile = request.LogFile, Terminal = stdio.Terminal,
                OpenStdin = request.Stdin, StdinOnce = request.Stdin && request.StdinOnce, Stdin = stdio.StdinWriter,
            };
            tracked.Pump = stdio.StartPump(id, tracked.Attachers, log);
            containers.Add(id, tracked);
            tracked.Watch = exitRecorder.RecordExitAsync(id, tracked);
            return ok with { Container = containers.Describe(id) };
        }
        catch
        {
            reaper?.ScanAfterFailedSpawn();
            stdio.Dispose();
            throw;
        }
    }
}
