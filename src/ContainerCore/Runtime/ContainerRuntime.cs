using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Cgroups;
using Nacelle.ContainerCore.Cgroups.Systemd;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Processes;
using Nacelle.ContainerCore.Reactor;
using Nacelle.ContainerCore.Spawn;
using Nacelle.ContainerCore.Spec;

namespace Nacelle.ContainerCore.Runtime;

/// <summary>Where the core keeps its state and how it creates containers.</summary>
public sealed record ContainerRuntimeOptions
{
    /// <summary>One directory per container (state.json), volatile (under /run).</summary>
    public required string StateDirectory { get; init; }

    public required CgroupManager Cgroups { get; init; }

    /// <summary>The cgroup parent for containers whose spec has no cgroupsPath (default: the manager's).</summary>
    public string? CgroupParent { get; init; }

    public SpawnHelperBinary? Helper { get; init; }

    public HostFacts? Host { get; init; }

    /// <summary>Bound on the helper's setup (namespaces, mounts, ...), and on start.</summary>
    public TimeSpan SetupTimeout { get; init; } = TimeSpan.FromSeconds(30);

    public ILogger Logger { get; init; } = NullLogger.Instance;

    /// <summary>
    /// Suspends the child reaper of the process running the core (the pod monitor's orphan reaper) while an external
    /// runtime's command runs and its container process is adopted: both are children whose exits are reaped here.
    /// </summary>
    public Func<IDisposable?>? HoldChildReaping { get; init; }
}

/// <summary>
/// The core API over OCI runtime specs: create (init parked before execve), start, kill, state, delete, exec,
/// pause/resume, update and stats. The process using it becomes the parent of every container process (the per-pod
/// monitor, in nacelle) and watches them through pidfds. Each create registers an undo for everything it acquired.
/// </summary>
public sealed partial class ContainerRuntime : IAsyncDisposable
{
    private readonly ContainerRuntimeOptions _options;
    private readonly Spawner _spawner;
    private readonly HostFacts _host;
    private readonly ILogger _log;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Entry> _containers = new(StringComparer.Ordinal);
    private volatile bool _disposed;

    /// <summary>A container this instance tracks. It keeps what later operations need of the spec (the exec template,
    /// the systemd scope), not the spec: a pod's monitor holds its entries for the pod's life.</summary>
    private sealed class Entry(string id, ExecTemplate? exec, RuntimeSpec spec, ICgroup cgroup, ulong oomBaseline)
    {
        public string Id { get; } = id;

        /// <summary>What an exec needs of the spec; null for an external runtime's container (the runtime execs).</summary>
        public ExecTemplate? Exec { get; } = exec;

        /// <summary>The systemd scope of a container created under the systemd driver; null under cgroupfs.</summary>
        public SystemdScope? Scope { get; } = ScopeOf(spec);
        public ICgroup Cgroup { get; } = cgroup;
        public ulong OomBaseline { get; } = oomBaseline;
        public required ContainerState State { get; set; }
        public SpawnedProcess? Spawned { get; set; }

        /// <summary>The external OCI runtime that runs this container (null: the built-in core).</summary>
        public Oci.OciRuntimeLauncher? External { get; init; }
        public WatchedProcess? Process { get; set; }
        public Task<ProcessExit>? Exit { get; set; }
        public readonly SemaphoreSlim Operation = new(1, 1);
    }

