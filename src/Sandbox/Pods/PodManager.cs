using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Nacelle.Common.PodMonitor;
using Nacelle.Common;
using Nacelle.ContainerCore;
using Nacelle.ContainerCore.Cgroups;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Mounts;
using Nacelle.ContainerCore.Processes;
using Nacelle.ContainerCore.Runtime;
using Nacelle.ContainerCore.Spec;
using Nacelle.Sandbox.Handlers;
using Nacelle.Sandbox.Monitor;
using Nacelle.Sandbox.Namespaces;
using Nacelle.Sandbox.Network;
using Nacelle.Sandbox.Store;

namespace Nacelle.Sandbox.Pods;

/// <summary>What RunPodSandbox asks for, in domain terms (CriServer translates the CRI request).</summary>
public sealed record PodSandboxRequest
{
    public required string Name { get; init; }
    public required string Namespace { get; init; }
    public required string Uid { get; init; }
    public uint Attempt { get; init; }
    public string? Hostname { get; init; }
    public string LogDirectory { get; init; } = "";
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
    public IReadOnlyDictionary<string, string> Annotations { get; init; } = new Dictionary<string, string>();
    public PodDnsConfig? Dns { get; init; }
    public IReadOnlyList<CniPortMapping> PortMappings { get; init; } = [];
    public PodNamespaceOptions NamespaceOptions { get; init; } = new();
    public string CgroupParent { get; init; } = "";
    public IReadOnlyDictionary<string, string> Sysctls { get; init; } = new Dictionary<string, string>();
    public bool Privileged { get; init; }
    public string RuntimeHandler { get; init; } = "";
    /// <summary>The CRI PodSandboxConfig in protobuf's binary encoding (opaque here).</summary>
    public byte[] Config { get; init; } = [];

    /// <summary>
    /// Refuses, before anything is acquired, what RunPodSandbox could only fail on half way: a log directory that is
    /// not a clean absolute path (kubelet's always is; a relative or dotted one would put container logs anywhere), a
    /// cgroup parent not in the form of the node's cgroup driver, and port mappings no plugin could install.
    /// </summary>
    /// <param name="systemdDriver">Whether nacelle's cgroup.driver is systemd (kubelet's must be the same).</param>
    public void Validate(bool systemdDriver = false)
    {
        // CNI plugins get these in CNI_ARGS ("K8S_POD_NAME=<name>;...;IgnoreUnknown=1", an environment variable): a NUL cuts
        // the variable short and a ';' or '=' adds arguments of the caller's choosing.
        foreach (var (field, value) in new[] { ("name", Name), ("namespace", Namespace), ("uid", Uid) })
        {
            if (value.Any(c => c is ';' or '=' || char.IsControl(c)))
            {
                throw NacelleException.InvalidArgument(
                    $"config.metadata.{field} must not contain ';', '=' or control characters (it is passed to CNI plugins in CNI_ARGS)");
            }
        }

        if (LogDirectory.Length > 0)
        {
            var segments = LogDirectory.TrimEnd('/').Split('/');
            if (LogDirectory[0] != '/' || LogDirectory.Contains('\0', StringComparison.Ordinal) ||
                segments.Skip(1).Any(s => s is "" or "." or ".."))
            {
                throw NacelleException.InvalidArgument(
                    $"log_directory '{LogDirectory}' must be a clean absolute path (starting with '/', without '.', '..' or empty segments)");
            }

            if (PathLimits.Exceeded(LogDirectory) is { } why)
            {
                throw NacelleException.InvalidArgument($"log_directory: {why}");
            }
        }

        ValidateCgroupParent(systemdDriver);

        foreach (var mapping in PortMappings)
        {
            mapping.Validate();
        }

        if (NamespaceOptions.User is { } user)
        {
            const string Field = "config.linux.security_context.namespace_options";
            user.Validate($"{Field}.userns_options");
            if (user.IsPod)
            {
                // As kubelet's API: hostUsers: false goes with none of hostNetwork, hostPID, hostIPC (a proc, sysfs or
                // mqueue of the node's namespaces cannot be mounted from the pod's user namespace).
                foreach (var (name, mode) in new[] { ("network", NamespaceOptions.Network), ("pid", NamespaceOptions.Pid), ("ipc", NamespaceOptions.Ipc) })
                {
                    if (mode == PodNamespaceMode.Node)
                    {
                        throw NacelleException.InvalidArgument(
                            $"{Field}.{name}: NODE cannot go with a user namespace of the pod's own (userns_options mode POD)");
                    }
                }
            }
        }
    }

    /// <summary>
    /// kubelet names a pod's parent in its own cgroup driver's form: a slice name under systemd, an absolute path under
    /// cgroupfs. A parent of the other driver's form means kubelet and nacelle disagree on the driver; anything else
    /// relative would land below the root of every hierarchy, somewhere the caller did not say.
    /// </summary>
    private void ValidateCgroupParent(bool systemdDriver)
    {
        if (CgroupParent.Length == 0)
        {
            return;
        }

        var slice = CgroupNames.IsSystemd(CgroupParent);
        if (slice != systemdDriver)
        {
            throw NacelleException.InvalidArgument(systemdDriver
                ? $"linux.cgroup_parent '{CgroupParent}' is a cgroupfs path, but nacelle's cgroup.driver is systemd: kubelet's --cgroup-driver must be systemd too"
                : $"linux.cgroup_parent '{CgroupParent}' is a systemd slice, but nacelle's cgroup.driver is cgroupfs: kubelet's --cgroup-driver must be cgroupfs too (or set cgroup.driver = \"systemd\")");
        }

        if (!slice && CgroupParent[0] != '/')
        {
            throw NacelleException.InvalidArgument(
                $"linux.cgroup_parent '{CgroupParent}' must be an absolute cgroup path (starting with '/') or, under the systemd cgroup driver, a slice name");
        }
    }
}

