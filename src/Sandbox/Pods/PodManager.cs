using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Nacelle.Common.PodMonitor;
using Nacelle.Common;
using Nacelle.ContainerCore.Cgroups;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Processes;
using Nacelle.ContainerCore.Runtime;
using Nacelle.ContainerCore.Spec;
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
    public string ConfigJson { get; init; } = "";
}

/// <summary>A pod's usage at <paramref name="At"/>: its cgroup's accounting and its interfaces' counters.</summary>
public sealed record PodUsage(DateTimeOffset At, CgroupStats? Cgroup, IReadOnlyList<NetworkCounters> Interfaces);

/// <summary>One interface's counters from /proc/net/dev.</summary>
public sealed record NetworkCounters(string Name, ulong RxBytes, ulong RxErrors, ulong TxBytes, ulong TxErrors)
{
    /// <summary>Parses /proc/net/dev: two header lines, then "name: rx_bytes packets errs drop fifo frame compressed
    /// multicast tx_bytes packets errs ...".</summary>
    public static IReadOnlyList<NetworkCounters> Parse(string text)
    {
        var result = new List<NetworkCounters>();
        foreach (var line in text.Split('\n').Skip(2))
        {
            var colon = line.IndexOf(':');
            if (colon < 0)
            {
                continue;
            }

            var f = line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 11)
            {
                continue;
            }

            static ulong U(string s) => ulong.Parse(s, System.Globalization.CultureInfo.InvariantCulture);
            result.Add(new NetworkCounters(line[..colon].Trim(), U(f[0]), U(f[2]), U(f[8]), U(f[10])));
        }

        return result;
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

    public ILogger Logger { get; init; } = NullLogger.Instance;
}

/// <summary>
/// Pod sandboxes: RunPodSandbox's steps (store row, pod directory and files, /dev/shm, the monitor, pause-init,
/// namespace pins, CNI) each with its undo, run in reverse when a later step fails; Stop and Remove undo them on
/// purpose, idempotently. The daemon is never the parent of pause-init: the pod's monitor is.
/// </summary>
public sealed class PodManager(PodManagerOptions options, PodStore store, CniNetwork network) : IAsyncDisposable
{
    private const string PauseId = "pause";

    private readonly NamespacePins _pins = new(Path.Combine(options.StateRoot, "ns"));
    private readonly PodFiles _files = new();
    private readonly Dictionary<string, MonitorClient> _clients = new(StringComparer.Ordinal);
    private readonly Dictionary<string, WatchedProcess> _monitors = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly ILogger _log = options.Logger;
    private readonly Lazy<CgroupManager> _cgroups = new(() => CgroupManager.Detect(options.DefaultCgroupParent));

    public PodStore Store => store;

    public string PodDirectory(string id) => Path.Combine(options.StateRoot, "pods", id);

    /// <summary>Kept short (unix socket paths are limited to 107 bytes): m/&lt;first 24 hex digits of the id&gt;.sock.</summary>
    public string MonitorSocket(string id) => Path.Combine(options.StateRoot, "m", id[..24] + ".sock");