    public ContainerRuntime(ContainerRuntimeOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _host = options.Host ?? HostFacts.Detect();
        _spawner = new Spawner(options.Helper ?? SpawnHelperBinary.Shared, options.SetupTimeout);
        _log = options.Logger;
        Directory.CreateDirectory(options.StateDirectory);
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")]
    private static partial Regex IdPattern();

    /// <summary>Creates the container of <paramref name="bundle"/>/config.json.</summary>
    public Task<ContainerState> CreateAsync(string id, string bundle, SpawnStdio stdio, CancellationToken cancellationToken = default)
    {
        var path = Path.Combine(bundle, "config.json");
        if (!File.Exists(path))
        {
            throw NacelleException.InvalidArgument($"bundle {bundle} has no config.json");
        }

        return CreateAsync(id, RuntimeSpecFile.Parse(File.ReadAllBytes(path), path), bundle, stdio, cancellationToken);
    }

    /// <summary>
    /// Creates a container: validates and plans the spec (refusing bad input before anything exists), creates and
    /// configures its cgroup, and spawns its init, which stops just before execve until <see cref="StartAsync"/>.
    /// </summary>
    public async Task<ContainerState> CreateAsync(string id, RuntimeSpec spec, string bundle, SpawnStdio stdio,
        CancellationToken cancellationToken = default, ExternalRuntime? external = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(id);
        if (!IdPattern().IsMatch(id))
        {
            throw NacelleException.InvalidArgument($"container id '{id}' must be 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit");
        }

        lock (_gate)
        {
            if (_containers.ContainsKey(id) || Directory.Exists(StateDir(id)))
            {
                throw NacelleException.AlreadyExists($"container {id} already exists");
            }
        }

        if (external is not null)
        {
            return await CreateExternalAsync(id, spec, bundle, stdio, external, cancellationToken).ConfigureAwait(false);
        }

        var placement = CgroupManager.Place(CgroupPathFor(id, spec));
        var cgroupPath = placement.Path;
        var v1Mounts = _options.Cgroups.ContainerMounts(cgroupPath);
        var plan = SpawnPlanner.PlanContainer(spec, bundle, _host, v1Mounts);
        var exec = SpawnPlanner.ExecTemplateFor(spec, compileSeccomp: true);
        foreach (var adjustment in plan.Adjustments)
        {
            RuntimeLog.Adjusted(_log, id, adjustment);
        }

        var undo = new UndoStack();
        try
        {
            Directory.CreateDirectory(StateDir(id));
            undo.Push("state directory", () => Directory.Delete(StateDir(id), recursive: true));
            File.WriteAllBytes(Path.Combine(StateDir(id), "config.json"), RuntimeSpecFile.SerializeToUtf8(spec));

            var cgroup = CreateCgroup(cgroupPath);
            undo.Push("cgroup", () => cgroup.RemoveAsync(CancellationToken.None));
            var resources = spec.Linux?.Resources is { } specResources ? CgroupSpecMapping.FromSpec(specResources) : null;
            if (resources is not null)
            {
                cgroup.Apply(resources);
            }

            if (placement.Scope is { } undoScope)
            {
                // Undone after the init is killed (an empty scope stops at once), before the directories go.
                undo.Push("systemd scope", () => _options.Cgroups.StopScopeAsync(undoScope, CancellationToken.None));
            }

            plan.Request.JoinCgroup(cgroup);
            var spawned = await _spawner.SpawnAsync(plan.Request, stdio, cancellationToken).ConfigureAwait(false);
            undo.Push("init process", async () =>
            {
                spawned.Process.Signal(Signals.SIGKILL);
                await spawned.Process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
                spawned.Dispose();
            });

            if (placement.Scope is { } scope)
            {
                // The systemd driver: the init, parked before execve, joins its scope before it can run.
                await _options.Cgroups.StartScopeAsync(cgroup, scope, spawned.Pid, resources, $"nacelle container {id}", cancellationToken)
                    .ConfigureAwait(false);
            }

            var state = new ContainerState
            {
                Id = id,
                Status = ContainerStatus.Created,
                Pid = spawned.Pid,
                PidStartTime = ProcessIdentity.StartTime(spawned.Pid) ?? 0,
                Bundle = bundle,
                Rootfs = plan.Request.Rootfs!,
                CgroupPath = cgroup.Path,
                CreatedAt = DateTimeOffset.UtcNow,
                Annotations = new Dictionary<string, string>(spec.Annotations, StringComparer.Ordinal),
            };
            return Register(new Entry(id, exec, spec, cgroup, cgroup.OomKills().OomKills)
            {
                State = state, Spawned = spawned, Process = spawned.Process,
            });
        }
        catch (Exception e)
        {
            RuntimeLog.CreateFailed(_log, id, e.Message);
            await undo.RunAsync(TimeSpan.FromSeconds(30), FdReactor.Time, (what, error) => RuntimeLog.UndoFailed(_log, id, $"{what}: {error.Message}")).ConfigureAwait(false);

            throw;
        }
    }

    /// <summary>The last step of a create: the new container's state is written, it is tracked and its exit watched.</summary>
    private ContainerState Register(Entry entry)
    {
        Persist(entry.State);
        lock (_gate)
        {
            _containers.Add(entry.Id, entry);
        }

        entry.Exit = WatchExitAsync(entry);
        RuntimeLog.Created(_log, entry.Id, entry.State.Pid, entry.Cgroup.Path);
        return entry.State;
    }

    /// <summary>
    /// Loads the containers a previous instance left in the state directory (after a restart of the process that
    /// runs the core). A container's init is taken back only if its pid still names the same process (same start
    /// time): a pid reused by another process is never mistaken for it, and such a container is reported stopped.
    /// Processes taken back are observed, not reaped (their parent is gone): their exit code is not known here.
    /// </summary>
    public IReadOnlyList<ContainerState> Recover()
    {
        var recovered = new List<ContainerState>();
        foreach (var dir in Directory.GetDirectories(_options.StateDirectory))
        {
            var id = Path.GetFileName(dir);
            var statePath = Path.Combine(dir, "state.json");
            var specPath = Path.Combine(dir, "config.json");
            lock (_gate)
            {
                if (_containers.ContainsKey(id) || !File.Exists(statePath) || !File.Exists(specPath))
                {
                    continue;
                }
            }

            var state = JsonSerializer.Deserialize(File.ReadAllBytes(statePath), ContainerStateJson.Current.ContainerState)!;
            var spec = RuntimeSpecFile.Parse(File.ReadAllBytes(specPath), specPath);
            var cgroup = _options.Cgroups.Open(state.CgroupPath);
            WatchedProcess? process = null;
            if (state.Status != ContainerStatus.Stopped)
            {
                if (ProcessIdentity.StartTime(state.Pid) == state.PidStartTime)
                {
                    try
                    {
                        process = WatchedProcess.Open(state.Pid);
                    }
                    catch (NacelleException)
                    {
                        process = null;
                    }
                }

                // Opened, then checked again: the pidfd pins the process, so a match now is the same process.
                if (process is not null && ProcessIdentity.StartTime(state.Pid) != state.PidStartTime)
                {
                    process.Dispose();
                    process = null;
                }

                if (process is null)
                {
                    RuntimeLog.PidReused(_log, id, state.Pid);
                    state = state with { Status = ContainerStatus.Stopped, FinishedAt = state.FinishedAt ?? DateTimeOffset.UtcNow };
                }
                else if (state.Status == ContainerStatus.Created && state.Runtime is null)
                {
                    // A parked init whose creator is gone cannot be started any more (its control socket died with it);
                    // an external runtime's can (the runtime keeps what starts it).
                    process.Signal(Signals.SIGKILL);
                }
            }

            var external = LauncherFor(id, state.Runtime);
            var exec = external is null ? SpawnPlanner.ExecTemplateFor(spec, compileSeccomp: false) : null;
            var entry = new Entry(id, exec, spec, cgroup, SafeOomKills(cgroup)) { State = state, Process = process, External = external };
            lock (_gate)
            {
                _containers[id] = entry;
                Persist(state);
            }

            if (process is not null)
            {
                entry.Exit = WatchExitAsync(entry);
            }

            recovered.Add(state);
        }

        return recovered;
    }

    /// <summary>Releases the parked init to execve its program.</summary>
    public async Task StartAsync(string id, CancellationToken cancellationToken = default)
    {
        var entry = Get(id);
        await entry.Operation.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (entry.External is { } external && entry.State.Status == ContainerStatus.Created && entry.Process is { HasExited: false })
            {
                await external.StartAsync(id, cancellationToken).ConfigureAwait(false);
            }
            else if (entry.State.Status != ContainerStatus.Created || entry.Spawned is not { Parked: true } spawned)
            {
                throw NacelleException.FailedPrecondition($"container {id} is {entry.State.Status}, not created: it can only be started once");
            }
            else
            {
                await spawned.StartAsync(_options.SetupTimeout, cancellationToken).ConfigureAwait(false);
            }

            Update(entry, s => s.Status == ContainerStatus.Created
                ? s with { Status = ContainerStatus.Running, StartedAt = DateTimeOffset.UtcNow }
                : s with { StartedAt = DateTimeOffset.UtcNow });
            RuntimeLog.Started(_log, id);
        }
        finally
        {
            entry.Operation.Release();
        }
    }