/// <summary>A ready pod lost its monitor or pause-init (<see cref="PodManager.PodLost"/>).</summary>
/// <param name="MonitorGone">The monitor is gone: the pod's processes were killed and its containers' exits will never be
/// reported by it.</param>
public sealed record PodLoss(string PodId, string Reason, bool MonitorGone);

/// <summary>A pod's usage at <paramref name="At"/>: its cgroup's accounting and its interfaces' counters.</summary>
public sealed record PodUsage(DateTimeOffset At, CgroupUsage? Cgroup, IReadOnlyList<NetworkCounters> Interfaces);

/// <summary>One interface's counters from /proc/net/dev.</summary>
public sealed record NetworkCounters(string Name, ulong RxBytes, ulong RxErrors, ulong TxBytes, ulong TxErrors)
{
    /// <summary>Parses /proc/net/dev: two header lines, then "name: rx_bytes packets errs drop fifo frame compressed
    /// multicast tx_bytes packets errs ..."; a line of another shape is skipped.</summary>
    public static IReadOnlyList<NetworkCounters> Parse(ReadOnlySpan<byte> text)
    {
        var result = new List<NetworkCounters>();
        Span<ulong> fields = stackalloc ulong[11];
        var lineNumber = 0;
        foreach (var range in text.Split((byte)'\n'))
        {
            var line = text[range];
            var colon = line.IndexOf((byte)':');
            if (lineNumber++ < 2 || colon < 0 || !TryParseFields(line[(colon + 1)..], fields))
            {
                continue;
            }

            var name = Encoding.ASCII.GetString(line[..colon].Trim((byte)' '));
            result.Add(new NetworkCounters(name, fields[0], fields[2], fields[8], fields[10]));
        }

        return result;
    }

    // The first fields.Length space-separated decimal numbers of the text; false when it has fewer or another word.
    private static bool TryParseFields(ReadOnlySpan<byte> text, Span<ulong> fields)
    {
        var count = 0;
        foreach (var range in text.Split((byte)' '))
        {
            var field = text[range];
            if (field.IsEmpty)
            {
                continue;
            }

            if (!Utf8Parser.TryParse(field, out ulong value, out var consumed) || consumed != field.Length)
            {
                return false;
            }

            fields[count++] = value;
            if (count == fields.Length)
            {
                return true;
            }
        }

        return false;
    }
}

public sealed record PodManagerOptions
{
    /// <summary>Volatile state: pods/&lt;id&gt;/ (monitor socket, files, shm), ns/&lt;id&gt;/ pins, pause-root/.</summary>
    public required string StateRoot { get; init; }

    /// <summary>The nacelle-monitor program (null: beside this program, or $NACELLE_MONITOR).</summary>
    public string? MonitorProgram { get; init; }

    /// <summary>Parent cgroup of pods that name none.</summary>
    public string DefaultCgroupParent { get; init; } = "/nacelle";

