using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Cgroups;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Reactor;
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
/// <see cref="MonitorOperations"/> answers (one file per operation); a watch, exec-stream or attach takes its connection
/// over after the answer. Everything runs on the fd reactor's loop, which nacelle-monitor runs on its main thread: no
/// socket, pipe or timer of the monitor needs a thread of its own.</remarks>
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
            _reaper = new OrphanReaper(LiveInits, log, orphansPossible: () => OrphansPossible(_runtime.List(), SharesOurPidNamespace));
        }

        _watchers = new Watchers(log);
        var containers = new PodContainers(_runtime);
        var exitRecorder = new ExitRecorder(_runtime, exits, containers, _watchers, _reaper, log);
        _operations = new MonitorOperations(options, _runtime, containers, exits, exitRecorder, _watchers, _reaper, _stop, log);
    }

    /// <summary>The orphan reaper (null unless asked to reap orphans).</summary>
    public OrphanReaper? Reaper => _reaper;

    /// <summary>Serves until a shutdown request (or <paramref name="cancellationToken"/>).</summary>
    public async Task RunAsync(CancellationToken cancellationToken = default)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        File.Delete(_options.SocketPath);
        using var listener = UnixSocketCalls.Listen(_options.SocketPath, backlog: 16);
        File.SetUnixFileMode(_options.SocketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        _reaper?.Start();
        var clients = new List<Task>();
        try
        {
            while (!linked.IsCancellationRequested)
            {
                if (UnixSocketCalls.Accept(listener) is { } client)
                {
                    clients.Add(ServeAsync(new Connection(client), linked.Token));
                    clients.RemoveAll(t => t.IsCompleted);
                    continue;
                }

                await FdReactor.WaitReadableAsync(listener, linked.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // shutdown
        }

        _watchers.CompleteAll();
        foreach (var client in clients)
        {
            try
            {
                await client.ConfigureAwait(false);
            }
            catch (Exception)
            {
                // each connection reports its own end
            }
        }

        File.Delete(_options.SocketPath);
    }

    /// <summary>One connection: request lines answered in order, until the daemon closes it or a session takes it over.</summary>
    private async Task ServeAsync(Connection connection, CancellationToken cancellationToken)
    {
        using (connection)
        {
            try
            {
                while (await connection.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
                {
                    var (response, session) = await _operations.HandleLineAsync(line).ConfigureAwait(false);
                    if (response.Ok && session is not null)
                    {
                        await session.RunAsync(connection, response, cancellationToken).ConfigureAwait(false);
                        return;
                    }

                    // Answered even when the request was the shutdown that cancels everything else.
                    await connection.WriteAsync(response, cancellationToken: CancellationToken.None).ConfigureAwait(false);
                    if (response.Ok && _stop.IsCancellationRequested)
                    {
                        return;
                    }
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or NacelleException)
            {
                // the daemon went away, or sent a line too long: the pod carries on
            }
        }
    }

    /// <summary>
    /// Whether orphans can come to the monitor without a kick, so that the reaper must scan periodically: a live
    /// container in the monitor's own pid namespace (a hostPID pod's) other than pause-init, which never forks. In a pod
    /// without a shared pid namespace pause-init shares the monitor's, and counting it kept every such pod's monitor
    /// scanning /proc once a second for good (and its heap filling with each scan's garbage between collections).
    /// </summary>
    public static bool OrphansPossible(IEnumerable<ContainerState> containers, Func<int, bool> sharesOurPidNamespace)
    {
        ArgumentNullException.ThrowIfNull(containers);
        ArgumentNullException.ThrowIfNull(sharesOurPidNamespace);
        return containers.Any(s => s.Status != ContainerStatus.Stopped && s.Id != MonitorProtocol.PauseInitId && sharesOurPidNamespace(s.Pid));
    }

    private IEnumerable<int> LiveInits() => _runtime.List().Where(s => s.Status != ContainerStatus.Stopped).Select(s => s.Pid);

    /// <summary>Whether <paramref name="pid"/> is in the monitor's own pid namespace (then its orphans come to the monitor).</summary>
    private static bool SharesOurPidNamespace(int pid)
    {
        try
        {
            return new FileInfo($"/proc/{pid}/ns/pid").LinkTarget is { } theirs && theirs == new FileInfo("/proc/self/ns/pid").LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false; // gone
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