    /// <summary>Signals the init process, or with <paramref name="all"/> every process in the container's cgroup.</summary>
    public void Kill(string id, int signal, bool all = false)
    {
        var entry = Get(id);
        if (signal is < 1 or > 64)
        {
            throw NacelleException.InvalidArgument($"signal {signal} is not a signal number (1-64)");
        }

        if (all)
        {
            foreach (var pid in entry.Cgroup.Processes())
            {
                Signals.Send(pid, signal);
            }

            return;
        }

        if (entry.State.Status == ContainerStatus.Stopped || entry.Process is not { } process || !process.Signal(signal))
        {
            throw NacelleException.FailedPrecondition($"container {id} is not running");
        }
    }

    public ContainerState State(string id) => Get(id).State;

    public IReadOnlyList<ContainerState> List()
    {
        lock (_gate)
        {
            return [.. _containers.Values.Select(e => e.State).OrderBy(s => s.Id, StringComparer.Ordinal)];
        }
    }

    /// <summary>Waits for the container's init to exit; returns the final state.</summary>
    public async Task<ContainerState> WaitAsync(string id, CancellationToken cancellationToken = default)
    {
        var entry = Get(id);
        if (entry.Exit is { } exit)
        {
            await exit.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        return entry.State;
    }

    /// <summary>
    /// Deletes a container: its processes (only when stopped, unless <paramref name="force"/> kills them), its cgroup
    /// (retried while processes drain) and its state. Its mounts lived in its own mount namespace and went with it.
    /// Deleting an unknown container is NotFound.
    /// </summary>
    public async Task DeleteAsync(string id, bool force = false, CancellationToken cancellationToken = default)
    {
        var entry = Get(id);
        await entry.Operation.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var running = entry.State.Status != ContainerStatus.Stopped;
            if (running && entry.State.Status != ContainerStatus.Created && !force)
            {
                throw NacelleException.FailedPrecondition($"container {id} is {entry.State.Status}; stop it or delete with force");
            }

            if (entry.State.Status == ContainerStatus.Paused)
            {
                await entry.Cgroup.ThawAsync(cancellationToken).ConfigureAwait(false);
            }

            if (running)
            {
                entry.Process?.Signal(Signals.SIGKILL);
            }

            if (running || entry.Cgroup.Processes().Count > 0)
            {
                await entry.Cgroup.KillAsync(cancellationToken).ConfigureAwait(false);
            }

            if (entry.Exit is { } exit)
            {
                await exit.WaitAsync(TimeSpan.FromSeconds(30), FdReactor.Time, cancellationToken).ConfigureAwait(false);
            }

            if (entry.Scope is { } scope)
            {
                await _options.Cgroups.StopScopeAsync(scope, cancellationToken).ConfigureAwait(false);
            }

            if (entry.External is { } external)
            {
                await external.DeleteAsync(id, cancellationToken).ConfigureAwait(false);
            }

            await entry.Cgroup.RemoveAsync(cancellationToken).ConfigureAwait(false);
            entry.Spawned?.Dispose();
            entry.Process?.Dispose();
            lock (_gate)
            {
                _containers.Remove(id);
            }

            if (Directory.Exists(StateDir(id)))
            {
                Directory.Delete(StateDir(id), recursive: true);
            }

            RuntimeLog.Deleted(_log, id);
        }
        finally
        {
            entry.Operation.Release();
        }
    }

