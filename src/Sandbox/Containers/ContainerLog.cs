using Microsoft.Extensions.Logging;

namespace Nacelle.Sandbox.Containers;

/// <summary>The container manager's source-generated log messages (event ids 5300-5316).</summary>
internal static partial class ContainerLog
{
    [LoggerMessage(5300, LogLevel.Information, "Container {ContainerId} created in pod {PodId} ({Name})")]
    public static partial void Created(ILogger logger, string containerId, string podId, string name);

    [LoggerMessage(5301, LogLevel.Warning, "Container {ContainerId} in pod {PodId}: CreateContainer failed, undoing: {Reason}")]
    public static partial void CreateFailed(ILogger logger, string containerId, string podId, string reason);

    [LoggerMessage(5302, LogLevel.Warning, "Container {ContainerId}: undo of {Step} failed: {Reason}")]
    public static partial void UndoFailed(ILogger logger, string containerId, string step, string reason);

    [LoggerMessage(5303, LogLevel.Information, "Container {ContainerId}: stop signal {Signal}, SIGKILL after {Seconds}s")]
    public static partial void Stopping(ILogger logger, string containerId, int signal, double seconds);

    [LoggerMessage(5304, LogLevel.Information, "Container {ContainerId} exited with {ExitCode} ({Reason})")]
    public static partial void Exited(ILogger logger, string containerId, int exitCode, string reason);

    [LoggerMessage(5305, LogLevel.Information, "Container {ContainerId} removed")]
    public static partial void Removed(ILogger logger, string containerId);

    [LoggerMessage(5306, LogLevel.Warning, "Container {ContainerId}: a create interrupted by a daemon restart was cleaned up")]
    public static partial void CreateAbandoned(ILogger logger, string containerId);

    [LoggerMessage(5307, LogLevel.Information, "Container {ContainerId}: a create interrupted by a daemon restart was completed (the monitor has it)")]
    public static partial void CreateCompleted(ILogger logger, string containerId);

    [LoggerMessage(5308, LogLevel.Warning, "Pod {PodId}: recovering its containers failed: {Reason}")]
    public static partial void RecoverFailed(ILogger logger, string podId, string reason);

    [LoggerMessage(5309, LogLevel.Warning, "Pod {PodId}: stopped watching its monitor for exits: {Reason}")]
    public static partial void WatchGaveUp(ILogger logger, string podId, string reason);

    [LoggerMessage(5310, LogLevel.Warning, "Container {ContainerId}: {Note} (said once per daemon)")]
    public static partial void SecurityNote(ILogger logger, string containerId, string note);

    [LoggerMessage(5312, LogLevel.Warning, "Container {ContainerId}: its rootfs outlived the container (a removal cut short); removed")]
    public static partial void OrphanRootfsRemoved(ILogger logger, string containerId);

    [LoggerMessage(5313, LogLevel.Warning, "Unmounted {MountPoint}: a container rootfs mount no container owns")]
    public static partial void OrphanMountRemoved(ILogger logger, string mountPoint);

    [LoggerMessage(5314, LogLevel.Warning, "Container {ContainerId}: releasing it in the pod's monitor after its removal failed: {Reason}")]
    public static partial void MonitorReleaseFailed(ILogger logger, string containerId, string reason);

    [LoggerMessage(5315, LogLevel.Information, "Container {ContainerId}: the pod's monitor still had it after its removal (a daemon stopped half way); released")]
    public static partial void OrphanReleased(ILogger logger, string containerId);

    [LoggerMessage(5316, LogLevel.Warning, "Container {ContainerId}: StartContainer failed, the container is exited (StartError): {Reason}")]
    public static partial void StartFailed(ILogger logger, string containerId, string reason);
}
