using Microsoft.Win32.SafeHandles;
using Nacelle.Common;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Reactor;

namespace Nacelle.ContainerCore.Processes;

/// <summary>How a process ended: exit code (128 + signal when killed by one), the signal, and when it was seen.</summary>
public sealed record ProcessExit(int ExitCode, int Signal, bool CoreDumped, DateTimeOffset ExitedAt);

/// <summary>
/// A process held through a pidfd: signals and exit detection always refer to the process that was opened, even if
/// its pid is reused after it exits. Only a child nacelle spawned itself is reaped (<see cref="Adopt"/>), with
/// waitid(P_PIDFD) on that child alone; anything else is merely observed (<see cref="Open"/>): its status is read with
/// WNOWAIT and left for its owner to reap. Reaping someone else's child — waitpid(-1), or waitid on a child .NET's
/// Process class started — would steal it from its owner, who would then wait forever.
/// </summary>
public sealed class WatchedProcess : IDisposable
{
    private readonly SafeFileHandle _pidfd;
    private readonly object _gate = new();
    private ProcessExit? _exit;

    private readonly bool _owned;

    private WatchedProcess(int pid, SafeFileHandle pidfd, bool owned)
    {
        Pid = pid;
        _pidfd = pidfd;
        _owned = owned;
    }

    public int Pid { get; }

    /// <summary>Observes <paramref name="pid"/> without ever reaping it; NotFound when no such process exists.</summary>
    public static WatchedProcess Open(int pid) => Create(pid, owned: false);

    /// <summary>Takes charge of a child this process spawned itself (not through .NET's Process): its exit is reaped.</summary>
    public static WatchedProcess Adopt(int childPid) => Create(childPid, owned: true);

    private static WatchedProcess Create(int pid, bool owned)
    {
        try
        {
            return new WatchedProcess(pid, PidfdCalls.Open(pid), owned);
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
    /// Waits for the exit (the pidfd turns readable; one epoll thread serves every wait of the process). The code is known for children (read, and
    /// reaped when adopted); for a process that is not a child of this process the exit is seen without a code (-1).
    /// </summary>
    public Task<ProcessExit> WaitForExitAsync(CancellationToken cancellationToken = default)
    {
        if (_exit is { } known)
        {
            return Task.FromResult(known);
        }

        return PidfdCalls.PollExited(_pidfd, 0) ? Task.FromResult(Reap()) : WaitReadableThenReapAsync(cancellationToken);
    }

    private async Task<ProcessExit> WaitReadableThenReapAsync(CancellationToken cancellationToken)
    {
        await FdReactor.WaitReadableAsync(_pidfd, cancellationToken).ConfigureAwait(false);
        return Reap();
    }

    private ProcessExit Reap()
    {
        lock (_gate)
        {
            if (_exit is null)
            {
                var reaped = PidfdCalls.TryGetExit(_pidfd, reap: _owned);
                _exit = reaped is { } r
                    ? new ProcessExit(r.Code, r.Signal, r.CoreDumped, DateTimeOffset.UtcNow)
                    : new ProcessExit(-1, 0, false, DateTimeOffset.UtcNow);
            }

            return _exit;
        }
    }

    public void Dispose() => _pidfd.Dispose();
}