    public TimeSpan MonitorConnectTimeout { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>The runtime handlers pods may name, with what they can do on this node (null: the built-in handlers,
    /// with the kernel probed under <see cref="StateRoot"/> when a pod first needs to know).</summary>
    public RuntimeHandlers? Handlers { get; init; }

    public ILogger Logger { get; init; } = NullLogger.Instance;

    /// <summary>
    /// Failure injection for the recovery tests ($NACELLE_TEST_CRASH): "run-after-cni" kills the daemon once the pod's
    /// network is set up, before RunPodSandbox answers. Never set in production.
    /// </summary>
    public string? CrashPoint { get; init; }
}

/// <summary>
/// Pod sandboxes: RunPodSandbox's steps (store row, pod directory and files, /dev/shm, the monitor, pause-init,
/// namespace pins, CNI) each with its undo, run in reverse when a later step fails; Stop and Remove undo them on
/// purpose, idempotently, whatever is left of the pod (a dead monitor, a crash half way through RunPodSandbox, a node
/// reboot). The daemon is never the parent of pause-init: the pod's monitor is. Each ready pod's monitor and
/// pause-init are watched through pidfds until the pod is stopped: the death of either makes the pod NotReady at once
/// (<see cref="PodLost"/>).
/// </summary>
public sealed class PodManager(PodManagerOptions options, PodStore store, CniNetwork network) : IAsyncDisposable
{
    internal const string PauseId = MonitorProtocol.PauseInitId;

    private readonly NamespacePins _pins = new(Path.Combine(options.StateRoot, "ns"));
    private readonly PodFiles _files = new();

    /// <summary>Where removed pod directories and container bundles wait for their deletion in the background; what a
    /// previous run left there is deleted by <see cref="RecoverAsync"/>.</summary>
    public Trash Trash { get; } = new(Path.Combine(options.StateRoot, "trash"), options.Logger);
    private readonly Dictionary<string, MonitorClient> _clients = new(StringComparer.Ordinal);
    private readonly Dictionary<string, WatchedProcess> _monitors = new(StringComparer.Ordinal);

    /// <summary>Pods this daemon stopped completely (network torn down, every process killed, NotReady recorded):
    /// RemovePodSandbox after StopPodSandbox, as kubelet calls them, does not stop them again. Kept in memory only: after
    /// a restart a remove stops the pod again, which is idempotent.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> _stopped = new(StringComparer.Ordinal);
    private readonly Dictionary<string, CancellationTokenSource> _watches = new(StringComparer.Ordinal);
    private readonly KeyedGate _podGates = new();
    private readonly Lock _gate = new();
    private readonly ILogger _log = options.Logger;
    private readonly Lazy<CgroupManager> _cgroups = new(() => CgroupManager.Detect(options.DefaultCgroupParent));
    private readonly CancellationTokenSource _disposed = new();

    private RuntimeHandlers? _handlers = options.Handlers;

    public PodStore Store => store;

    /// <summary>The handlers pods may name (probing the kernel once when the options gave none).</summary>
    public async Task<RuntimeHandlers> HandlersAsync(CancellationToken cancellationToken = default) =>
        _handlers ??= RuntimeHandlers.BuiltIn(await KernelFeatures.ProbeAsync(options.StateRoot, cancellationToken: cancellationToken).ConfigureAwait(false));

    /// <summary>
    /// Raised when a ready pod's monitor or pause-init dies (or is found dead at daemon start): the pod is NotReady, and
    /// when the monitor is gone (<see cref="PodLoss.MonitorGone"/>), every process left in the pod's cgroups has been killed.
    /// </summary>
    public event Action<PodLoss>? PodLost;

    /// <summary>Raised when RunPodSandbox has made a pod ready (its monitor answers), with the pod's id.</summary>
    public event Action<string>? PodReady;

    public string PodDirectory(string id) => Path.Combine(options.StateRoot, "pods", id);

    /// <summary>Kept short (unix socket paths are limited to 107 bytes): m/&lt;first 24 hex digits of the id&gt;.sock.</summary>
    public string MonitorSocket(string id) => Path.Combine(options.StateRoot, "m", id[..24] + ".sock");

    /// <summary>Runs a pod sandbox; returns its id. On failure nothing of it remains.</summary>
    public async Task<string> RunAsync(PodSandboxRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        request.Validate(systemdDriver: CgroupNames.IsSystemd(options.DefaultCgroupParent));
        var handler = (await HandlersAsync(cancellationToken).ConfigureAwait(false)).Resolve(request.RuntimeHandler);
        if (handler.Unavailable is { } unavailable)
        {
            throw NacelleException.FailedPrecondition(unavailable);
        }
        var userNamespace = request.NamespaceOptions.OwnUserNamespace;
        if (userNamespace is not null && !handler.Features.UserNamespaces)
        {
            throw NacelleException.FailedPrecondition(
                $"config.linux.security_context.namespace_options.userns_options: runtime handler \"{handler.Name}\" cannot run pods in a " +
                $"user namespace of their own on this node: {handler.Features.UserNamespacesMissing}");
        }

        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        var hostNetwork = request.NamespaceOptions.Network == PodNamespaceMode.Node;
        // No hostname asked for: the node's (as containerd does); the pod's name may not even be a valid hostname.
        var hostname = request.Hostname is { Length: > 0 } h ? h : hostNetwork ? null : _files.ResolveHostname(null);
        // kubelet names the pod's cgroup; without one the pod gets its own under the default parent (removed with it).
        var cgroupParent = request.CgroupParent is { Length: > 0 } parent ? parent : OwnCgroup(id);
        var undo = new UndoStack();
        try
        {
            // Incomplete until the end: a daemon killed half way leaves a row the next one recognises and tears down.
            store.AddPod(new PodRecord
            {
                Id = id, Name = request.Name, Namespace = request.Namespace, Uid = request.Uid, Attempt = request.Attempt,
                State = PodState.NotReady, CreatedAt = UnixTime.Now(), Labels = request.Labels,
                Annotations = request.Annotations, RuntimeHandler = request.RuntimeHandler, Hostname = hostname ?? "",
                LogDirectory = request.LogDirectory, CgroupParent = cgroupParent, NamespaceOptions = request.NamespaceOptions,
                Privileged = request.Privileged, Config = request.Config, Complete = false,
            });
            undo.Push("pod record", () => store.DeletePod(id));
            // The monitor creates the pod's cgroups (pause-init's, the containers') under this parent.
            undo.Push("pod cgroups", () => RemovePodCgroupsAsync(id, cgroupParent, CancellationToken.None));

            // Files first: a bad DNS config or hostname is refused before any process exists.
            var dir = PodDirectory(id);
            Directory.CreateDirectory(dir);
            undo.Push("pod directory", () => Directory.Delete(dir, recursive: true));
            _files.Write(dir, new PodFilesRequest(request.Dns, hostname, [], hostNetwork));
            if (request.NamespaceOptions.Ipc != PodNamespaceMode.Node)
            {
                var shm = PodFiles.CreateShmDirectory(dir);
                Mounts.MountTmpfs(shm, "mode=1777,size=65536k");
                undo.Push("/dev/shm", () => Mounts.Unmount(shm));
            }

            // The pod network first: a namespace with no process in it, which CNI sets up while the monitor and pause-init
            // start (CNI needs only its path; a plugin run is mostly process start-up). Both are joined before the pod is
            // ready; a failure of either waits for the other before the undo runs. Not for a pod with a user namespace of
            // its own (its network namespace must belong to it) or with net sysctls (only a namespace pause-init creates
            // takes them: the spawn refuses them in a joined one): pause-init creates those, and CNI runs after it.
            Task<PodNetworkResult>? networkSetUp = null;
            string? netns = null;
            if (!hostNetwork && userNamespace is null && !request.Sysctls.Keys.Any(k => SpecValidator.SysctlNamespace(k) == "network"))
            {
                netns = _pins.PinNewNetwork(id);
                undo.Push("network namespace", () => _pins.Unpin(id, ["net"]));
                networkSetUp = SetUpNetworkAsync(id, request, netns, undo, cancellationToken);
            }

            MonitorClient client;
            WatchedProcess monitor;
            MonitorContainer pause;
            try
            {
                var monitorOptions = new MonitorOptions
                {
                    PodId = id, Directory = Path.Combine(dir, "monitor"), CgroupParent = cgroupParent, SocketPath = MonitorSocket(id),
                };
                monitor = MonitorLauncher.Launch(monitorOptions, options.MonitorProgram);
                client = new MonitorClient(monitorOptions.SocketPath);
                undo.Push("monitor", () => ShutdownMonitorAsync(id, client, monitor));
                await client.ConnectAsync(options.MonitorConnectTimeout, cancellationToken).ConfigureAwait(false);
                store.UpdatePod(id, p => p with { MonitorPid = monitor.Pid, MonitorStartTime = ProcessIdentity.StartTime(monitor.Pid) ?? 0 });

                var root = PauseSpec.PrepareRoot(Path.Combine(options.StateRoot, "pause-root"));
                var namespaces = new PodNamespaces(hostNetwork, request.NamespaceOptions.Pid == PodNamespaceMode.Node,
                    request.NamespaceOptions.Ipc == PodNamespaceMode.Node, request.NamespaceOptions.Pid == PodNamespaceMode.Pod, userNamespace,
                    netns);
                var spec = PauseSpec.Create(root, namespaces, hostname, request.Sysctls, PauseCgroup(cgroupParent, id));
                pause = (await client.SendAsync(new MonitorRequest
                {
                    Op = MonitorProtocol.Create, ContainerId = PauseId, SpecJson = RuntimeSpecFile.Serialize(spec), Bundle = dir,
                }, cancellationToken).ConfigureAwait(false)).Container!;
                await client.SendAsync(new MonitorRequest { Op = MonitorProtocol.Start, ContainerId = PauseId }, cancellationToken).ConfigureAwait(false);

                var kinds = new List<string>();
                if (!hostNetwork) { kinds.AddRange(netns is null ? ["net", "uts"] : ["uts"]); }
                if (!namespaces.HostIpc) { kinds.Add("ipc"); }
                if (namespaces.SharedPid && !namespaces.HostPid) { kinds.Add("pid"); }
                if (userNamespace is not null) { kinds.Add("user"); }
                var pinned = _pins.Pin(id, pause.Pid, kinds);
                undo.Push("namespace pins", () => _pins.Unpin(id, kinds));
                netns ??= pinned.GetValueOrDefault("net");
            }
            catch (Exception) when (networkSetUp is not null)
            {
                // CNI ends before its undo (a DEL racing the ADD) runs; its own failure is not the one to report.
                await Task.WhenAny(networkSetUp).ConfigureAwait(false);
                _ = networkSetUp.Exception;
                throw;
            }

            IReadOnlyList<string> ips = [];
            if (!hostNetwork)
            {
                // Joined here; otherwise set up only now, in the namespace pause-init made.
                var result = await (networkSetUp ?? SetUpNetworkAsync(id, request, netns ?? "", undo, cancellationToken)).ConfigureAwait(false);
                CrashIfAsked("run-after-cni");
                ips = result.IpStrings;
                _files.Write(dir, new PodFilesRequest(request.Dns, hostname, ips, hostNetwork));
            }

            store.UpdatePod(id, p => p with { State = PodState.Ready, Ips = ips, PauseInitPid = pause.Pid, Complete = true });
            lock (_gate)
            {
                _clients[id] = client;
                _monitors[id] = monitor;
            }

            Watch(id, monitor, pause.Pid);
            PodReady?.Invoke(id);
            return id;
        }
        catch (Exception e)
        {
            PodLog.RunFailed(_log, id, e.Message);
            await undo.RunAsync(TimeSpan.FromSeconds(60), (what, error) => PodLog.UndoFailed(_log, id, what, error.Message)).ConfigureAwait(false);

            throw;
        }
    }

    /// <summary>CNI ADD of the pod's network in <paramref name="netns"/>, with its undo. The namespace's path is recorded
    /// first, and on disk: whatever happens from here on, Stop and Remove know which netns to detach, and the address the
    /// plugin takes outlives a reboot, so the record must too (recovery releases it).</summary>
    private async Task<PodNetworkResult> SetUpNetworkAsync(string id, PodSandboxRequest request, string netns, UndoStack undo,
        CancellationToken cancellationToken)
    {
        store.UpdatePod(id, p => p with { NetnsPath = netns });
        var networkRequest = NetworkRequest(id, request.Name, request.Namespace, request.Uid, netns, request.PortMappings, request.Dns, request.Annotations);
        undo.Push("network", () => network.TearDownPodAsync(networkRequest, CancellationToken.None));
        await Task.Yield(); // the rest (an fsync, the plugins) runs beside the caller
        store.SyncToDisk();
        return await network.SetUpPodAsync(networkRequest, cancellationToken).ConfigureAwait(false);
    }

    private void CrashIfAsked(string point)
    {
        if (options.CrashPoint == point)
        {
            Signals.Send(Environment.ProcessId, Signals.SIGKILL);
            Thread.Sleep(Timeout.Infinite);
        }
    }

    /// <summary>
    /// Holds the pod's gate until disposed: StopPodSandbox, RemovePodSandbox and CreateContainer of one pod run one at a
    /// time (each of the first two stops containers, tears the network down, closes the monitor connection, unpins
    /// namespaces and removes the pod's cgroups, which two at once would do half each, and which would pull a create's
    /// cgroup and rootfs from under it). The caller looks the pod up again once it holds the gate: it may be gone by then.
    /// </summary>
    public Task<IAsyncDisposable> ExclusiveAsync(string podId, CancellationToken cancellationToken = default) =>
        _podGates.EnterAsync(podId, cancellationToken);

    /// <summary>
    /// Stops a pod: its watch ends (a stop is not a loss), its network is torn down (from the CNI cache, or rebuilt from
    /// the pod's record when a crash left no cache entry) and every process of the pod is killed — through its monitor,
    /// or through the pod's cgroups when the monitor is gone. The record stays (NotReady). Idempotent; an unknown pod is
    /// fine (the CRI contract).
    /// </summary>
    public async Task StopAsync(string idOrPrefix, CancellationToken cancellationToken = default)
    {
        if (Find(idOrPrefix) is not { } pod)
        {
            return;
        }

        await StopPodAsync(pod, cancellationToken).ConfigureAwait(false);
    }

    private async Task StopPodAsync(PodRecord pod, CancellationToken cancellationToken)
    {
        // The stop kills pause-init (and may end the monitor) on purpose: the watch ends first, or it would take those
        // deaths for a lost pod while the record still says Ready, and race this stop and the remove after it.
        StopWatching(pod.Id);
        if (pod.NamespaceOptions.Network != PodNamespaceMode.Node)
        {
            await network.TearDownPodAsync(NetworkRequest(pod.Id, pod.Name, pod.Namespace, pod.Uid, NetnsOf(pod), [], null, pod.Annotations),
                cancellationToken).ConfigureAwait(false);
        }

        var killed = false;
        if (await ClientAsync(pod, cancellationToken).ConfigureAwait(false) is { } client)
        {
            try
            {
                var containers = (await client.SendAsync(new MonitorRequest { Op = MonitorProtocol.List }, cancellationToken).ConfigureAwait(false)).Containers!;
                foreach (var container in containers.Where(c => c.Status is "Running" or "Created" or "Paused"))
                {
                    await client.SendAsync(new MonitorRequest { Op = MonitorProtocol.Kill, ContainerId = container.Id, Signal = 9, All = true },
                        cancellationToken).ConfigureAwait(false);
                }

                killed = true;
            }
            catch (NacelleException e) when (e.Kind is ErrorKind.Unavailable or ErrorKind.FailedPrecondition)
            {
                // the monitor or the process is already gone
            }
        }

        if (!killed)
        {
            // No monitor to ask: whatever still runs in the pod's cgroups is an orphan of it.
            await KillPodProcessesAsync(pod, cancellationToken).ConfigureAwait(false);
        }

        store.UpdatePod(pod.Id, p => p with { State = PodState.NotReady });
        _stopped[pod.Id] = 0;
    }

    /// <summary>Removes a pod: stops it, shuts its monitor down (which deletes its containers; a monitor that does not
    /// answer is killed), unpins its namespaces, unmounts its /dev/shm, removes the cgroups made for it (depth first)
    /// and deletes its directory and record. Idempotent.</summary>
    public async Task RemoveAsync(string idOrPrefix, CancellationToken cancellationToken = default)
    {
        if (Find(idOrPrefix) is not { } pod)
        {
            return;
        }

        await RemovePodAsync(pod, cancellationToken).ConfigureAwait(false);
    }

    private async Task RemovePodAsync(PodRecord pod, CancellationToken cancellationToken)
    {
        if (!_stopped.ContainsKey(pod.Id) || pod.State != PodState.NotReady)
        {
            await StopPodAsync(pod, cancellationToken).ConfigureAwait(false);
        }

        StopWatching(pod.Id);
        WatchedProcess? monitor;
        lock (_gate)
        {
            _monitors.Remove(pod.Id, out monitor);
        }

        monitor ??= OpenMonitor(pod);
        var client = await ClientAsync(pod, cancellationToken).ConfigureAwait(false) ?? new MonitorClient(MonitorSocket(pod.Id));
        await ShutdownMonitorAsync(pod.Id, client, monitor).ConfigureAwait(false);

        _pins.Unpin(pod.Id);
        var dir = PodDirectory(pod.Id);
        var shm = Path.Combine(dir, "shm");
        if (Directory.Exists(shm))
        {
            Mounts.Unmount(shm);
        }

        _ = Trash.Discard(dir); // deleted in the background

        if (File.Exists(MonitorSocket(pod.Id)))
        {
            File.Delete(MonitorSocket(pod.Id)); // a killed monitor leaves it
        }
        await RemovePodCgroupsAsync(pod.Id, pod.CgroupParent, cancellationToken).ConfigureAwait(false);
        store.DeletePod(pod.Id);
        _stopped.TryRemove(pod.Id, out _);
    }

    /// <summary>
    /// Kills and removes, deepest first, the cgroups made for the pod: its own parent cgroup when it has one, otherwise
    /// (kubelet named the parent, and kubelet removes it) pause-init's and the containers' below it. A monitor normally
    /// removes its containers' cgroups; this is for a monitor that died or a create cut short.
    /// </summary>
    private async Task RemovePodCgroupsAsync(string podId, string cgroupParent, CancellationToken cancellationToken)
    {
        var systemd = CgroupNames.IsSystemd(cgroupParent);
        foreach (var path in CgroupsMadeFor(podId, cgroupParent))
        {
            if (systemd)
            {
                // The systemd driver: the unit first (the pod's own slice with every scope in it, or one scope), so
                // systemd forgets it; then what is left of the directories in the hierarchies systemd does not manage.
                await _cgroups.Value.StopUnitAsync(Path.GetFileName(path), cancellationToken).ConfigureAwait(false);
            }

            await _cgroups.Value.KillTreeAsync(path, cancellationToken).ConfigureAwait(false);
            await _cgroups.Value.RemoveTreeAsync(path, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// After a daemon start under the systemd driver (once pods and containers are recovered): every unit of nacelle's
    /// naming that belongs to no pod or container in the store (pause-init's scope, a container's scope, a pod's own
    /// slice), left by a daemon killed half way or a store that was lost, is killed and stopped. Units of other names are
    /// never touched.
    /// </summary>
    public async Task RemoveUnknownUnitsAsync(CancellationToken cancellationToken = default)
    {
        var pods = store.ListPods().Select(p => p.Id).ToList();
        bool PodKnown(string prefix) => pods.Any(id => id.StartsWith(prefix, StringComparison.Ordinal));
        IReadOnlyList<string> units;
        try
        {
            units = await _cgroups.Value.ListUnitsAsync(CgroupNames.UnitPatterns, cancellationToken).ConfigureAwait(false);
        }
        catch (NacelleException e)
        {
            PodLog.UnitSweepFailed(_log, e.Message);
            return;
        }

        foreach (var unit in units)
        {
            var known = CgroupNames.OwnerOf(unit) switch
            {
                (CgroupOwner.Pod, var prefix) => PodKnown(prefix),
                (CgroupOwner.Container, var id) => store.TryGetContainer(id) is not null,
                _ => true,
            };
            if (known)
            {
                continue;
            }

            PodLog.UnknownUnitRemoved(_log, unit);
            try
            {
                await _cgroups.Value.StopUnitAsync(unit, cancellationToken).ConfigureAwait(false);
            }
            catch (NacelleException e)
            {
                PodLog.RecoverFailed(_log, unit, e.Message);
            }
        }
    }

    /// <summary>Kills every process in the cgroups made for the pod (its monitor is gone: they are nobody's now).</summary>
    private async Task KillPodProcessesAsync(PodRecord pod, CancellationToken cancellationToken)
    {
        foreach (var path in CgroupsMadeFor(pod.Id, pod.CgroupParent))
        {
            await _cgroups.Value.KillTreeAsync(path, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The cgroups nacelle made for a pod: its own parent when it has one; under a parent the caller named, only
    /// pause-init's and those of containers that are not another pod's. Never the parent's other children: the parent is
    /// not ours to empty, and other pods may share it (crictl users often name one parent for several pods).</summary>
    private IReadOnlyList<string> CgroupsMadeFor(string podId, string cgroupParent)
    {
        if (cgroupParent == OwnCgroup(podId))
        {
            return [CgroupNames.PathOf(cgroupParent)];
        }

        // A container's cgroup is named by its id; one no row names any more (its row went first) is this pod's leftover too.
        var others = store.ListContainers().Where(c => c.PodId != podId).Select(c => c.Id).ToHashSet(StringComparer.Ordinal);
        return [.. _cgroups.Value.ChildPaths(cgroupParent)
            .Where(path => path == CgroupNames.PathOf(PauseCgroup(cgroupParent, podId))
                || (IsContainerCgroup(path) && !others.Contains(CgroupNames.ContainerIdOf(Path.GetFileName(path)))))];
    }

    /// <summary>A container's cgroup is named by its id (64 hex digits) under the pod's parent (the systemd driver's
    /// scope: nacelle-&lt;id&gt;.scope).</summary>
    private static bool IsContainerCgroup(string path) => PodStore.IsValidId(CgroupNames.ContainerIdOf(Path.GetFileName(path)));

    private static string PauseCgroup(string cgroupParent, string podId) => CgroupNames.Pause(cgroupParent, podId[..12]);

    /// <summary>
    /// After a daemon start: a pod a killed daemon left half made is torn down (network, processes, cgroups, files) and
    /// its record and name released; a ready pod whose monitor or pause-init is gone (a node reboot, a killed monitor)
    /// is marked lost; every other ready pod is watched again.
    /// </summary>
    public async Task RecoverAsync(CancellationToken cancellationToken = default)
    {
        Trash.DeleteLeftovers();
        foreach (var pod in store.ListPods())
        {
            try
            {
                if (!pod.Complete)
                {
                    PodLog.RunAbandoned(_log, pod.Id);
                    await RemovePodAsync(pod, cancellationToken).ConfigureAwait(false);
                }
                else if (pod.State == PodState.Ready)
                {
                    if (Liveness(pod) is { } why)
                    {
                        await MarkLostAsync(pod.Id, why).ConfigureAwait(false);
                    }
                    else if (OpenMonitor(pod) is { } monitor && pod.PauseInitPid is { } pause)
                    {
                        Watch(pod.Id, monitor, pause);
                    }
                }
            }
            catch (NacelleException e)
            {
                PodLog.RecoverFailed(_log, pod.Id, e.Message);
            }
        }
    }

    /// <summary>Why a ready pod cannot be running any more (its monitor or pause-init is gone), or null.</summary>
    private static string? Liveness(PodRecord pod)
    {
        if (!MonitorAlive(pod))
        {
            return $"the pod's monitor (pid {pod.MonitorPid?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "unknown"}) is gone";
        }

        return pod.PauseInitPid is { } pause && pod.MonitorPid is { } monitor && ProcessIdentity.IsRunningChildOf(pause, monitor)
            ? null
            : "the pod's pause-init (its namespace holder) is gone";
    }

    /// <summary>Whether the pod's recorded monitor still runs (pid and start time match): a dead one may have left its socket file.</summary>
    public static bool MonitorAlive(PodRecord pod) =>
        pod.MonitorPid is { } pid && pod.MonitorStartTime != 0 && ProcessIdentity.IsRunning(pid, pod.MonitorStartTime);

    /// <summary>The pod's monitor as a watched process, when the recorded one still runs (its start time tells a reused pid apart).</summary>
    private static WatchedProcess? OpenMonitor(PodRecord pod)
    {
        if (pod.MonitorPid is not { } pid)
        {
            return null;
        }

        try
        {
            var process = WatchedProcess.Open(pid);
            // Checked after the pidfd is open: from here on it refers to this process whatever happens to the pid.
            if (ProcessIdentity.StartTime(pid) == pod.MonitorStartTime)
            {
                return process;
            }

            process.Dispose();
        }
        catch (NacelleException e) when (e.Kind == ErrorKind.NotFound)
        {
            // gone
        }

        return null;
    }

    /// <summary>Watches a ready pod's monitor and pause-init; the first to die makes the pod lost.</summary>
    private void Watch(string podId, WatchedProcess monitor, int pausePid)
    {
        var stop = CancellationTokenSource.CreateLinkedTokenSource(_disposed.Token);
        lock (_gate)
        {
            if (_watches.Remove(podId, out var previous))
            {
                previous.Cancel();
                previous.Dispose();
            }

            _watches[podId] = stop;
        }

        _ = WatchAsync(podId, monitor, pausePid, stop.Token);
    }

    private async Task WatchAsync(string podId, WatchedProcess monitor, int pausePid, CancellationToken cancellationToken)
    {
        WatchedProcess? pause = null;
        try
        {
            try
            {
                pause = WatchedProcess.Open(pausePid);
            }
            catch (NacelleException e) when (e.Kind == ErrorKind.NotFound)
            {
                // already gone: the pod is lost right away
            }

            var monitorExit = monitor.WaitForExitAsync(cancellationToken);
            var first = pause is null ? monitorExit : await Task.WhenAny(monitorExit, pause.WaitForExitAsync(cancellationToken)).ConfigureAwait(false);
            await first.ConfigureAwait(false); // cancellation surfaces here
            var why = monitor.HasExited
                ? $"the pod's monitor (pid {monitor.Pid}) died"
                : $"the pod's pause-init (pid {pausePid}) died";
            await MarkLostAsync(podId, why).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // stopped, removed, or the daemon is stopping
        }
        catch (Exception e) when (e is NacelleException or IOException)
        {
            PodLog.WatchFailed(_log, podId, e.Message);
        }
        finally
        {
            pause?.Dispose();
        }
    }

    private void StopWatching(string podId)
    {
        lock (_gate)
        {
            if (_watches.Remove(podId, out var watch))
            {
                watch.Cancel();
                watch.Dispose();
            }
        }
    }

    /// <summary>
    /// A ready pod lost its monitor or pause-init: it is NotReady from now on. Without a monitor nobody holds its
    /// processes' pipes, reaps them or records their exits, so whatever is left in its cgroups is killed. Stop and
    /// Remove keep working (they need no monitor); kubelet replaces the pod.
    /// </summary>
    private async Task MarkLostAsync(string podId, string why)
    {
        if (store.TryGetPod(podId) is not { State: PodState.Ready } pod)
        {
            return; // being stopped or removed on purpose
        }

        PodLog.Lost(_log, podId, why);
        store.UpdatePod(podId, p => p with { State = PodState.NotReady });
        if (!MonitorAlive(pod))
        {
            MonitorClient? client;
            lock (_gate)
            {
                _clients.Remove(podId, out client);
                _monitors.Remove(podId, out var monitor);
                monitor?.Dispose();
            }

            if (client is not null)
            {
                await client.DisposeAsync().ConfigureAwait(false);
            }

            try
            {
                await KillPodProcessesAsync(pod, CancellationToken.None).ConfigureAwait(false);
            }
            catch (NacelleException e)
            {
                PodLog.WatchFailed(_log, podId, e.Message);
            }
        }

        PodLost?.Invoke(new PodLoss(podId, why, !MonitorAlive(pod)));
    }

    /// <summary>
    /// The pod's usage: cpu, memory and process count of its cgroup (every process of the pod is under it), network
    /// counters of its network namespace (read through pause-init's /proc/PID/net/dev). Null parts are unknown.
    /// </summary>
    public PodUsage Usage(PodRecord pod)
    {
        ArgumentNullException.ThrowIfNull(pod);
        CgroupUsage? cgroup = null;
        try
        {
            cgroup = _cgroups.Value.Open(pod.CgroupParent).Usage(withProcessCount: true);
        }
        catch (NacelleException)
        {
            // the cgroup is gone (stopped pod) or unreadable: no numbers rather than wrong ones
        }

        IReadOnlyList<NetworkCounters> interfaces = [];
        if (pod.PauseInitPid is { } pid && pod.State == PodState.Ready && pod.NamespaceOptions.Network != PodNamespaceMode.Node)
        {
            try
            {
                if (PseudoFiles.TryRead($"/proc/{pid}/net/dev", out var dev))
                {
                    interfaces = NetworkCounters.Parse(dev).Where(i => i.Name != "lo").ToList();
                }
            }
            catch (IOException)
            {
                // pause-init is gone
            }
        }

        return new PodUsage(DateTimeOffset.UtcNow, cgroup, interfaces);
    }

    /// <summary>The pod's network namespace for CNI DEL: recorded, or where its pin would be; "" when it is gone (the
    /// plugins then release what they hold by container id).</summary>
    private string NetnsOf(PodRecord pod)
    {
        var path = pod.NetnsPath.Length > 0 ? pod.NetnsPath : _pins.PathOf(pod.Id, "net");
        return File.Exists(path) ? path : "";
    }

    private string OwnCgroup(string id) => CgroupNames.OwnPod(options.DefaultCgroupParent, id[..12]);

    /// <summary>The pod an id or unique prefix names; NotFound when there is none (or its RunPodSandbox has not finished).</summary>
    public PodRecord Get(string idOrPrefix) =>
        store.GetPod(store.ResolvePodId(idOrPrefix)) is { Complete: true } pod
            ? pod
            : throw NacelleException.NotFound($"pod sandbox {idOrPrefix} not found (its creation has not finished)");

    /// <summary>The pod an id or unique prefix names, or null when there is none.</summary>
    public PodRecord? Find(string idOrPrefix)
    {
        try
        {
            return Get(idOrPrefix);
        }
        catch (NacelleException e) when (e.Kind == ErrorKind.NotFound)
        {
            return null;
        }
    }

    /// <summary>The pods matching <paramref name="filter"/>, oldest first; a pod still being created is not listed.</summary>
    public IReadOnlyList<PodRecord> List(PodRecordFilter? filter = null) => [.. store.ListPods(filter).Where(p => p.Complete)];

    /// <summary>The pinned namespace file of <paramref name="kind"/> ("net", "ipc", "uts", "pid", "user") of the pod, or
    /// null when the pod does not have its own (host namespace, pid not shared, the node's user namespace).</summary>
    public string? NamespacePath(string podId, string kind)
    {
        var path = _pins.PathOf(podId, kind);
        return File.Exists(path) ? path : null;
    }

    /// <summary>The pod's monitor connection (connecting again after a daemon restart); null when the monitor is gone.</summary>
    public async Task<MonitorClient?> ClientAsync(PodRecord pod, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(pod);
        lock (_gate)
        {
            if (_clients.TryGetValue(pod.Id, out var known))
            {
                return known;
            }
        }

        // A dead monitor's socket file may still be there (kill -9): its pid and start time tell.
        var socket = MonitorSocket(pod.Id);
        if (!File.Exists(socket) || !MonitorAlive(pod))
        {
            return null;
        }

        var client = new MonitorClient(socket);
        try
        {
            await client.ConnectAsync(TimeSpan.FromSeconds(2), cancellationToken).ConfigureAwait(false);
        }
        catch (NacelleException e) when (e.Kind == ErrorKind.Unavailable)
        {
            await client.DisposeAsync().ConfigureAwait(false);
            return null;
        }

        lock (_gate)
        {
            _clients[pod.Id] = client;
        }

        return client;
    }

    /// <summary>Asks the monitor to delete its containers and exit; a monitor that does not answer (stopped, wedged) or
    /// does not exit in time is killed, so Remove never waits on it forever.</summary>
    private async Task ShutdownMonitorAsync(string id, MonitorClient client, WatchedProcess? monitor)
    {
        var answered = false;
        try
        {
            await client.SendAsync(new MonitorRequest { Op = MonitorProtocol.Shutdown }, CancellationToken.None)
                .WaitAsync(MonitorShutdownTimeout).ConfigureAwait(false);
            answered = true;
        }
        catch (NacelleException e) when (e.Kind is ErrorKind.Unavailable or ErrorKind.FailedPrecondition)
        {
            // already gone (or its connection already closed)
        }
        catch (TimeoutException)
        {
            PodLog.MonitorNotAnswering(_log, id, (int)MonitorShutdownTimeout.TotalSeconds);
        }

        await client.DisposeAsync().ConfigureAwait(false);
        lock (_gate)
        {
            _clients.Remove(id);
        }

        if (monitor is not null)
        {
            try
            {
                await monitor.WaitForExitAsync(CancellationToken.None).WaitAsync(answered ? MonitorShutdownTimeout : TimeSpan.Zero).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                monitor.Signal(Signals.SIGKILL);
                await monitor.WaitForExitAsync(CancellationToken.None).WaitAsync(MonitorShutdownTimeout).ConfigureAwait(false);
            }

            monitor.Dispose();
        }
    }

    private static readonly TimeSpan MonitorShutdownTimeout = TimeSpan.FromSeconds(30);

    private static PodNetworkRequest NetworkRequest(string id, string name, string ns, string uid, string netns,
        IReadOnlyList<CniPortMapping> ports, PodDnsConfig? dns, IReadOnlyDictionary<string, string> annotations) => new()
    {
        PodId = id, NetnsPath = netns, PodName = name, PodNamespace = ns, PodUid = uid, PortMappings = ports,
        Bandwidth = CniBandwidth.FromAnnotations(annotations), Annotations = annotations,
        Dns = dns is null ? null : new CniDns(dns.Servers, dns.Searches, dns.Options),
    };

    public async ValueTask DisposeAsync()
    {
        await _disposed.CancelAsync().ConfigureAwait(false);
        List<MonitorClient> clients;
        lock (_gate)
        {
            clients = [.. _clients.Values];
            _clients.Clear();
            foreach (var watch in _watches.Values)
            {
                watch.Dispose();
            }

            _watches.Clear();
        }

        foreach (var client in clients)
        {
            await client.DisposeAsync().ConfigureAwait(false);
        }

        // Removed directories being deleted: given a moment; what is left stays in the trash for the next start.
        await Task.WhenAny(Trash.Emptied, Task.Delay(TimeSpan.FromSeconds(10))).ConfigureAwait(false);
    }
}

internal static partial class PodLog
{
    [LoggerMessage(5100, LogLevel.Warning, "Pod {PodId}: RunPodSandbox failed, undoing: {Reason}")]
    public static partial void RunFailed(ILogger logger, string podId, string reason);

    [LoggerMessage(5101, LogLevel.Warning, "Pod {PodId}: undo of {Step} failed: {Reason}")]
    public static partial void UndoFailed(ILogger logger, string podId, string step, string reason);

    [LoggerMessage(5102, LogLevel.Warning, "Pod {PodId}: a previous daemon stopped half way through RunPodSandbox; tearing down what it left")]
    public static partial void RunAbandoned(ILogger logger, string podId);

    [LoggerMessage(5103, LogLevel.Warning, "Pod {PodId}: recovery failed: {Reason}")]
    public static partial void RecoverFailed(ILogger logger, string podId, string reason);

    [LoggerMessage(5104, LogLevel.Warning, "Pod {PodId} is lost and now NotReady: {Reason}")]
    public static partial void Lost(ILogger logger, string podId, string reason);

    [LoggerMessage(5105, LogLevel.Warning, "Pod {PodId}: watching its monitor and pause-init failed: {Reason}")]
    public static partial void WatchFailed(ILogger logger, string podId, string reason);

    [LoggerMessage(5106, LogLevel.Warning, "Pod {PodId}: the monitor did not answer the shutdown within {Seconds} s; killing it")]
    public static partial void MonitorNotAnswering(ILogger logger, string podId, int seconds);

    [LoggerMessage(5107, LogLevel.Warning, "systemd unit {Unit} belongs to no pod or container this daemon knows: killing and stopping it")]
    public static partial void UnknownUnitRemoved(ILogger logger, string unit);

    [LoggerMessage(5108, LogLevel.Warning, "Listing the systemd units of the systemd cgroup driver failed; units of pods this daemon no longer knows stay: {Reason}")]
    public static partial void UnitSweepFailed(ILogger logger, string reason);
}
