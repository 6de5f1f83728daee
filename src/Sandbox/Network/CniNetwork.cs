using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Nacelle.Common;

namespace Nacelle.Sandbox.Network;

/// <summary>The pod network's readiness (for the CRI Status NetworkReady condition) and which network is in use.</summary>
/// <param name="Reason">A CamelCase reason when not ready (NetworkPluginNotReady), empty when ready.</param>
/// <param name="Message">What the network is, or why it is not ready (skipped files and missing plugins named).</param>
public sealed record CniNetworkStatus(
    bool Ready,
    string Reason,
    string Message,
    CniNetworkConfigList? Network,
    bool IsDefaultNetwork,
    IReadOnlyList<CniConfigSkip> Skipped)
{
    public const string NotReadyReason = "NetworkPluginNotReady";
}

/// <summary>The outcome of a pod network set-up.</summary>
public sealed record PodNetworkResult(string NetworkName, string InterfaceName, IReadOnlyList<CniIpConfig> Ips, CniInterface? Interface, CniResult Result)
{
    /// <summary>The primary pod IP (IPv4 first), or null when the network assigned none.</summary>
    public string? PrimaryIp => Ips.Count > 0 ? Ips[0].Address.ToString() : null;

    /// <summary>Every pod IP, primary first.</summary>
    public IReadOnlyList<string> IpStrings => [.. Ips.Select(i => i.Address.ToString())];
}

/// <summary>
/// The CNI client facade: readiness from the conf dir (or the built-in default network), pod set-up (loopback, then the
/// pod network), check and tear-down with the result cache.
/// </summary>
public sealed class CniNetwork : IDisposable
{
    private readonly ILogger _logger;
    private readonly CniResultCache _cache;
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim[] _podLocks = [.. Enumerable.Range(0, 32).Select(_ => new SemaphoreSlim(1, 1))];
    private string _podCidr;
    private bool _podCidrFromKubelet;
    private CniNetworkStatus? _current;
    private CniConfWatcher? _watcher;
    private volatile CniOptions _options;
    private volatile CniPluginExecutor _executor;

    public CniNetwork(CniOptions options, ILogger? logger = null)
    {
        _options = options;
        _logger = logger ?? NullLogger.Instance;
        _podCidr = string.Join(',', DefaultNetwork.ParsePodCidrs(options.DefaultPodCidr));
        _executor = new CniPluginExecutor(options.BinDirs, options.PluginTimeout, _logger);
        _cache = new CniResultCache(options.ResultsDir);
    }

    /// <summary>The options in force (replaced by <see cref="Reconfigure"/>).</summary>
    public CniOptions Options => _options;

    public CniPluginExecutor Executor => _executor;

    /// <summary>
    /// Applies a configuration reload: conf dir, plugin directories and timeout, and the built-in network's settings
    /// take effect for the next set-up, check and tear-down (those under way finish with the old ones), and readiness
    /// is evaluated again. The result cache's directory cannot change while pods use it: a different one is refused.
    /// The default pod CIDR only applies while kubelet has not set the node's (UpdateRuntimeConfig).
    /// </summary>
    public void Reconfigure(CniOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.ResultsDir != _options.ResultsDir)
        {
            throw NacelleException.FailedPrecondition($"the CNI result cache cannot move from {_options.ResultsDir} to {options.ResultsDir} while the daemon runs");
        }

        var cidr = string.Join(',', DefaultNetwork.ParsePodCidrs(options.DefaultPodCidr));
        CniConfWatcher? oldWatcher = null;
        var watch = false;
        lock (_gate)
        {
            var old = _options;
            _options = options;
            _executor = new CniPluginExecutor(options.BinDirs, options.PluginTimeout, _logger);
            if (!_podCidrFromKubelet)
            {
                _podCidr = cidr;
            }

            if (_watcher is not null && (old.ConfDir != options.ConfDir || old.RescanInterval != options.RescanInterval))
            {
                oldWatcher = _watcher;
                _watcher = null;
                watch = true;
            }
        }

