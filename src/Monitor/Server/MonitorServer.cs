using System.IO.Pipes;
using System.Net.Sockets;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Cgroups;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Runtime;
using Nacelle.ContainerCore.Spawn;
using Nacelle.ContainerCore.Spec;
using Nacelle.Monitor.Exits;
using Nacelle.Monitor.Logging;
using Nacelle.Monitor.Reaping;

namespace Nacelle.Monitor.Server;

/// <summary>
/// The heart of nacelle-monitor: the parent of every process of one pod (through ContainerCore), the writer of their
/// CRI logs, and the keeper of their exits, which it records durably before it ever reports them. It serves the
/// daemon over a unix socket and keeps working while no daemon is connected; a restarted daemon simply connects
/// again. It stops on a shutdown request, after deleting every container of the pod.
/// </summary>
public sealed class MonitorServer : IAsyncDisposable
{
    private readonly MonitorOptions _options;
    private readonly ILogger _log;
    private readonly ContainerRuntime _runtime;
    private readonly ExitRecordStore _exits;
    private readonly Dictionary<string, Tracked> _tracked = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly OrphanReaper? _reaper;
    private readonly Lock _watchersGate = new();
    private readonly List<Watcher> _watchers = [];
    private long _nextWatcher;

    /// <summary>How many events may wait for a slow watcher before it is dropped (it reconnects and lists again).</summary>
    public const int WatcherBacklog = 256;

    /// <summary>How long exec-sync keeps reading output after its process exited (a background child may hold the pipes).</summary>
    private static readonly TimeSpan OutputGrace = TimeSpan.FromSeconds(2);

    private sealed class Tracked
    {
        public CriLogWriter? Log { get; init; }
        public Task Pump { get; set; } = Task.CompletedTask;
        public Task Watch { get; set; } = Task.CompletedTask;
        public string? LogPath { get; init; }
        public bool ExitRecorded { get; set; }

        /// <summary>A tty container's pty master (its output is pumped to the log as stdout).</summary>
        public SafeFileHandle? Terminal { get; init; }
    }

