using Microsoft.Extensions.Logging;

namespace Nacelle.Monitor;

/// <summary>nacelle-monitor's source-generated log messages (event ids 5200-5219).</summary>
internal static partial class MonitorLog
{
    [LoggerMessage(EventId = 5200, Level = LogLevel.Information, Message = "reaped orphaned process {Pid} (not a container or exec process of this pod)")]
    public static partial void OrphanReaped(ILogger logger, int pid);

    [LoggerMessage(EventId = 5201, Level = LogLevel.Warning, Message = "orphan scan failed: {Error}")]
    public static partial void OrphanScanFailed(ILogger logger, string error);

    [LoggerMessage(EventId = 5202, Level = LogLevel.Information, Message = "exec in container {ContainerId}: pid {Pid} exited with code {ExitCode}{TimedOut}")]
    public static partial void ExecFinished(ILogger logger, string containerId, int pid, int exitCode, string timedOut);

    [LoggerMessage(EventId = 5203, Level = LogLevel.Warning, Message = "exec in container {ContainerId}: output still open {Seconds}s after pid {Pid} exited (a background process holds it); stopped reading")]
    public static partial void ExecOutputAbandoned(ILogger logger, string containerId, int pid, int seconds);

    [LoggerMessage(EventId = 5204, Level = LogLevel.Information, Message = "watcher {Watcher} dropped: {Reason}")]
    public static partial void WatcherDropped(ILogger logger, long watcher, string reason);

    [LoggerMessage(EventId = 5205, Level = LogLevel.Warning, Message = "container {ContainerId}: exit event not sent: {Error}")]
    public static partial void ExitEventFailed(ILogger logger, string containerId, string error);

    [LoggerMessage(EventId = 5206, Level = LogLevel.Information, Message = "container {ContainerId}: terminal allocated (output logged as stdout)")]
    public static partial void TerminalAllocated(ILogger logger, string containerId);

    [LoggerMessage(EventId = 5207, Level = LogLevel.Information, Message = "exec-stream in container {ContainerId}: pid {Pid} started with {Stdio}")]
    public static partial void ExecStreamStarted(ILogger logger, string containerId, int pid, string stdio);

    [LoggerMessage(EventId = 5208, Level = LogLevel.Information, Message = "exec-stream in container {ContainerId}: the daemon went away; pid {Pid} killed")]
    public static partial void ExecStreamAbandoned(ILogger logger, string containerId, int pid);

    [LoggerMessage(EventId = 5209, Level = LogLevel.Information, Message = "container {ContainerId}: attached ({Streams})")]
    public static partial void Attached(ILogger logger, string containerId, string streams);

    [LoggerMessage(EventId = 5210, Level = LogLevel.Information, Message = "container {ContainerId}: attach ended: {Reason}")]
    public static partial void Detached(ILogger logger, string containerId, string reason);
}
