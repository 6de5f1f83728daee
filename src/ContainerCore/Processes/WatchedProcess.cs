using Microsoft.Win32.SafeHandles;
using Nacelle.Common;
using Nacelle.ContainerCore.Interop;

namespace Nacelle.ContainerCore.Processes;

/// <summary>How a process ended: exit code (128 + signal when killed by one), the signal, and when it was seen.</summary>
public sealed record ProcessExit(int ExitCode, int Signal, bool CoreDumped, DateTimeOffset ExitedAt);

/// <summary>
/// A process held through a pidfd: signals and exit detection always refer to the process that was opened, even if
/// its pid is reused after it exits. Children are reaped with waitid(P_PIDFD) — only this child, never waitpid(-1),
/// which in a .NET process would steal the runtime's own children.
/// </summary>
public sealed class WatchedProcess : IDisposable
{
    private readonly SafeFileHandle _pidfd;
    private readonly object _gate = new();
    private ProcessExit? _exit;

    private WatchedProcess(int pid, SafeFileHandle pidfd)
    {
        Pid = pid;
        _pidfd = pidfd;
    }

    public int Pid { get; }

    /// <summary>Opens a pidfd for <paramref name="pid"/>; NotFound when no such process exists.</summary>
    public static WatchedProcess Open(int pid)
    {
        try
        {
            return new WatchedProcess(pid, PidfdCalls.Open(pid));
        }
        catch (IOException e) when (e.HResult == 3) // ESRCH
        {
            throw NacelleException.NotFound($"process {pid} does not exist");
        }
    }

    public bool HasExited => _exit is not null || PidfdCalls.PollExited(_pidfd, 0);

    /// <summary>Sends a signal to this process; false when it has already exited.</summary>
    public bool Signal(int signal) => !_pidfd.IsClosed && PidfdCalls.SendSignal(_pidfd, signal);

    /// <summary>
    /// Waits for the exit on a dedicated thread (the pidfd turns readable) and reaps it if it is our child. For a
    /// process that is not our child the exit is still seen, without a code (ExitCode -1).
    /// </summary>
    public Task<ProcessExit> WaitForExitAsync(CancellationToken cancellationToken = default)
    {
        if (_exit is { } known)
        {
            return Task.FromResult(known);
        }

        return Task.Factory.StartNew(() =>
        {
            while (!PidfdCalls.PollExited(_pidfd, 100))
            {
                cancellationToken.ThrowIfCancellationRequested();
            }

            return Reap();
        }, cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    private ProcessExit Reap()
    {
        lock (_gate)
        {
            if (_exit is null)
            {
                var reaped = PidfdCalls.TryReap(_pidfd);
                _exit = reaped is { } r
                    ? new ProcessExit(r.Code, r.Signal, r.CoreDumped, DateTimeOffset.UtcNow)
                    : new ProcessExit(-1, 0, false, DateTimeOffset.UtcNow);
            }

            return _exit;
        }
    }

    public void Dispose() => _pidfd.Dispose();
}