    /// <summary>
    /// Runs an extra process in a running container: same namespaces and cgroup, its own user, capabilities and
    /// environment from <paramref name="process"/>, the container's seccomp profile. Returns once it executes.
    /// </summary>
    /// <param name="spawnFailed">Called when the spawn failed, before this waits a moment to see whether the container
    /// is ending (a stop raced the exec): whoever reaps orphans must be free to by then, since a process the helper
    /// cloned and never reported can keep the container's pid-namespace init from finishing its exit until reaped.</param>
    public async Task<SpawnedProcess> ExecAsync(string id, SpecProcess process, SpawnStdio stdio, CancellationToken cancellationToken = default,
        Action? spawnFailed = null)
    {
        ArgumentNullException.ThrowIfNull(process);
        var entry = Get(id);
        if (entry.State.Status is not (ContainerStatus.Running or ContainerStatus.Created) || entry.Process is not { HasExited: false })
        {
            throw NacelleException.FailedPrecondition($"container {id} is {entry.State.Status}: exec needs a running container");
        }

        var probe = new RuntimeSpec { Process = process, Root = new SpecRoot { Path = "/" } };
        SpecValidator.Validate(probe);
        if (entry.External is { } external)
        {
            var adopted = await external.ExecAsync(id, process, stdio, cancellationToken).ConfigureAwait(false);
            RuntimeLog.ExecStarted(_log, id, adopted.Pid);
            return new SpawnedProcess(adopted);
        }

        var template = entry.Exec ?? throw new InvalidOperationException($"container {id} has neither an external runtime nor an exec template");
        var plan = SpawnPlanner.PlanExec(template, process, entry.State.Pid, entry.Cgroup, _host);
        foreach (var adjustment in plan.Adjustments)
        {
            RuntimeLog.Adjusted(_log, id, adjustment);
        }

        SpawnedProcess spawned;
        try
        {
            spawned = await _spawner.SpawnAsync(plan.Request, stdio, cancellationToken).ConfigureAwait(false);
        }
        catch (NacelleException e) when (e.Kind == ErrorKind.Internal && entry.Process is { } init)
        {
            // The container ended while the exec was being set up (a stop killed its cgroup, the helper with it, or its
            // namespaces went with its init): the caller raced a stop, as if the exec had come a moment later.
            spawnFailed?.Invoke();
            if (await EndsSoonAsync(init).ConfigureAwait(false))
            {
                throw NacelleException.FailedPrecondition($"container {id} stopped while an exec was being set up in it: exec needs a running container ({e.Message})");
            }

            throw;
        }

        RuntimeLog.ExecStarted(_log, id, spawned.Pid);
        return spawned;
    }

