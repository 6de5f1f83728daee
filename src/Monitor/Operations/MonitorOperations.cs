using System.Text.Json;
using Microsoft.Extensions.Logging;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Runtime;
using Nacelle.Monitor.Containers;
using Nacelle.Monitor.Exits;
using Nacelle.Monitor.Reaping;
using Nacelle.Monitor.Server;

namespace Nacelle.Monitor.Operations;

/// <summary>
/// What a request produced: the answer, and for an operation that takes the connection over afterwards (watch,
/// exec-stream, attach) the session that writes the answer itself and then owns the connection.
/// </summary>
internal sealed record Answer(MonitorResponse Response, IConnectionSession? Session = null);

/// <summary>A connection taken over after an ok answer: the session writes that answer (with any descriptors) and runs
/// until it or the daemon closes.</summary>
internal interface IConnectionSession
{
    Task RunAsync(Connection connection, MonitorResponse answer, CancellationToken cancellationToken);
}

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
    Watchers watchers,
    OrphanReaper? reaper,
    CancellationTokenSource stop,
    ILogger log)
{
    /// <summary>Parses and runs one request line; the response says what failed, with its error kind.</summary>
    public async Task<Answer> HandleLineAsync(byte[] line)
    {
        MonitorRequest? request = null;
        try
        {
            request = JsonSerializer.Deserialize(line, MonitorJson.Current.MonitorRequest)
                ?? throw NacelleException.InvalidArgument("monitor protocol: empty request");
            return await HandleAsync(request).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            var kind = e is NacelleException n ? n.Kind : e is JsonException ? ErrorKind.InvalidArgument : ErrorKind.Internal;
            return new Answer(new MonitorResponse { Id = request?.Id ?? 0, Ok = false, ErrorKind = kind.ToString(), Error = e.Message });
        }
    }

    private async Task<Answer> HandleAsync(MonitorRequest request)
    {
        var ok = new MonitorResponse { Id = request.Id, Ok = true };
        return request.Op switch
        {
            MonitorProtocol.Hello => new Answer(Hello(request, ok)),
            MonitorProtocol.Create => new Answer(await CreateAsync(request, ok).ConfigureAwait(false)),
            MonitorProtocol.Start => new Answer(await StartAsync(request, ok).ConfigureAwait(false)),
            MonitorProtocol.Kill => new Answer(Kill(request, ok)),
            MonitorProtocol.State => new Answer(State(request, ok)),
            MonitorProtocol.List => new Answer(List(ok)),
            MonitorProtocol.Delete => new Answer(await DeleteAsync(request, ok).ConfigureAwait(false)),
            MonitorProtocol.ExecSync => new Answer(await ExecSyncAsync(request, ok).ConfigureAwait(false)),
            MonitorProtocol.ExecStream => await ExecStreamAsync(request, ok).ConfigureAwait(false),
            MonitorProtocol.Attach => Attach(request, ok),
            MonitorProtocol.Update => new Answer(await UpdateAsync(request, ok).ConfigureAwait(false)),
            MonitorProtocol.Watch => Watch(ok),
            MonitorProtocol.ReopenLog => new Answer(ReopenLog(request, ok)),
            MonitorProtocol.Shutdown => new Answer(await ShutdownAsync(ok).ConfigureAwait(false)),
            _ => throw NacelleException.InvalidArgument($"monitor protocol: unknown operation '{request.Op}'"),
        };
    }

    private static string Id(MonitorRequest request) =>
        string.IsNullOrEmpty(request.ContainerId) ? throw NacelleException.InvalidArgument($"{request.Op}: containerId is required") : request.ContainerId;
}
