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
    /// log from now on, and its exit is watched. On failure nothing of it remains.
    /// </summary>
    private async Task<MonitorResponse> CreateAsync(MonitorRequest request, MonitorResponse ok)
    {
        var id = Id(request);
        var spec = RuntimeSpecFile.Parse(request.SpecJson ?? throw NacelleException.InvalidArgument("create: specJson is required"), "create.specJson");
        var bundle = request.Bundle ?? options.Directory;
        var output = ContainerOutput.Prepare(request.LogFile, terminal: spec.Process?.Terminal == true);
        try
        {
            using (reaper?.Hold())
            {
                await runtime.CreateAsync(id, spec, bundle, output.Stdio, external: request.Runtime).ConfigureAwait(false);
            }

            var pump = output.StartPump(id, log);
            var tracked = new TrackedContainer { Log = output.Log, LogFile = request.LogFile, Terminal = output.Terminal, Pump = pump };
            containers.Add(id, tracked);
            tracked.Watch = exitRecorder.RecordExitAsync(id, tracked);
            return ok with { Container = containers.Describe(id) };
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }
}