    /// <summary>Whether a container's init has exited or does within a moment (a cgroup kill may reach it after the
    /// helper). Polls the pidfd: whoever reaps the init (the exit watch, the monitor's reaper) is left to do so.</summary>
    private static async Task<bool> EndsSoonAsync(WatchedProcess init)
    {
        for (var i = 0; i < 20 && !init.HasExited; i++)
        {
            await Task.Delay(50).ConfigureAwait(false);
        }

        return init.HasExited;
    }

    public async Task PauseAsync(string id, CancellationToken cancellationToken = default)
    {
        var entry = Get(id);
        if (entry.State.Status != ContainerStatus.Running)
        {
            throw NacelleException.FailedPrecondition($"container {id} is {entry.State.Status}, not running");
        }

        await entry.Cgroup.FreezeAsync(cancellationToken).ConfigureAwait(false);
        Update(entry, s => s with { Status = ContainerStatus.Paused });
    }

    public async Task ResumeAsync(string id, CancellationToken cancellationToken = default)
    {
        var entry = Get(id);
        if (entry.State.Status != ContainerStatus.Paused)
        {
            throw NacelleException.FailedPrecondition($"container {id} is {entry.State.Status}, not paused");
        }

        await entry.Cgroup.ThawAsync(cancellationToken).ConfigureAwait(false);
        Update(entry, s => s.Status == ContainerStatus.Paused ? s with { Status = ContainerStatus.Running } : s);
    }

    /// <summary>Changes the container's cgroup limits (fields left null stay as they are); under the systemd driver its
    /// scope's properties too, as systemd rewrites a unit's files from them.</summary>
    public async Task UpdateResourcesAsync(string id, SpecResources resources, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(resources);
        var entry = Get(id);
        if (entry.State.Status == ContainerStatus.Stopped)
        {
            throw NacelleException.FailedPrecondition($"container {id} has stopped");
        }

        var mapped = CgroupSpecMapping.FromSpec(resources);
        if (entry.Scope is { } scope)
        {
            // First: limits systemd cannot express are refused before anything changed.
            await _options.Cgroups.UpdateScopeAsync(scope, mapped, cancellationToken).ConfigureAwait(false);
        }

        entry.Cgroup.Apply(mapped);
    }

