using Microsoft.Extensions.Logging;

namespace Nacelle.ContainerCore.Runtime;

/// <summary>ContainerCore's log events (ids 4000-4099).</summary>
internal static partial class RuntimeLog
{
    [LoggerMessage(4000, LogLevel.Information, "Container {ContainerId} created: pid {Pid}, cgroup {CgroupPath}")]
    public static partial void Created(ILogger logger, string containerId, int pid, string cgroupPath);

    [LoggerMessage(4001, LogLevel.Information, "Container {ContainerId} started")]
    public static partial void Started(ILogger logger, string containerId);

    [LoggerMessage(4002, LogLevel.Information, "Container {ContainerId} exited: code {ExitCode}, signal {Signal}, oom killed {OomKilled}")]
    public static partial void Exited(ILogger logger, string containerId, int exitCode, int signal, bool oomKilled);

    [LoggerMessage(4003, LogLevel.Information, "Container {ContainerId} deleted")]
    public static partial void Deleted(ILogger logger, string containerId);

    [LoggerMessage(4004, LogLevel.Warning, "Container {ContainerId}: {Adjustment}")]
    public static partial void Adjusted(ILogger logger, string containerId, string adjustment);

    [LoggerMessage(4005, LogLevel.Warning, "Container {ContainerId}: create failed, undoing: {Reason}")]
    public static partial void CreateFailed(ILogger logger, string containerId, string reason);

    [LoggerMessage(4006, LogLevel.Warning, "Container {ContainerId}: undo step failed: {Reason}")]
    public static partial void UndoFailed(ILogger logger, string containerId, string reason);

    [LoggerMessage(4007, LogLevel.Warning, "Container {ContainerId}: recovered state says pid {Pid}, but that pid is now another process; marked stopped")]
    public static partial void PidReused(ILogger logger, string containerId, int pid);

    [LoggerMessage(4008, LogLevel.Information, "Container {ContainerId}: exec process {Pid} started")]
    public static partial void ExecStarted(ILogger logger, string containerId, int pid);
}
