using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Cgroups;
using Nacelle.ContainerCore.Runtime;
using Nacelle.Monitor.Containers;
using Nacelle.Monitor.Exits;
using Nacelle.Monitor.Operations;
using Nacelle.Monitor.Reaping;

namespace Nacelle.Monitor.Server;

/// <summary>
/// The heart of nacelle-monitor: the parent of every process of one pod (through ContainerCore), the writer of their
/// CRI logs, and the keeper of their exits, which it records durably before it ever reports them. It serves the
/// daemon over a unix socket and keeps working while no daemon is connected; a restarted daemon simply connects
/// again. It stops on a shutdown request, after deleting every container of the pod.
/// </summary>
/// <remarks>This class is the socket: it accepts connections and reads request lines, which
/// <see cref="MonitorOperations"/> answers (one file per operation); a watch connection is handed to
/// <see cref="Watchers"/>.</remarks>
public sealed class MonitorServer : IAsyncDisposable
{
    private readonly MonitorOptions _options;
    private readonly ContainerRuntime _runtime;
    private readonly OrphanReaper? _reaper;
    private readonly Watchers _watchers;
    private readonly MonitorOperations _operations;
    private readonly CancellationTokenSource _stop = new();

    /// <param name="options">The pod, its directory and socket.</param>
    /// <param name="logger">Where the monitor logs.</param>
    /// <param name="reapOrphans">
    /// Reap orphaned descendants (<see cref="OrphanReaper"/>). Only for a process that is a child subreaper and whose
    /// every other child is tracked (nacelle-monitor): in any other process it could reap a child someone else waits for.
    /// </param>
    public MonitorServer(MonitorOptions options, ILogger? logger = null, bool reapOrphans = false)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.CheckSocketPath();
        _options = options;
        var log = logger ?? NullLogger.Instance;
        System.IO.Directory.CreateDirectory(options.Directory);
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(options.SocketPath)!);
        var exits = new ExitRecordStore(Path.Combine(options.Directory, "exits"));
        exits.RemoveTemporaryFiles();
        _runtime = new ContainerRuntime(new ContainerRuntimeOptions
        {
            StateDirectory = Path.Combine(options.Directory, "containers"),
            Cgroups = CgroupManager.Detect(),
            CgroupParent = options.CgroupParent,
            Logger = log,
            HoldChildReaping = () => _reaper?.Hold(),
        });
        if (reapOrphans)
        {
            // Live container inits are reaped by the runtime (pidfd); a stopped one's pid was reaped already.
            _reaper = new OrphanReaper(
                () => [.. _runtime.List().Where(s => s.Status != ContainerStatus.Stopped).Select(s => s.Pid)], log);
        }

        _watchers = new Watchers(log);
        var containers = new PodContainers(_runtime);
        var exitRecorder = new ExitRecorder(_runtime, exits, containers, _watchers, _reaper, log);
        _operations = new MonitorOperations(options, _runtime, containers, exits, exitRecorder, _reaper, _stop, log);
    }

    /// <summary>The orphan reaper (null unless asked to reap orphans).</summary>
    public OrphanReaper? Reaper => _reaper;

    /// <summary>Serves until a shutdown request (or <paramref name="cancellationToken"/>).</summary>
    public async Task RunAsync(CancellationToken cancellationToken = default)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        File.Delete(_options.SocketPath);
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(_options.SocketPath));
        File.SetUnixFileMode(_options.SocketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        listener.Listen(8);
        _reaper?.Start();
        var clients = new List<Task>();
        try
        {
            while (!linked.IsCancellationRequested)
            {
                var client = await listener.AcceptAsync(linked.Token).ConfigureAwait(false);
                clients.Add(ServeAsync(client, linked.Token));
                clients.RemoveAll(t => t.IsCompleted);
            }
        }
        catch (OperationCanceledException)
        {
            // shutdown
        }

        _watchers.CompleteAll();
        await Task.WhenAll(clients.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default))).ConfigureAwait(false);
        File.Delete(_options.SocketPath);
    }

    /// <summary>One connection: request lines answered in order, until the daemon closes it or it becomes a watch.</summary>
    private async Task ServeAsync(Socket client, CancellationToken cancellationToken)
    {
        using var stream = new NetworkStream(client, ownsSocket: true);
        var pending = new MemoryStream();
        try
        {
            while (await MonitorProtocol.ReadLineAsync(stream, pending, cancellationToken).ConfigureAwait(false) is { } line)
            {
                var response = await _operations.HandleLineAsync(line).ConfigureAwait(false);
                if (response.Ok && response.Event == MonitorProtocol.Watch)
                {
                    // From here on the connection carries only events.
                    await _watchers.ServeAsync(stream, pending, response with { Event = null }, cancellationToken).ConfigureAwait(false);
                    return;
                }

                // Answered even when the request was the shutdown that cancels everything else.
                await stream.WriteAsync(MonitorProtocol.Encode(response, MonitorJson.Default.MonitorResponse), CancellationToken.None).ConfigureAwait(false);
                if (response.Ok && _stop.IsCancellationRequested)
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or SocketException)
        {
            // the daemon went away; the pod carries on
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_reaper is not null)
        {
            await _reaper.DisposeAsync().ConfigureAwait(false);
        }

        await _runtime.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
    }
}