    /// <summary>Runs a pod sandbox; returns its id. On failure nothing of it remains.</summary>
    public async Task<string> RunAsync(PodSandboxRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        var hostNetwork = request.NamespaceOptions.Network == PodNamespaceMode.Node;
        // No hostname asked for: the node's (as containerd does); the pod's name may not even be a valid hostname.
        var hostname = request.Hostname is { Length: > 0 } h ? h : hostNetwork ? null : _files.ResolveHostname(null);
        // kubelet names the pod's cgroup; without one the pod gets its own under the default parent (removed with it).
        var cgroupParent = request.CgroupParent is { Length: > 0 } parent ? parent : OwnCgroup(id);
        var undo = new UndoStack();
        try
        {
            store.AddPod(new PodRecord
            {
                Id = id, Name = request.Name, Namespace = request.Namespace, Uid = request.Uid, Attempt = request.Attempt,
                State = PodState.NotReady, CreatedAt = UnixTime.Now(), Labels = request.Labels,
                Annotations = request.Annotations, RuntimeHandler = request.RuntimeHandler, Hostname = hostname ?? "",
                LogDirectory = request.LogDirectory, CgroupParent = cgroupParent, NamespaceOptions = request.NamespaceOptions,
                Privileged = request.Privileged, ConfigJson = request.ConfigJson,
            });
            undo.Push("pod record", () => store.DeletePod(id));

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

            var monitorOptions = new MonitorOptions
            {
                PodId = id, Directory = Path.Combine(dir, "monitor"), CgroupParent = cgroupParent, SocketPath = MonitorSocket(id),
            };
            var monitor = MonitorLauncher.Launch(monitorOptions, options.MonitorProgram);
            var client = new MonitorClient(monitorOptions.SocketPath);
            undo.Push("monitor", () => ShutdownMonitorAsync(id, client, monitor));
            await client.ConnectAsync(options.MonitorConnectTimeout, cancellationToken).ConfigureAwait(false);

            var root = PauseSpec.PrepareRoot(Path.Combine(options.StateRoot, "pause-root"));
            var namespaces = new PodNamespaces(hostNetwork, request.NamespaceOptions.Pid == PodNamespaceMode.Node,
                request.NamespaceOptions.Ipc == PodNamespaceMode.Node, request.NamespaceOptions.Pid == PodNamespaceMode.Pod);
            var spec = PauseSpec.Create(root, namespaces, hostname, request.Sysctls, $"{cgroupParent.TrimEnd('/')}/nacelle-pause-{id[..12]}");
            var pause = (await client.SendAsync(new MonitorRequest
            {
                Op = MonitorProtocol.Create, ContainerId = PauseId, SpecJson = RuntimeSpecFile.Serialize(spec), Bundle = dir,
            }, cancellationToken).ConfigureAwait(false)).Container!;
            await client.SendAsync(new MonitorRequest { Op = MonitorProtocol.Start, ContainerId = PauseId }, cancellationToken).ConfigureAwait(false);

            var kinds = new List<string>();
            if (!hostNetwork) { kinds.AddRange(["net", "uts"]); }
            if (!namespaces.HostIpc) { kinds.Add("ipc"); }
            if (namespaces.SharedPid && !namespaces.HostPid) { kinds.Add("pid"); }
            var pinned = _pins.Pin(id, pause.Pid, kinds);
            undo.Push("namespace pins", () => _pins.Unpin(id));

            IReadOnlyList<string> ips = [];
            var netns = pinned.GetValueOrDefault("net") ?? "";
            if (!hostNetwork)
            {
                var networkRequest = NetworkRequest(id, request.Name, request.Namespace, request.Uid, netns, request.PortMappings, request.Dns, request.Annotations);
                var result = await network.SetUpPodAsync(networkRequest, cancellationToken).ConfigureAwait(false);
                undo.Push("network", () => network.TearDownPodAsync(networkRequest, CancellationToken.None));
                ips = result.IpStrings;
                _files.Write(dir, new PodFilesRequest(request.Dns, hostname, ips, hostNetwork));
            }

            store.UpdatePod(id, p => p with
            {
                State = PodState.Ready, Ips = ips, NetnsPath = netns, MonitorPid = monitor.Pid,
                MonitorStartTime = ProcessIdentity.StartTime(monitor.Pid) ?? 0, PauseInitPid = pause.Pid,
            });
            lock (_gate)
            {
                _clients[id] = client;
                _monitors[id] = monitor;
            }

            return id;
        }
        catch (Exception e)
        {
            PodLog.RunFailed(_log, id, e.Message);
            await undo.RunAsync(TimeSpan.FromSeconds(60), (what, error) => PodLog.UndoFailed(_log, id, what, error.Message)).ConfigureAwait(false);

            throw;
        }
    }

