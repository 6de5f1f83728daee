using Microsoft.Extensions.Logging;

namespace Nacelle.CriServer.Observability;

/// <summary>Source-generated log messages of the daemon. Event ids: 1xxx lifecycle, 2xxx CRI calls.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1000, Level = LogLevel.Information,
        Message = "nacelle {Version} starting: socket={Socket} root={Root} state={State} config files={ConfigFiles}")]
    public static partial void Starting(ILogger logger, string version, string socket, string root, string state, string configFiles);

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "serving CRI on {Socket}")]
    public static partial void Serving(ILogger logger, string socket);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Information, Message = "serving Prometheus metrics on http://{Address}/metrics")]
    public static partial void MetricsListening(ILogger logger, string address);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Information,
        Message = "tracing on: OTLP {Protocol} to {Endpoint}, sampling ratio {SamplingRatio}")]
    public static partial void TracingEnabled(ILogger logger, string protocol, Uri endpoint, double samplingRatio);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Warning, Message = "removed stale socket {Socket} left by a previous run")]
    public static partial void StaleSocketRemoved(ILogger logger, string socket);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Information,
        Message = "shutting down: no new calls accepted, in-flight calls get up to {Timeout}")]
    public static partial void ShuttingDown(ILogger logger, TimeSpan timeout);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Information, Message = "stopped; socket {Socket} removed")]
    public static partial void Stopped(ILogger logger, string socket);

    [LoggerMessage(EventId = 1007, Level = LogLevel.Warning, Message = "could not notify systemd at {NotifySocket}")]
    public static partial void NotifyFailed(ILogger logger, Exception exception, string notifySocket);

    [LoggerMessage(EventId = 1008, Level = LogLevel.Warning, Message = "runtime not ready: {Reason}: {Detail}")]
    public static partial void RuntimeNotReady(ILogger logger, string reason, string detail);

    [LoggerMessage(EventId = 1009, Level = LogLevel.Information,
        Message = "pod network: watching CNI conf dir {ConfDir}, plugins from {BinDirs}; ready={Ready}: {Detail}")]
    public static partial void CniWatching(ILogger logger, string confDir, string binDirs, bool ready, string detail);

    [LoggerMessage(EventId = 1020, Level = LogLevel.Information,
        Message = "built-in runtime handler on this kernel: user_namespaces={UserNamespaces} ({UserNamespacesDetail}), recursive_read_only_mounts={RecursiveReadOnly} ({RecursiveReadOnlyDetail})")]
    public static partial void KernelFeatures(ILogger logger, bool userNamespaces, string userNamespacesDetail, bool recursiveReadOnly,
        string recursiveReadOnlyDetail);

    [LoggerMessage(EventId = 1010, Level = LogLevel.Information, Message = "configuration reloaded: changed {Changed}; files {ConfigFiles}")]
    public static partial void Reloaded(ILogger logger, string changed, string configFiles);

    [LoggerMessage(EventId = 1011, Level = LogLevel.Error,
        Message = "configuration reload refused, the running configuration stays in force: {Problem}")]
    public static partial void ReloadRefused(ILogger logger, string problem);

    [LoggerMessage(EventId = 1012, Level = LogLevel.Warning,
        Message = "configuration reload: {Keys} changed but take effect only at the next start; the running values stay")]
    public static partial void ReloadDeferred(ILogger logger, string keys);

    [LoggerMessage(EventId = 1013, Level = LogLevel.Error, Message = "configuration reload failed while applying it: {Problem}")]
    public static partial void ReloadFailed(ILogger logger, string problem);

    [LoggerMessage(EventId = 1014, Level = LogLevel.Debug,
        Message = "memory trimmed ({Why}): GC committed {BeforeKb} KiB -> {AfterKb} KiB; by generation after it, KiB (of which free): " +
            "gen0 {Gen0Kb} ({Gen0FreeKb}), gen1 {Gen1Kb} ({Gen1FreeKb}), gen2 {Gen2Kb} ({Gen2FreeKb}), " +
            "large {LargeKb} ({LargeFreeKb}), pinned {PinnedKb} ({PinnedFreeKb})")]
    public static partial void MemoryTrimmed(ILogger logger, string why, long beforeKb, long afterKb, long gen0Kb, long gen0FreeKb,
        long gen1Kb, long gen1FreeKb, long gen2Kb, long gen2FreeKb, long largeKb, long largeFreeKb, long pinnedKb, long pinnedFreeKb);

    [LoggerMessage(EventId = 1015, Level = LogLevel.Debug,
        Message = "pages of the executable reclaimed ({Why}): resident {BeforeKb} KiB -> {AfterKb} KiB (errno {Errno})")]
    public static partial void ExecutablePagesReleased(ILogger logger, string why, long beforeKb, long afterKb, int errno);

    [LoggerMessage(EventId = 1016, Level = LogLevel.Debug, Message = "native heap trimmed: resident {BeforeKb} KiB -> {AfterKb} KiB")]
    public static partial void NativeHeapTrimmed(ILogger logger, long beforeKb, long afterKb);

    [LoggerMessage(EventId = 1017, Level = LogLevel.Debug, Message = "malloc arenas limited to {Arenas}: {Taken}")]
    public static partial void MallocArenasLimited(ILogger logger, int arenas, bool taken);

    [LoggerMessage(EventId = 2000,
        Message = "{Rpc} {Code} in {ElapsedMs:F1} ms pod={PodSandboxId} container={ContainerId} image={Image}")]
    public static partial void RpcCompleted(ILogger logger, LogLevel level, string rpc, string code, double elapsedMs,
        string? podSandboxId, string? containerId, string? image);

    [LoggerMessage(EventId = 2001,
        Message = "{Rpc} {Code} in {ElapsedMs:F1} ms: {Error} pod={PodSandboxId} container={ContainerId} image={Image}")]
    public static partial void RpcFailed(ILogger logger, LogLevel level, string rpc, string code, double elapsedMs, string error,
        string? podSandboxId, string? containerId, string? image);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Error,
        Message = "{Rpc} failed with an internal error pod={PodSandboxId} container={ContainerId} image={Image}")]
    public static partial void RpcInternalError(ILogger logger, Exception exception, string rpc,
        string? podSandboxId, string? containerId, string? image);
}
