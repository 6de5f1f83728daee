using System.Text.Json;
using Microsoft.Extensions.Logging;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Runtime;
using Nacelle.Monitor.Containers;
using Nacelle.Monitor.Exits;
using Nacelle.Monitor.Reaping;

namespace Nacelle.Monitor.Operations;

/// <summary>
/// The monitor's operations, one file per operation (a partial class, as the daemon has one file per CRI rpc). A
/// request line comes in, one response goes out; every failure is answered with its error kind, never thrown at the
/// connection.
/// </summary>
internal sealed partial class MonitorOperations(
    MonitorOptions options,
    ContainerRuntime runtime,
    PodContainers containers,
    ExitRecordStore exits,
    ExitRecorder exitRecorder,
    OrphanReaper? reaper,
    CancellationTokenSource stop,
    ILogger log)
{
    /// <summary>Parses and runs one request line; the response says what failed, with its error kind.</summary>
    public async Task<MonitorResponse> HandleLineAsync(string line)
    {
        MonitorRequest? request = null;
        try
        {
            request = JsonSerializer.Deserialize(line, MonitorJson.Default.MonitorRequest)
                ?? throw NacelleException.InvalidArgument("monitor protocol: empty request");
            return await HandleAsync(request).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            var kind = e is NacelleException n ? n.Kind : e is JsonException ? ErrorKind.InvalidArgument : ErrorKind.Internal;
            return new MonitorResponse { Id = request?.Id ?? 0, Ok = false, ErrorKind = kind.ToString(), Error = e.Message };
        }
    }

    private Task<MonitorResponse> HandleAsync(MonitorRequest request)
    {
        var ok = new MonitorResponse { Id = request.Id, Ok = true };
        return request.Op switch
        {
            MonitorProtocol.Hello => Task.FromResult(Hello(request, ok)),
            MonitorProtocol.Create => CreateAsync(request, ok),
            MonitorProtocol.Start => StartAsync(request, ok),
            MonitorProtocol.Kill => Task.FromResult(Kill(request, ok)),
            MonitorProtocol.State => Task.FromResult(State(request, ok)),
            MonitorProtocol.List => Task.FromResult(List(ok)),
            MonitorProtocol.Delete => DeleteAsync(request, ok),
            MonitorProtocol.ExecSync => ExecSyncAsync(request, ok),
            MonitorProtocol.Update => UpdateAsync(request, ok),
            MonitorProtocol.Watch => Task.FromResult(Watch(ok)),
            MonitorProtocol.ReopenLog => Task.FromResult(ReopenLog(request, ok)),
            MonitorProtocol.Shutdown => ShutdownAsync(ok),
            _ => throw NacelleException.InvalidArgument($"monitor protocol: unknown operation '{request.Op}'"),
        };
    }

    private static string Id(MonitorRequest request) =>
        string.IsNullOrEmpty(request.ContainerId) ? throw NacelleException.InvalidArgument($"{request.Op}: containerId is required") : request.ContainerId;
}