    /// <summary>Stops a pod: its network is torn down and pause-init stopped; the record stays (NotReady). Idempotent;
    /// an unknown pod is fine (the CRI contract).</summary>
    public async Task StopAsync(string idOrPrefix, CancellationToken cancellationToken = default)
    {
        if (Find(idOrPrefix) is not { } pod)
        {
            return;
        }

        if (pod.NetnsPath.Length > 0 && pod.NamespaceOptions.Network != PodNamespaceMode.Node)
        {
            await network.TearDownPodAsync(NetworkRequest(pod.Id, pod.Name, pod.Namespace, pod.Uid, pod.NetnsPath, [], null, pod.Annotations),
                cancellationToken).ConfigureAwait(false);
        }

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
            }
            catch (NacelleException e) when (e.Kind is ErrorKind.Unavailable or ErrorKind.FailedPrecondition)
            {
                // the monitor or the process is already gone
            }
        }

        store.UpdatePod(pod.Id, p => p with { State = PodState.NotReady });
    }

    /// <summary>Removes a pod: stops it, shuts its monitor down (which deletes its containers), unpins its namespaces,
    /// unmounts its /dev/shm and deletes its directory and record. Idempotent.</summary>
    public async Task RemoveAsync(string idOrPrefix, CancellationToken cancellationToken = default)
    {
        if (Find(idOrPrefix) is not { } pod)
        {
            return;
        }

        await StopAsync(pod.Id, cancellationToken).ConfigureAwait(false);
        WatchedProcess? monitor;
        lock (_gate)
        {
            _monitors.Remove(pod.Id, out monitor);
        }

        if (await ClientAsync(pod, cancellationToken).ConfigureAwait(false) is { } client)
        {
            await ShutdownMonitorAsync(pod.Id, client, monitor).ConfigureAwait(false);
        }

        _pins.Unpin(pod.Id);
        var dir = PodDirectory(pod.Id);
        var shm = Path.Combine(dir, "shm");
        if (Directory.Exists(shm))
        {
            Mounts.Unmount(shm);
        }

        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }

        if (pod.CgroupParent == OwnCgroup(pod.Id))
        {
            await _cgroups.Value.Open(pod.CgroupParent).RemoveAsync(cancellationToken).ConfigureAwait(false);
        }

        store.DeletePod(pod.Id);
    }

    /// <summary>
    /// The pod's usage: cpu, memory and process count of its cgroup (every process of the pod is under it), network
    /// counters of its network namespace (read through pause-init's /proc/PID/net/dev). Null parts are unknown.
    /// </summary>
    public PodUsage Usage(PodRecord pod)
    {
        ArgumentNullException.ThrowIfNull(pod);
        CgroupStats? cgroup = null;
        try
        {
            cgroup = _cgroups.Value.Open(pod.CgroupParent).Stats();
        }
        catch (NacelleException)
        {
            // the cgroup is gone (stopped pod) or unreadable: no numbers rather than wrong ones
        }

        IReadOnlyList<NetworkCounters> interfaces = [];
        if (pod.PauseInitPid is { } pid && pod.State == PodState.Ready && pod.NamespaceOptions.Network != PodNamespaceMode.Node)
        {
            var dev = $"/proc/{pid}/net/dev";
            try
            {
                interfaces = NetworkCounters.Parse(File.ReadAllText(dev)).Where(i => i.Name != "lo").ToList();
            }
            catch (IOException)
            {
                // pause-init is gone
            }
        }

        return new PodUsage(DateTimeOffset.UtcNow, cgroup, interfaces);
    }

    private string OwnCgroup(string id) => $"{options.DefaultCgroupParent.TrimEnd('/')}/pod-{id[..12]}";

    public PodRecord Get(string idOrPrefix) => store.GetPod(store.ResolvePodId(idOrPrefix));

    /// <summary>The pod an id or unique prefix names, or null when there is none.</summary>
    public PodRecord? Find(string idOrPrefix)
    {
        try
        {
            return store.GetPod(store.ResolvePodId(idOrPrefix));
        }
        catch (NacelleException e) when (e.Kind == ErrorKind.NotFound)
        {
            return null;
        }
    }

    /// <summary>The pinned namespace file of <paramref name="kind"/> ("net", "ipc", "uts", "pid") of the pod, or null
    /// when the pod does not have its own (host namespace, or pid not shared).</summary>
    public string? NamespacePath(string podId, string kind)
    {
        var path = _pins.PathOf(podId, kind);
        return File.Exists(path) ? path : null;
    }

    /// <summary>The pod's monitor connection (connecting again after a daemon restart); null when the monitor is gone.</summary>
    public async Task<MonitorClient?> ClientAsync(PodRecord pod, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_clients.TryGetValue(pod.Id, out var known))
            {
                return known;
            }
        }

        var socket = MonitorSocket(pod.Id);
        if (!File.Exists(socket))
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

    private async Task ShutdownMonitorAsync(string id, MonitorClient client, WatchedProcess? monitor)
    {
        try
        {
            await client.SendAsync(new MonitorRequest { Op = MonitorProtocol.Shutdown }, CancellationToken.None).ConfigureAwait(false);
        }
        catch (NacelleException e) when (e.Kind == ErrorKind.Unavailable)
        {
            // already gone
        }

        await client.DisposeAsync().ConfigureAwait(false);
        lock (_gate)
        {
            _clients.Remove(id);
        }

        if (monitor is not null)
        {
            await monitor.WaitForExitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
            monitor.Dispose();
        }
    }

    private static PodNetworkRequest NetworkRequest(string id, string name, string ns, string uid, string netns,
        IReadOnlyList<CniPortMapping> ports, PodDnsConfig? dns, IReadOnlyDictionary<string, string> annotations) => new()
    {
        PodId = id, NetnsPath = netns, PodName = name, PodNamespace = ns, PodUid = uid, PortMappings = ports,
        Bandwidth = CniBandwidth.FromAnnotations(annotations), Annotations = annotations,
        Dns = dns is null ? null : new CniDns(dns.Servers, dns.Searches, dns.Options),
    };

    public async ValueTask DisposeAsync()
    {
        List<MonitorClient> clients;
        lock (_gate)
        {
            clients = [.. _clients.Values];
            _clients.Clear();
        }

        foreach (var client in clients)
        {
            await client.DisposeAsync().ConfigureAwait(false);
        }
    }
}

internal static partial class PodLog
{
    [LoggerMessage(5100, LogLevel.Warning, "Pod {PodId}: RunPodSandbox failed, undoing: {Reason}")]
    public static partial void RunFailed(ILogger logger, string podId, string reason);

    [LoggerMessage(5101, LogLevel.Warning, "Pod {PodId}: undo of {Step} failed: {Reason}")]
    public static partial void UndoFailed(ILogger logger, string podId, string step, string reason);
}
