using System.IO.Pipes;
using System.Net.Sockets;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;
using Nacelle.Common;
using Nacelle.ContainerCore.Cgroups;
using Nacelle.ContainerCore.Runtime;
using Nacelle.ContainerCore.Spawn;
using Nacelle.ContainerCore.Spec;
using Nacelle.Sandbox.Exits;
using Nacelle.Sandbox.Logging;

namespace Nacelle.Sandbox.Monitor;

/// <summary>Where a monitor keeps its pod's state: the socket, container states and exit records under one directory.</summary>
public sealed record MonitorOptions
{
    public required string PodId { get; init; }

    /// <summary>The pod's monitor directory (volatile, under /run): monitor.sock, containers/, exits/.</summary>
    public required string Directory { get; init; }

    /// <summary>The cgroup parent of the pod's containers (kubelet's pod cgroup); null: ContainerCore's default.</summary>
    public string? CgroupParent { get; init; }

    public ILogger Logger { get; init; } = NullLogger.Instance;

    /// <summary>The monitor's socket (default: monitor.sock in <see cref="Directory"/>). Unix socket paths are limited to
    /// 107 bytes, so the pod manager keeps them short.</summary>
    public string SocketPath
    {
        get => field ?? Path.Combine(Directory, "monitor.sock");
        init => field = value;
    }

    /// <summary>Refuses a socket path the kernel cannot bind (sun_path holds 108 bytes with its NUL).</summary>
    public void CheckSocketPath()
    {
        if (System.Text.Encoding.UTF8.GetByteCount(SocketPath) > 107)
        {
            throw NacelleException.InvalidArgument($"monitor socket path '{SocketPath}' is longer than the 107 bytes a unix socket path may have");
        }
    }
}

/// <summary>
/// The heart of nacelle-monitor: the parent of every process of one pod (through ContainerCore), the writer of their
/// CRI logs, and the keeper of their exits, which it records durably before it ever reports them. It serves the
/// daemon over a unix socket and keeps working while no daemon is connected; a restarted daemon simply connects
/// again. It stops on a shutdown request, after deleting every container of the pod.
/// </summary>
public sealed class MonitorServer : IAsyncDisposable
{
    private readonly MonitorOptions _options;
    private readonly ContainerRuntime _runtime;
    private readonly ExitRecordStore _exits;
    private readonly Dictionary<string, Tracked> _tracked = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stop = new();

    private sealed class Tracked
    {
        public CriLogWriter? Log { get; init; }
        public Task Pump { get; set; } = Task.CompletedTask;
        public Task Watch { get; set; } = Task.CompletedTask;
        public string? LogPath { get; init; }
        public bool ExitRecorded { get; set; }
    }

    public MonitorServer(MonitorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.CheckSocketPath();
        _options = options;
        System.IO.Directory.CreateDirectory(options.Directory);
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(options.SocketPath)!);
        _exits = new ExitRecordStore(Path.Combine(options.Directory, "exits"));
        _exits.RemoveTemporaryFiles();
        _runtime = new ContainerRuntime(new ContainerRuntimeOptions
        {
            StateDirectory = Path.Combine(options.Directory, "containers"),
            Cgroups = CgroupManager.Detect(),
            CgroupParent = options.CgroupParent,
            Logger = options.Logger,
        });
    }

    /// <summary>Serves until a shutdown request (or <paramref name="cancellationToken"/>).</summary>
    public async Task RunAsync(CancellationToken cancellationToken = default)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        File.Delete(_options.SocketPath);
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(_options.SocketPath));
        File.SetUnixFileMode(_options.SocketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        listener.Listen(8);
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
        CriLogWriter? log = null;
        AnonymousPipeServerStream? stdout = null, stderr = null;
        try
        {
            var stdio = SpawnStdio.Null;
            if (request.LogPath is { } logPath)
            {
                log = CriLogWriter.Open(logPath);
                stdout = new AnonymousPipeServerStream(PipeDirection.In, HandleInheritability.None);
                stderr = new AnonymousPipeServerStream(PipeDirection.In, HandleInheritability.None);
                stdio = new SpawnStdio(null, WriteEnd(stdout), WriteEnd(stderr));
            }

            await _runtime.CreateAsync(id, spec, bundle, stdio).ConfigureAwait(false);
            var tracked = new Tracked { Log = log, LogPath = request.LogPath };
            if (log is not null)
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
            throw;
        }
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
            LogPath = tracked.LogPath,
        };
    }

    private async Task DeleteAsync(string id, bool force)
    {
        var tracked = Track(id);
        await _runtime.DeleteAsync(id, force).ConfigureAwait(false);
        await tracked.Watch.ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
        await tracked.Pump.WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
        tracked.Log?.Dispose();
        _exits.Delete(id);
        lock (_gate)
        {
            _tracked.Remove(id);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _runtime.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
    }
}