    /// <summary>A watch connection: events queue here and one writer sends them; a full queue drops the watcher.</summary>
    private sealed class Watcher(long number)
    {
        public long Number { get; } = number;
        public Channel<byte[]> Events { get; } = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(WatcherBacklog)
        {
            SingleReader = true, FullMode = BoundedChannelFullMode.Wait,
        });
        public CancellationTokenSource Dropped { get; } = new();
    }

    /// <param name="options">The pod, its directory and socket.</param>
    /// <param name="logger">Where the monitor logs (its stderr, monitor.log, in nacelle-monitor).</param>
    /// <param name="reapOrphans">
    /// Reap orphaned descendants (<see cref="OrphanReaper"/>). Only for a process that is a child subreaper and whose
    /// every other child is tracked (nacelle-monitor): in any other process it could reap a child someone else waits for.
    /// </param>
    public MonitorServer(MonitorOptions options, ILogger? logger = null, bool reapOrphans = false)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.CheckSocketPath();
        _options = options;
        _log = logger ?? NullLogger.Instance;
        System.IO.Directory.CreateDirectory(options.Directory);
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(options.SocketPath)!);
        _exits = new ExitRecordStore(Path.Combine(options.Directory, "exits"));
        _exits.RemoveTemporaryFiles();
        _runtime = new ContainerRuntime(new ContainerRuntimeOptions
        {
            StateDirectory = Path.Combine(options.Directory, "containers"),
            Cgroups = CgroupManager.Detect(),
            CgroupParent = options.CgroupParent,
            Logger = _log,
        });
        if (reapOrphans)
        {
            // Live container inits are reaped by the runtime (pidfd); a stopped one's pid was reaped already.
            _reaper = new OrphanReaper(
                () => [.. _runtime.List().Where(s => s.Status != ContainerStatus.Stopped).Select(s => s.Pid)], _log);
        }
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

        lock (_watchersGate)
        {
            foreach (var watcher in _watchers)
            {
                watcher.Events.Writer.TryComplete();
            }
        }

        await Task.WhenAll(clients.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default))).ConfigureAwait(false);
        File.Delete(_options.SocketPath);
    }

    private async Task ServeAsync(Socket client, CancellationToken cancellationToken)
    {
        using var stream = new NetworkStream(client, ownsSocket: true);
        var pending = new MemoryStream();
        try
        {
            while (await MonitorProtocol.ReadLineAsync(stream, pending, cancellationToken).ConfigureAwait(false) is { } line)
            {
                var response = await HandleLineAsync(line).ConfigureAwait(false);
                if (response.Ok && response.Event == MonitorProtocol.Watch)
                {
                    // From here on the connection carries only events.
                    await ServeWatcherAsync(stream, pending, response with { Event = null }, cancellationToken).ConfigureAwait(false);
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

    /// <summary>
    /// A watch connection: the ok answer, then every event line until either side closes. The watcher is registered
    /// before the answer is written, so an exit recorded after the answer is never missed. Lines the client sends are
    /// read and ignored (only to notice it closing).
    /// </summary>
    private async Task ServeWatcherAsync(NetworkStream stream, MemoryStream pending, MonitorResponse answer, CancellationToken cancellationToken)
    {
        var watcher = new Watcher(Interlocked.Increment(ref _nextWatcher));
        lock (_watchersGate)
        {
            _watchers.Add(watcher);
        }

        using var done = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, watcher.Dropped.Token);
        var reason = "closed";
        try
        {
            await stream.WriteAsync(MonitorProtocol.Encode(answer, MonitorJson.Default.MonitorResponse), done.Token).ConfigureAwait(false);
            var reader = DrainUntilClosedAsync(stream, pending, done);
            await foreach (var line in watcher.Events.Reader.ReadAllAsync(done.Token).ConfigureAwait(false))
            {
                await stream.WriteAsync(line, done.Token).ConfigureAwait(false);
            }

            await done.CancelAsync().ConfigureAwait(false);
            await reader.ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or SocketException)
        {
            reason = watcher.Dropped.IsCancellationRequested ? "too slow (event backlog full)" : e is OperationCanceledException ? "closed" : e.Message;
        }
        finally
        {
            lock (_watchersGate)
            {
                _watchers.Remove(watcher);
            }

            watcher.Events.Writer.TryComplete();
            MonitorLog.WatcherDropped(_log, watcher.Number, reason);
            watcher.Dropped.Dispose();
        }
    }

    /// <summary>Reads (and ignores) what a watcher sends; its end of stream or an error ends the watch.</summary>
    private static async Task DrainUntilClosedAsync(NetworkStream stream, MemoryStream pending, CancellationTokenSource done)
    {
        try
        {
            while (await MonitorProtocol.ReadLineAsync(stream, pending, done.Token).ConfigureAwait(false) is not null)
            {
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or SocketException or NacelleException or ObjectDisposedException)
        {
            // the watcher closed, broke, or the watch ended on our side (the stream is gone)
        }

        try
        {
            await done.CancelAsync().ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>Queues an event for every watcher; a watcher whose queue is full is dropped rather than waited for.</summary>
    private void Broadcast(MonitorResponse message)
    {
        var line = MonitorProtocol.Encode(message, MonitorJson.Default.MonitorResponse);
        List<Watcher> watchers;
        lock (_watchersGate)
        {
            watchers = [.. _watchers];
        }

        foreach (var watcher in watchers)
        {
            if (!watcher.Events.Writer.TryWrite(line))
            {
                try
                {
                    watcher.Dropped.Cancel();
                }
                catch (ObjectDisposedException)
                {
                    // it went away meanwhile
                }
            }
        }
    }

    private async Task<MonitorResponse> HandleLineAsync(string line)
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

    private async Task<MonitorResponse> HandleAsync(MonitorRequest request)
    {
        var ok = new MonitorResponse { Id = request.Id, Ok = true };
        switch (request.Op)
        {
            case MonitorProtocol.Hello:
                if (request.Version is { } v && v != MonitorProtocol.Version)
                {
                    throw NacelleException.FailedPrecondition($"monitor speaks protocol version {MonitorProtocol.Version}, not {v}");
                }

                return ok with { Version = MonitorProtocol.Version, PodId = _options.PodId, MonitorPid = Environment.ProcessId };
            case MonitorProtocol.Create:
                return ok with { Container = await CreateAsync(request).ConfigureAwait(false) };
            case MonitorProtocol.Start:
                await _runtime.StartAsync(Id(request)).ConfigureAwait(false);
                return ok with { Container = Describe(Id(request)) };
            case MonitorProtocol.Kill:
                _runtime.Kill(Id(request), request.Signal ?? 15, request.All);
                return ok;
            case MonitorProtocol.State:
                return ok with { Container = Describe(Id(request)) };
            case MonitorProtocol.List:
                return ok with { Containers = [.. _runtime.List().Select(s => Describe(s.Id))] };
            case MonitorProtocol.Delete:
                await DeleteAsync(Id(request), request.Force).ConfigureAwait(false);
                return ok;
            case MonitorProtocol.ExecSync:
                return ok with { Exec = await ExecSyncAsync(request).ConfigureAwait(false) };
            case MonitorProtocol.Update:
                _runtime.UpdateResources(Id(request), ParseResources(request));
                return ok with { Container = Describe(Id(request)) };
            case MonitorProtocol.Watch:
                // ServeAsync turns the connection into an event stream (marked by Event, cleared before answering).
                return ok with { Event = MonitorProtocol.Watch };
            case MonitorProtocol.ReopenLog:
                Track(Id(request)).Log?.Reopen();
                return ok;
            case MonitorProtocol.Shutdown:
                foreach (var state in _runtime.List())
                {
                    await DeleteAsync(state.Id, force: true).ConfigureAwait(false);
                }

                await _stop.CancelAsync().ConfigureAwait(false);
                return ok;
            default:
                throw NacelleException.InvalidArgument($"monitor protocol: unknown operation '{request.Op}'");
        }
    }

    private static string Id(MonitorRequest request) =>
        string.IsNullOrEmpty(request.ContainerId) ? throw NacelleException.InvalidArgument($"{request.Op}: containerId is required") : request.ContainerId;

    private async Task<MonitorContainer> CreateAsync(MonitorRequest request)
    {
        var id = Id(request);
        var spec = RuntimeSpecFile.Parse(request.SpecJson ?? throw NacelleException.InvalidArgument("create: specJson is required"), "create.specJson");
        var bundle = request.Bundle ?? _options.Directory;
        var terminal = spec.Process?.Terminal == true;
        CriLogWriter? log = null;
        AnonymousPipeServerStream? stdout = null, stderr = null;
        SafeFileHandle? master = null;
        try
        {
            var stdio = SpawnStdio.Null;
            if (request.LogFile is { } logPath)
            {
                log = CriLogWriter.Open(logPath);
            }

            if (terminal)
            {
                // The spawn helper allocates the pty inside the container (its /dev/pts) and hands us the master.
                stdio = SpawnStdio.Null with { ConsoleReceived = received => master = received };
            }
            else if (log is not null)
            {
                stdout = new AnonymousPipeServerStream(PipeDirection.In, HandleInheritability.None);
                stderr = new AnonymousPipeServerStream(PipeDirection.In, HandleInheritability.None);
                stdio = new SpawnStdio(null, WriteEnd(stdout), WriteEnd(stderr));
            }

            using (_reaper?.Hold())
            {
                await _runtime.CreateAsync(id, spec, bundle, stdio).ConfigureAwait(false);
            }

            if (terminal && master is null)
            {
                throw NacelleException.Internal($"container {id}: no terminal came back from the spawn helper");
            }

            var tracked = new Tracked { Log = log, LogPath = request.LogFile, Terminal = master };
            if (master is not null)
            {
                // The only stream of a tty container, logged as stdout; drained even without a log, or the container
                // would block once the pty's buffer fills.
                MonitorLog.TerminalAllocated(_log, id);
                tracked.Pump = PumpTerminalAsync(log, master);
            }
            else if (log is not null)
            {
                // Our copies of the write ends go; the pumps end when the container's last copy closes.
                stdout!.DisposeLocalCopyOfClientHandle();
                stderr!.DisposeLocalCopyOfClientHandle();
                tracked.Pump = PumpAsync(log, stdout, stderr!);
            }

            lock (_gate)
            {
                _tracked[id] = tracked;
            }

            tracked.Watch = RecordExitAsync(id, tracked);
            return Describe(id);
        }
        catch
        {
            log?.Dispose();
            stdout?.Dispose();
            stderr?.Dispose();
            master?.Dispose();
            throw;
        }
    }

    private static async Task PumpTerminalAsync(CriLogWriter? log, SafeFileHandle master)
    {
        // bufferSize 0: every read goes straight to the pty. Reads end with EIO once the last slave fd closes.
        var stream = new FileStream(master, FileAccess.Read, bufferSize: 0);
        await using (stream.ConfigureAwait(false))
        {
            if (log is not null)
            {
                await CriLogPump.RunContainerAsync(log, stream, null).ConfigureAwait(false);
                return;
            }

            try
            {
                await stream.CopyToAsync(Stream.Null).ConfigureAwait(false);
            }
            catch (IOException)
            {
                // EIO: the container side of the pty is gone
            }
        }
    }

    private static SpecProcess ParseProcess(MonitorRequest request)
    {
        try
        {
            return JsonSerializer.Deserialize(
                request.ProcessJson ?? throw NacelleException.InvalidArgument("exec-sync: processJson is required"),
                RuntimeSpecJson.Default.SpecProcess) ?? throw NacelleException.InvalidArgument("exec-sync: processJson is null");
        }
        catch (JsonException e)
        {
            throw NacelleException.InvalidArgument($"exec-sync: processJson is not an OCI process: {e.Message}");
        }
    }

    private static SpecResources ParseResources(MonitorRequest request)
    {
        try
        {
            return JsonSerializer.Deserialize(
                request.ResourcesJson ?? throw NacelleException.InvalidArgument("update: resourcesJson is required"),
                RuntimeSpecJson.Default.SpecResources) ?? throw NacelleException.InvalidArgument("update: resourcesJson is null");
        }
        catch (JsonException e)
        {
            throw NacelleException.InvalidArgument($"update: resourcesJson is not OCI linux.resources: {e.Message}");
        }
    }

    /// <summary>
    /// Runs a process in a running container to completion: stdin /dev/null, stdout and stderr captured up to the
    /// limit each (the rest read and dropped, so the process never blocks on a full pipe), SIGKILL at the timeout.
    /// </summary>
    private async Task<MonitorExecResult> ExecSyncAsync(MonitorRequest request)
    {
        var id = Id(request);
        var process = ParseProcess(request);
        if (process.Terminal)
        {
            throw NacelleException.InvalidArgument("exec-sync: a terminal is not supported (the output is captured, not a tty)");
        }

        var limit = request.OutputLimit switch
        {
            null or 0 => MonitorProtocol.DefaultExecOutputLimit,
            < 0 => throw NacelleException.InvalidArgument($"exec-sync: outputLimit {request.OutputLimit} is negative"),
            { } given => given,
        };
        if (request.TimeoutMs is < 0)
        {
            throw NacelleException.InvalidArgument($"exec-sync: timeoutMs {request.TimeoutMs} is negative");
        }

        using var stdout = new AnonymousPipeServerStream(PipeDirection.In, HandleInheritability.None);
        using var stderr = new AnonymousPipeServerStream(PipeDirection.In, HandleInheritability.None);
        SpawnedProcess spawned;
        try
        {
            using (_reaper?.Hold())
            {
                spawned = await _runtime.ExecAsync(id, process, new SpawnStdio(null, WriteEnd(stdout), WriteEnd(stderr))).ConfigureAwait(false);
                _reaper?.Track(spawned.Pid);
            }
        }
        catch (SpawnException e) when (e.Stage is SpawnProtocol.StageLookup or SpawnProtocol.StageCwd)
        {
            var what = e.Stage == SpawnProtocol.StageLookup ? $"command '{process.Args.FirstOrDefault()}'" : $"working directory '{process.Cwd}'";
            var message = $"exec in container {id}: {what}: {e.Detail} ({System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(e.Errno)})";
            throw e.Errno == 2 ? NacelleException.NotFound(message) : NacelleException.InvalidArgument(message);
        }
        finally
        {
            // Only the exec'd process (and what it starts) holds the write ends now.
            stdout.DisposeLocalCopyOfClientHandle();
            stderr.DisposeLocalCopyOfClientHandle();
        }

        using (spawned)
        {
            using var stopReading = new CancellationTokenSource();
            var outTask = CaptureAsync(ReadEnd(stdout), limit, stopReading.Token);
            var errTask = CaptureAsync(ReadEnd(stderr), limit, stopReading.Token);
            var exitTask = spawned.Process.WaitForExitAsync();
            var timedOut = false;
            if (request.TimeoutMs is > 0 and var timeout)
            {
                using var timer = new CancellationTokenSource(TimeSpan.FromMilliseconds(timeout));
                var fired = Task.Delay(Timeout.Infinite, timer.Token);
                if (await Task.WhenAny(exitTask, fired).ConfigureAwait(false) != exitTask)
                {
                    timedOut = spawned.Process.Signal(Signals.SIGKILL);
                }

                await timer.CancelAsync().ConfigureAwait(false);
            }

            ContainerCore.Processes.ProcessExit exit;
            try
            {
                exit = await exitTask.ConfigureAwait(false);
            }
            finally
            {
                _reaper?.Untrack(spawned.Pid);
            }

            // The output ends when the last writer closes; a background child may keep it open: bounded wait.
            var outputs = Task.WhenAll(outTask, errTask);
            if (await Task.WhenAny(outputs, Task.Delay(OutputGrace)).ConfigureAwait(false) != outputs)
            {
                MonitorLog.ExecOutputAbandoned(_log, id, spawned.Pid, (int)OutputGrace.TotalSeconds);
                await stopReading.CancelAsync().ConfigureAwait(false);
            }

            var (outBytes, outTruncated) = await outTask.ConfigureAwait(false);
            var (errBytes, errTruncated) = await errTask.ConfigureAwait(false);
            MonitorLog.ExecFinished(_log, id, spawned.Pid, exit.ExitCode, timedOut ? " (timed out, killed)" : string.Empty);
            return new MonitorExecResult
            {
                ExitCode = exit.ExitCode,
                Stdout = outBytes,
                Stderr = errBytes,
                TimedOut = timedOut,
                Truncated = outTruncated || errTruncated,
            };
        }
    }

    private static SafeFileHandle ReadEnd(AnonymousPipeServerStream pipe) => new(pipe.SafePipeHandle.DangerousGetHandle(), ownsHandle: false);

    /// <summary>
    /// Reads a pipe to its end (or until <paramref name="stop"/>), keeping the first <paramref name="limit"/> bytes.
    /// Each read waits for readability on the fd reactor first, so a stop never leaves a thread blocked in read(2).
    /// </summary>
    internal static async Task<(byte[] Data, bool Truncated)> CaptureAsync(SafeFileHandle source, int limit, CancellationToken stop)
    {
        var kept = new MemoryStream();
        var truncated = false;
        var chunk = new byte[64 * 1024];
        // Not disposed: the handle belongs to the pipe stream (ownsHandle false anyway).
        var reader = new FileStream(source, FileAccess.Read, bufferSize: 0);
        try
        {
            while (true)
            {
                await FdReactor.WaitReadableAsync(source, stop).ConfigureAwait(false);
                var n = reader.Read(chunk);
                if (n == 0)
                {
                    break;
                }

                var keep = (int)Math.Min(n, limit - kept.Length);
                if (keep > 0)
                {
                    kept.Write(chunk, 0, keep);
                }

                truncated |= keep < n;
            }
        }
        catch (OperationCanceledException)
        {
            // stopped: what was read is the result
        }
        catch (IOException)
        {
            // the pipe broke: what was read is the result
        }

        return (kept.ToArray(), truncated);
    }

    private static SafeFileHandle WriteEnd(AnonymousPipeServerStream pipe) => new(pipe.ClientSafePipeHandle.DangerousGetHandle(), ownsHandle: false);

    private static async Task PumpAsync(CriLogWriter log, AnonymousPipeServerStream stdout, AnonymousPipeServerStream stderr)
    {
        await using (stdout.ConfigureAwait(false))
        await using (stderr.ConfigureAwait(false))
        {
            await CriLogPump.RunContainerAsync(log, stdout, stderr).ConfigureAwait(false);
        }
    }

    /// <summary>Writes the exit record as soon as the container's init exits; only then is the exit reported.</summary>
    private async Task RecordExitAsync(string id, Tracked tracked)
    {
        var state = await _runtime.WaitAsync(id).ConfigureAwait(false);
        _exits.Save(new ExitRecord
        {
            Id = id,
            Pid = state.Pid,
            ExitCode = state.ExitCode ?? -1,
            Signal = state.ExitSignal,
            OomKilled = state.OomKilled,
            StartedAt = state.StartedAt ?? state.CreatedAt,
            ExitedAt = state.FinishedAt ?? DateTimeOffset.UtcNow,
        });
        tracked.ExitRecorded = true;
        _reaper?.Kick();
        try
        {
            // Only now, with the record on disk, is the exit announced.
            Broadcast(new MonitorResponse { Id = 0, Ok = true, Event = MonitorProtocol.EventExited, Container = Describe(id) });
        }
        catch (NacelleException e)
        {
            MonitorLog.ExitEventFailed(_log, id, e.Message);
        }
    }

    private Tracked Track(string id)
    {
        lock (_gate)
        {
            return _tracked.TryGetValue(id, out var tracked) ? tracked : throw NacelleException.NotFound($"container {id} does not exist in this pod");
        }
    }

    private MonitorContainer Describe(string id)
    {
        var state = _runtime.State(id);
        var tracked = Track(id);
        var status = state.Status;
        if (status == ContainerStatus.Stopped && !tracked.ExitRecorded)
        {
            // Not reported until it is on disk.
            status = state.StartedAt is null ? ContainerStatus.Created : ContainerStatus.Running;
        }

        var stopped = status == ContainerStatus.Stopped;
        return new MonitorContainer
        {
            Id = id,
            Status = status.ToString(),
            Pid = state.Pid,
            CreatedAt = state.CreatedAt,
            StartedAt = state.StartedAt,
            FinishedAt = stopped ? state.FinishedAt : null,
            ExitCode = stopped ? state.ExitCode : null,
            ExitSignal = stopped ? state.ExitSignal : null,
            OomKilled = stopped && state.OomKilled,
            LogFile = tracked.LogPath,
            CgroupPath = state.CgroupPath,
        };
    }

    private async Task DeleteAsync(string id, bool force)
    {
        var tracked = Track(id);
        await _runtime.DeleteAsync(id, force).ConfigureAwait(false);
        await tracked.Watch.ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
        await tracked.Pump.WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
        tracked.Log?.Dispose();
        if (tracked.Pump.IsCompleted)
        {
            tracked.Terminal?.Dispose();
        }

        _exits.Delete(id);
        lock (_gate)
        {
            _tracked.Remove(id);
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