        oldWatcher?.Dispose();
        if (watch)
        {
            StartWatching();
        }
        else
        {
            Refresh();
        }
    }

    public CniResultCache Cache => _cache;

    /// <summary>The pod CIDR(s) of the built-in default network.</summary>
    public string PodCidr
    {
        get
        {
            lock (_gate)
            {
                return _podCidr;
            }
        }
    }

    /// <summary>Raised (on a thread pool thread) when a re-scan changes readiness or the network in use.</summary>
    public event Action<CniNetworkStatus>? StatusChanged;

    /// <summary>
    /// Replaces the default network's pod CIDR (kubelet's UpdateRuntimeConfig). Throws InvalidArgument naming what is
    /// wrong. Pods already attached keep their addresses; their DEL uses the cached config.
    /// </summary>
    public void UpdatePodCidr(string cidr)
    {
        var normalised = string.Join(',', DefaultNetwork.ParsePodCidrs(cidr));
        lock (_gate)
        {
            _podCidr = normalised;
            _podCidrFromKubelet = true;
        }

        Log.PodCidrUpdated(_logger, normalised);
        Refresh();
    }

    /// <summary>Starts noticing config changes (watcher + periodic re-scan). Idempotent.</summary>
    public void StartWatching()
    {
        lock (_gate)
        {
            if (_watcher is not null)
            {
                return;
            }
        }

        Refresh();
        var watcher = new CniConfWatcher(Options.ConfDir, Options.RescanInterval, () => Refresh(), _logger);
        lock (_gate)
        {
            if (_watcher is null)
            {
                _watcher = watcher;
                return;
            }
        }

        watcher.Dispose();
    }

    /// <summary>The current readiness: the watcher's latest view when watching, otherwise a fresh scan.</summary>
    public CniNetworkStatus Status()
    {
        lock (_gate)
        {
            if (_watcher is not null && _current is not null)
            {
                return _current;
            }
        }

        return Refresh();
    }

    /// <summary>
    /// <see cref="Status"/> plus the plugins' own STATUS verb (CNI 1.1.0 and later; skipped for older lists).
    /// </summary>
    public async Task<CniNetworkStatus> StatusAsync(CancellationToken cancellationToken)
    {
        var status = Status();
        if (!status.Ready || status.Network is not { } list || !CniVersions.AtLeast(list.CniVersion, "1.1.0"))
        {
            return status;
        }

        foreach (var plugin in list.Plugins)
        {
            var stdin = CniRuntimeConf.BuildStdinNode(list, plugin, null, []).ToJsonString();
            try
            {
                await Executor.ExecAsync(list.Name, plugin.Type, CniCommand.Status, null, stdin, cancellationToken);
            }
            catch (NacelleException e)
            {
                return status with { Ready = false, Reason = CniNetworkStatus.NotReadyReason, Message = e.Message };
            }
        }

        return status;
    }

    /// <summary>Re-reads the conf dir and re-checks the plugin binaries.</summary>
    public CniNetworkStatus Refresh()
    {
        var status = Evaluate();
        CniNetworkStatus? previous;
        lock (_gate)
        {
            previous = _current;
            _current = status;
        }

        if (previous is null || previous.Ready != status.Ready || previous.Message != status.Message)
        {
            foreach (var skip in status.Skipped)
            {
                Log.ConfigSkipped(_logger, skip.Path, skip.Reason);
            }

            Log.ReadinessChanged(_logger, status.Ready, status.Network?.Name ?? "", status.Message);
            if (previous is not null)
            {
                StatusChanged?.Invoke(status);
            }
        }

        return status;
    }

    private CniNetworkStatus Evaluate()
    {
        var loaded = CniConfigLoader.Load(Options.ConfDir);
        var skipped = loaded.Skipped;
        var skippedText = skipped.Count > 0 ? $" (skipped: {loaded.SkippedSummary})" : "";
        if (loaded.Network is { } network)
        {
            var missing = MissingPlugins(network);
            return missing.Count == 0
                ? new CniNetworkStatus(true, "", $"network {network.Name} from {network.Source}{skippedText}", network, false, skipped)
                : new CniNetworkStatus(false, CniNetworkStatus.NotReadyReason,
                    $"network {network.Name} from {network.Source}: plugin(s) {string.Join(", ", missing)} not found in {string.Join(", ", Options.BinDirs)}{skippedText}",
                    network, false, skipped);
        }

        var why = loaded.DirectoryProblem ?? $"no valid network config in {Options.ConfDir}";
        if (!Options.EnableDefaultNetwork)
        {
            // A cluster node: the network add-on installs the configuration; until then kubelet must not place pods here.
            return new CniNetworkStatus(false, CniNetworkStatus.NotReadyReason,
                $"cni config uninitialized: {why}{skippedText}; pod networking is left to the cluster's network add-on " +
                "(the built-in network is off), so the network stays NotReady until it installs a configuration",
                null, false, skipped);
        }

        var fallback = DefaultNetwork.Build(Options, PodCidr);
        var missingDefault = MissingPlugins(fallback);
        return missingDefault.Count == 0
            ? new CniNetworkStatus(true, "", $"built-in network {fallback.Name} ({PodCidr}): {why}{skippedText}", fallback, true, skipped)
            : new CniNetworkStatus(false, CniNetworkStatus.NotReadyReason,
                $"cni config uninitialized: {why}{skippedText}; the built-in network needs plugin(s) {string.Join(", ", missingDefault)}, not found in {string.Join(", ", Options.BinDirs)}",
                null, true, skipped);
    }

    /// <summary>The executables <paramref name="network"/> needs (plugin types, IPAM types, loopback) that are not in the bin dirs.</summary>
    public IReadOnlyList<string> MissingPlugins(CniNetworkConfigList network)
    {
        var needed = new List<string>();
        foreach (var plugin in network.Plugins)
        {
            needed.Add(plugin.Type);
            if (plugin.Raw["ipam"] is JsonObject ipam && ipam["type"] is JsonValue t && t.TryGetValue<string>(out var ipamType)
                && ipamType.Length > 0 && !ipamType.Contains('/', StringComparison.Ordinal))
            {
                needed.Add(ipamType);
            }
        }

        if (Options.SetUpLoopback)
        {
            needed.Add("loopback");
        }

        return [.. needed.Distinct(StringComparer.Ordinal).Where(type => Executor.FindPlugin(type) is null)];
    }

    /// <summary>
    /// Attaches the pod: <c>lo</c> through the loopback plugin, then the pod network's chain in order. On failure whatever was
    /// attached is detached again (with a fresh, bounded token) before the error propagates.
    /// </summary>
    public async Task<PodNetworkResult> SetUpPodAsync(PodNetworkRequest request, CancellationToken cancellationToken)
    {
        var podLock = LockOf(request.PodId);
        await podLock.WaitAsync(cancellationToken);
        try
        {
            return await SetUpLockedAsync(request, cancellationToken);
        }
        finally
        {
            podLock.Release();
        }
    }

    private async Task<PodNetworkResult> SetUpLockedAsync(PodNetworkRequest request, CancellationToken cancellationToken)
    {
        var status = Status();
        if (!status.Ready || status.Network is null)
        {
            throw NacelleException.FailedPrecondition($"the pod network is not ready: {status.Message}");
        }

        var network = status.Network;
        var runtime = RuntimeFor(request, Options.PodInterfaceName);
        if (string.IsNullOrEmpty(request.NetnsPath) || !File.Exists(request.NetnsPath))
        {
            throw NacelleException.InvalidArgument($"pod {request.PodId}: network namespace '{request.NetnsPath}' does not exist");
        }

        var attached = new List<(CniNetworkConfigList List, CniRuntimeConf Runtime, CniResult? Result)>();
        try
        {
            // The loopback and the pod's network at once (as containerd's go-cni attaches networks): each plugin sets up
            // an interface of its own in the namespace, and a plugin run is mostly process start-up.
            Task loopback = Task.CompletedTask;
            if (Options.SetUpLoopback)
            {
                var lo = runtime.WithIfName("lo") with { CapabilityArgs = [] };
                attached.Add((DefaultNetwork.Loopback, lo, null));
                loopback = AddNetworkAsync(DefaultNetwork.Loopback, lo, cancellationToken);
            }

            attached.Add((network, runtime, null));
            var pod = AddNetworkAsync(network, runtime, cancellationToken);
            await BothEndedAsync(pod, loopback); // before a failure is undone (the undo deletes both)
            var result = await pod;
            var ips = result.PodIps();
            Log.PodAttached(_logger, request.PodId, network.Name, string.Join(", ", ips.Select(i => i.Cidr)));
            return new PodNetworkResult(network.Name, runtime.IfName, ips, result.SandboxInterface(runtime.IfName), result);
        }
        catch (Exception failure)
        {
            using var undo = new CancellationTokenSource(Options.PluginTimeout * 2);
            for (var i = attached.Count - 1; i >= 0; i--)
            {
                var (list, rt, _) = attached[i];
                try
                {
                    var cached = _cache.Load(list.Name, rt.ContainerId, rt.IfName);
                    await DelNetworkAsync(list, rt, cached?.Result, undo.Token);
                }
                catch (Exception e) when (e is NacelleException or OperationCanceledException or IOException)
                {
                    Log.UndoFailed(_logger, request.PodId, list.Name, e.Message);
                }
            }

            if (failure is NacelleException or OperationCanceledException)
            {
                throw;
            }

            throw NacelleException.Internal($"setting up the network of pod {request.PodId} failed: {failure.Message}", failure);
        }
    }

    /// <summary>
    /// Detaches the pod: the pod network (from the cached config and arguments when there are any, otherwise from the current
    /// network), then loopback. Idempotent; tolerates a netns that is already gone.
    /// </summary>
    public async Task TearDownPodAsync(PodNetworkRequest request, CancellationToken cancellationToken)
    {
        var podLock = LockOf(request.PodId);
        await podLock.WaitAsync(cancellationToken);
        try
        {
            await TearDownLockedAsync(request, cancellationToken);
        }
        finally
        {
            podLock.Release();
        }
    }

    private async Task TearDownLockedAsync(PodNetworkRequest request, CancellationToken cancellationToken)
    {
        // The loopback and the pod's network at once, as they were attached: each plugin tears down an interface of its
        // own, and the pod network's DEL is mostly the kernel deleting its veth (one or two RCU grace periods), which the
        // loopback's need not wait for. Both end before a failure is reported, the pod network's first.
        var runtime = RuntimeFor(request, Options.PodInterfaceName, forTearDown: true);
        var loopback = Options.SetUpLoopback ? DetachLoopbackAsync(request, runtime, cancellationToken) : Task.CompletedTask;
        await BothEndedAsync(DetachPodNetworkAsync(request, runtime, cancellationToken), loopback);
    }

    /// <summary>
    /// Waits for the pod network's plugin runs and the loopback's, run at once, until both have ended. A failure of the
    /// pod network's is the one reported, whatever happened to the loopback's; when only the loopback's failed, that.
    /// </summary>
    private static async Task BothEndedAsync(Task pod, Task loopback)
    {
        try
        {
            await Task.WhenAll(pod, loopback);
        }
        catch (Exception) when (pod.Exception?.InnerException is { } podFailure)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(podFailure);
        }
    }

    private async Task DetachPodNetworkAsync(PodNetworkRequest request, CniRuntimeConf runtime, CancellationToken cancellationToken)
    {
        var cached = _cache.FindByContainer(request.PodId, runtime.IfName, (path, reason) => Log.CacheUnreadable(_logger, path, reason));
        if (cached.Count > 0)
        {
            foreach (var entry in cached)
            {
                var rt = entry.Runtime with { NetnsPath = string.IsNullOrEmpty(request.NetnsPath) ? entry.Runtime.NetnsPath : request.NetnsPath };
                await DelNetworkAsync(entry.Config, rt, entry.Result, cancellationToken);
                Log.PodDetached(_logger, request.PodId, entry.NetworkName, "cache");
            }
        }
        else
        {
            var status = Status();
            if (status.Network is { } network && MissingPlugins(network).Count == 0)
            {
                await DelNetworkAsync(network, runtime, null, cancellationToken);
                Log.PodDetached(_logger, request.PodId, network.Name, network.Source);
            }
        }
    }

    private async Task DetachLoopbackAsync(PodNetworkRequest request, CniRuntimeConf runtime, CancellationToken cancellationToken)
    {
        await Task.Yield(); // the pod network's DEL starts without waiting for this one's cache read and process start
        var lo = _cache.Load(DefaultNetwork.LoopbackName, request.PodId, "lo");
        var loRuntime = lo?.Runtime ?? runtime.WithIfName("lo") with { CapabilityArgs = [] };
        loRuntime = loRuntime with { NetnsPath = string.IsNullOrEmpty(request.NetnsPath) ? loRuntime.NetnsPath : request.NetnsPath };
        if (lo is not null || Executor.FindPlugin("loopback") is not null)
        {
            await DelNetworkAsync(lo?.Config ?? DefaultNetwork.Loopback, loRuntime, lo?.Result, cancellationToken);
        }
    }

    /// <summary>
    /// Runs CHECK over the pod network's chain with the cached result (CNI 0.4.0 and later, unless the list disables it).
    /// Throws NotFound when the pod has no cached attachment, or the plugin's error.
    /// </summary>
    public async Task CheckPodAsync(PodNetworkRequest request, CancellationToken cancellationToken)
    {
        var runtime = RuntimeFor(request, Options.PodInterfaceName, forTearDown: true);
        var cached = _cache.FindByContainer(request.PodId, runtime.IfName, (path, reason) => Log.CacheUnreadable(_logger, path, reason));
        if (cached.Count == 0)
        {
            throw NacelleException.NotFound($"pod {request.PodId} has no cached CNI attachment on {runtime.IfName}");
        }

        foreach (var entry in cached)
        {
            var list = entry.Config;
            if (!CniVersions.AtLeast(list.CniVersion, "0.4.0") || list.DisableCheck)
            {
                continue;
            }

            var rt = entry.Runtime with { NetnsPath = string.IsNullOrEmpty(request.NetnsPath) ? entry.Runtime.NetnsPath : request.NetnsPath };
            foreach (var plugin in list.Plugins)
            {
                var stdin = CniRuntimeConf.BuildStdinNode(list, plugin, entry.Result?.Raw, rt.CapabilityArgs).ToJsonString();
                await Executor.ExecAsync(list.Name, plugin.Type, CniCommand.Check, rt, stdin, cancellationToken);
            }
        }
    }

    /// <summary>Runs ADD over <paramref name="list"/>'s chain in order, each plugin getting the previous result; caches the final result.</summary>
    public async Task<CniResult> AddNetworkAsync(CniNetworkConfigList list, CniRuntimeConf runtime, CancellationToken cancellationToken)
    {
        CniRuntimeConf.Validate(runtime.ContainerId, runtime.IfName);
        JsonObject? previous = null;
        foreach (var plugin in list.Plugins)
        {
            var stdin = CniRuntimeConf.BuildStdinNode(list, plugin, previous, runtime.CapabilityArgs).ToJsonString();
            var output = await Executor.ExecAsync(list.Name, plugin.Type, CniCommand.Add, runtime, stdin, cancellationToken);
            JsonNode? parsed;
            try
            {
                parsed = JsonNode.Parse(output);
            }
            catch (System.Text.Json.JsonException e)
            {
                throw NacelleException.Internal($"CNI plugin {plugin.Type} ADD of network {list.Name} printed an invalid result: {e.Message}");
            }

            previous = parsed as JsonObject
                       ?? throw NacelleException.Internal($"CNI plugin {plugin.Type} ADD of network {list.Name} printed no result object");
        }

        var result = CniResult.Parse(previous!);
        _cache.Save(new CniCacheEntry(list, runtime, result));
        return result;
    }

    /// <summary>
    /// Runs DEL over <paramref name="list"/>'s chain in reverse order (with the cached result as prevResult from 0.4.0 on), then
    /// removes the cache entry. A missing netns is passed as an empty CNI_NETNS and plugin errors are then tolerated.
    /// </summary>
    public async Task DelNetworkAsync(CniNetworkConfigList list, CniRuntimeConf runtime, CniResult? cachedResult, CancellationToken cancellationToken)
    {
        CniRuntimeConf.Validate(runtime.ContainerId, runtime.IfName);
        var netnsGone = string.IsNullOrEmpty(runtime.NetnsPath) || !File.Exists(runtime.NetnsPath);
        var rt = netnsGone ? runtime with { NetnsPath = "" } : runtime;
        var prev = cachedResult is not null && CniVersions.AtLeast(list.CniVersion, "0.4.0") ? cachedResult.Raw : null;
        for (var i = list.Plugins.Count - 1; i >= 0; i--)
        {
            var plugin = list.Plugins[i];
            var stdin = CniRuntimeConf.BuildStdinNode(list, plugin, prev, rt.CapabilityArgs).ToJsonString();
            try
            {
                await Executor.ExecAsync(list.Name, plugin.Type, CniCommand.Del, rt, stdin, cancellationToken);
            }
            catch (NacelleException e) when (netnsGone && e.Kind != ErrorKind.DeadlineExceeded)
            {
                Log.DeleteIgnored(_logger, plugin.Type, runtime.ContainerId, e.Message);
            }
        }

        _cache.Delete(list.Name, runtime.ContainerId, runtime.IfName);
    }

    /// <summary>Operations on one pod run one at a time (a striped lock: pods that share a stripe merely wait for each other).</summary>
    private SemaphoreSlim LockOf(string podId) =>
        _podLocks[(int)((uint)StringComparer.Ordinal.GetHashCode(podId ?? "") % (uint)_podLocks.Length)];

    private static CniRuntimeConf RuntimeFor(PodNetworkRequest request, string ifName, bool forTearDown = false)
    {
        CniRuntimeConf.Validate(request.PodId, ifName);
        JsonObject capabilityArgs;
        try
        {
            capabilityArgs = CniRuntimeConf.PodCapabilityArgs(request);
        }
        catch (NacelleException) when (forTearDown)
        {
            capabilityArgs = []; // a bad annotation must not block tear-down
        }

        return new CniRuntimeConf(request.PodId, request.NetnsPath, ifName, CniRuntimeConf.PodArgs(request), capabilityArgs);
    }

    public void Dispose()
    {
        CniConfWatcher? watcher;
        lock (_gate)
        {
            watcher = _watcher;
            _watcher = null;
        }

        watcher?.Dispose();
    }
}