    /// <summary>The systemd scope of a container created under the systemd driver; null under cgroupfs.</summary>
    private static SystemdScope? ScopeOf(RuntimeSpec spec) =>
        spec.Linux?.CgroupsPath is { } path && SystemdUnits.IsScopePath(path) ? SystemdUnits.ParseScopePath(path) : null;

    public CgroupStats Stats(string id) => Get(id).Cgroup.Stats();

    /// <summary>
    /// Lets go of the containers without stopping them (they keep running; a later instance can <see cref="Recover"/>
    /// them). From here on this instance writes no more state.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        _disposed = true;
        List<Entry> entries;
        lock (_gate)
        {
            entries = [.. _containers.Values];
        }

        foreach (var entry in entries)
        {
            entry.Spawned?.Dispose();
            entry.Process?.Dispose();
        }

        await Task.CompletedTask.ConfigureAwait(false);
    }

    private async Task<ProcessExit> WatchExitAsync(Entry entry)
    {
        var exit = await entry.Process!.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        // The OOM killer's count in this cgroup went up: it killed the init or another of its processes.
        var oomKilled = SafeOomKills(entry.Cgroup) > entry.OomBaseline;
        Update(entry, s => s with
        {
            Status = ContainerStatus.Stopped,
            ExitCode = exit.ExitCode < 0 ? null : exit.ExitCode,
            ExitSignal = exit.Signal == 0 ? null : exit.Signal,
            FinishedAt = exit.ExitedAt,
            OomKilled = oomKilled,
        });
        RuntimeLog.Exited(_log, entry.Id, exit.ExitCode, exit.Signal, oomKilled);
        return exit;
    }

    private static ulong SafeOomKills(ICgroup cgroup)
    {
        try
        {
            return cgroup.OomKills().OomKills;
        }
        catch (NacelleException)
        {
            return 0;
        }
    }

    private void Update(Entry entry, Func<ContainerState, ContainerState> change)
    {
        lock (_gate)
        {
            entry.State = change(entry.State);
            if (!_disposed && Directory.Exists(StateDir(entry.Id)))
            {
                Persist(entry.State);
            }
        }
    }

    private void Persist(ContainerState state)
    {
        // A unique temp name: another instance recovering the same directory may write at the same moment.
        var path = Path.Combine(StateDir(state.Id), "state.json");
        var temp = $"{path}.{Guid.NewGuid():N}.tmp";
        try
        {
            File.WriteAllBytes(temp, JsonMetadata.Serialize(state, ContainerStateJson.Current.ContainerState));
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e) when (e is DirectoryNotFoundException or FileNotFoundException && !Directory.Exists(StateDir(state.Id)))
        {
            // deleted meanwhile: nothing left to record
        }
    }

    private Entry Get(string id)
    {
        lock (_gate)
        {
            return _containers.TryGetValue(id ?? string.Empty, out var entry)
                ? entry
                : throw NacelleException.NotFound($"container {id} does not exist");
        }
    }

    private string StateDir(string id) => Path.Combine(_options.StateDirectory, id);

    private string CgroupPathFor(string id, RuntimeSpec spec)
    {
        var requested = spec.Linux?.CgroupsPath;
        if (SystemdUnits.IsScopePath(requested))
        {
            return requested!; // the systemd driver's slice:prefix:name
        }

        if (string.IsNullOrEmpty(requested))
        {
            var parent = _options.CgroupParent ?? _options.Cgroups.DefaultParentPath;
            return parent.TrimEnd('/') + "/" + id;
        }

        if (!requested.StartsWith('/'))
        {
            // Relative paths hang under the configured parent, as runc does under its own.
            var parent = _options.CgroupParent ?? _options.Cgroups.DefaultParentPath;
            return parent.TrimEnd('/') + "/" + requested;
        }

        return requested;
    }

    private ICgroup CreateCgroup(string path)
    {
        var slash = path.LastIndexOf('/');
        var parent = slash <= 0 ? "/" : path[..slash];
        return _options.Cgroups.Create(path[(slash + 1)..], parent);
    }
}
