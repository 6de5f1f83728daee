using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Nacelle.Common;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Reactor;
using Nacelle.ContainerCore.Processes;

namespace Nacelle.ContainerCore.Spawn;

/// <summary>The container's stdio for the spawned process (null: /dev/null).</summary>
public sealed record SpawnStdio(SafeFileHandle? Stdin = null, SafeFileHandle? Stdout = null, SafeFileHandle? Stderr = null)
{
    public static SpawnStdio Null { get; } = new();

    /// <summary>
    /// For a process with a terminal (<see cref="SpawnRequest.Terminal"/>): receives the pty master once the helper has
    /// allocated it, before the spawn returns; the handle is then the receiver's to dispose. Without a receiver the
    /// master is closed (the process's output is then lost).
    /// </summary>
    public Action<SafeFileHandle>? ConsoleReceived { get; init; }
}

/// <summary>
/// Runs the spawn helper for one <see cref="SpawnRequest"/>: writes the message to a memfd, starts the sealed helper
/// with the container's stdio, the control socket and the message, and follows its reports. The container process
/// is a child of this process (the helper clones it with CLONE_PARENT) and is adopted through a pidfd as soon as its
/// pid is reported, so it is reaped here and never mistaken for a reused pid.
/// </summary>
public sealed class Spawner(SpawnHelperBinary helper, TimeSpan? setupTimeout = null)
{
    // Room for the helper to write its stage into argv, so `ps` shows "nacelle-spawn: mounts".
    private static readonly string TitlePadding = new(' ', 48);

    private readonly TimeSpan _timeout = setupTimeout ?? TimeSpan.FromSeconds(30);

    /// <summary>
    /// Spawns the process. Returns once it is parked before execve (<see cref="SpawnRequest.Park"/>) or has executed
    /// the program; a failure at any stage throws <see cref="SpawnException"/> after the partial process is reaped.
    /// </summary>
    public async Task<SpawnedProcess> SpawnAsync(SpawnRequest request, SpawnStdio stdio, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(stdio);
        var message = SpawnMessage.Encode(request);
        using var memfd = SpawnCalls.CreateMemoryFile("nacelle-spawn-message", allowSealing: true);
        RandomAccess.Write(memfd, message, 0);
        SpawnCalls.AddSeals(memfd, SpawnCalls.F_SEAL_WRITE | SpawnCalls.F_SEAL_GROW | SpawnCalls.F_SEAL_SHRINK);

        var (ours, theirs) = SpawnCalls.CreateSeqPacketPair();
        WatchedProcess? helperProcess = null;
        WatchedProcess? container = null;
        SafeFileHandle? console = null;
        try
        {
            using (theirs)
            {
                var helperPid = SpawnCalls.Spawn(helper.ExecPath, ["nacelle-spawn", TitlePadding],
                    [stdio.Stdin, stdio.Stdout, stdio.Stderr, theirs, memfd]);
                helperProcess = WatchedProcess.Adopt(helperPid);
            }

            var deadline = DateTime.UtcNow + _timeout;
            var report = await ReceiveAsync(ours, deadline, cancellationToken).ConfigureAwait(false);
            if (report is { Kind: var kind, Pid: var pid } && kind == SpawnProtocol.ReportPid)
            {
                container = WatchedProcess.Adopt(pid);
                report = await ReceiveAsync(ours, deadline, cancellationToken).ConfigureAwait(false);
            }

            // A terminal: the pty master comes before the ready report.
            while (report is { Kind: SpawnProtocol.ReportConsole } consoleReport)
            {
                console?.Dispose();
                console = consoleReport.Descriptor;
                report = await ReceiveAsync(ours, deadline, cancellationToken).ConfigureAwait(false);
            }

            var helperExit = await helperProcess.WaitForExitAsync(cancellationToken).WaitAsync(_timeout, FdReactor.Time, cancellationToken).ConfigureAwait(false);
            switch (report)
            {
                case { Kind: SpawnProtocol.ReportReady } when container is not null && request.Terminal is not null && console is null:
                    throw NacelleException.Internal("the spawn helper reported ready without sending the terminal it allocated");
                case { Kind: SpawnProtocol.ReportReady } when container is not null:
                    var spawned = new SpawnedProcess(container, ours, request.Park);
                    if (console is not null)
                    {
                        var receiver = stdio.ConsoleReceived;
                        var master = console;
                        console = null;
                        if (receiver is null)
                        {
                            master.Dispose();
                        }
                        else
                        {
                            receiver(master);
                        }
                    }

                    if (!request.Park)
                    {
                        await spawned.WaitForExecAsync(deadline, cancellationToken).ConfigureAwait(false);
                    }

                    container = null;
                    return spawned;
                case { Kind: SpawnProtocol.ReportError } error:
                    throw ToException(error);
                default:
                    throw NacelleException.Internal(
                        $"the spawn helper stopped without reporting (exit code {helperExit.ExitCode}, signal {helperExit.Signal})");
            }
        }
        catch
        {
            ours.Dispose();
            if (container is not null)
            {
                container.Signal(Signals.SIGKILL);
                await container.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
                container.Dispose();
            }

            throw;
        }
        finally
        {
            console?.Dispose();
            if (helperProcess is not null)
            {
                if (!helperProcess.HasExited)
                {
                    helperProcess.Signal(Signals.SIGKILL);
                }

                await helperProcess.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
                helperProcess.Dispose();
            }
        }
    }

    internal readonly record struct Report(uint Kind, int Stage, int Errno, int Pid, string Message)
    {
        /// <summary>A descriptor the report carried (the pty master of <see cref="SpawnProtocol.ReportConsole"/>).</summary>
        public SafeFileHandle? Descriptor { get; init; }
    }

    /// <summary>The next report; null at end of stream (every helper-side end closed).</summary>
    internal static async Task<Report?> ReceiveAsync(SafeFileHandle socket, DateTime deadline, CancellationToken cancellationToken)
    {
        var buffer = new byte[SpawnProtocol.ReportSize];
        var descriptors = new List<SafeFileHandle>();
        while (true)
        {
            // recvmsg, not recv: a descriptor sent along (the pty master) would be closed by a plain recv.
            var n = UnixSocketCalls.Receive(socket, buffer, descriptors);
            if (n == 0)
            {
                descriptors.ForEach(d => d.Dispose());
                return null;
            }

            if (n > 0)
            {
                Report report;
                try
                {
                    report = Decode(buffer.AsSpan(0, n));
                }
                catch
                {
                    descriptors.ForEach(d => d.Dispose());
                    throw;
                }

                // One descriptor per report at most; anything more is not ours to keep.
                descriptors.Skip(1).ToList().ForEach(d => d.Dispose());
                return descriptors.Count > 0 ? report with { Descriptor = descriptors[0] } : report;
            }

            var remaining = deadline - DateTime.UtcNow;
            if (remaining <= TimeSpan.Zero)
            {
                throw new NacelleException(ErrorKind.DeadlineExceeded, "the spawn helper did not report in time");
            }

            // The deadline on the reactor's clock: no timer thread in a process whose loop runs on its main thread.
            using var deadlineSource = new CancellationTokenSource(remaining, FdReactor.Time);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadlineSource.Token);
            try
            {
                await FdReactor.WaitReadableAsync(socket, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // the deadline: checked at the top of the next round
            }
        }
    }

    internal static Report Decode(ReadOnlySpan<byte> data)
    {
        if (data.Length != SpawnProtocol.ReportSize || BinaryPrimitives.ReadUInt32LittleEndian(data) != SpawnProtocol.Magic)
        {
            throw NacelleException.Internal($"the spawn helper sent a malformed report ({data.Length} bytes)");
        }

        var text = data.Slice(20, SpawnProtocol.ReportMessageSize);
        var end = text.IndexOf((byte)0);
        return new Report(
            BinaryPrimitives.ReadUInt32LittleEndian(data[4..]),
            BinaryPrimitives.ReadInt32LittleEndian(data[8..]),
            BinaryPrimitives.ReadInt32LittleEndian(data[12..]),
            BinaryPrimitives.ReadInt32LittleEndian(data[16..]),
            Encoding.UTF8.GetString(end < 0 ? text : text[..end]));
    }

    private const int EPERM = 1, ENOENT = 2, ENOMEM = 12, EACCES = 13, EINVAL = 22, ERANGE = 34;

    internal static SpawnException ToException(Report error)
    {
        var stage = SpawnProtocol.StageName(error.Stage);
        var reason = error.Errno == 0 ? string.Empty : $": {Marshal.GetPInvokeErrorMessage(error.Errno)} (errno {error.Errno})";
        var kind = (error.Stage, error.Errno) switch
        {
            (SpawnProtocol.StageLookup or SpawnProtocol.StageCwd or SpawnProtocol.StageExec, _) => ErrorKind.FailedPrecondition,
            // A sysctl the kernel does not have (ENOENT), a value it refuses (EINVAL, ERANGE), one it will not let the
            // container's namespaces change (EPERM, EACCES): what the caller asked for, not a fault of nacelle's.
            (SpawnProtocol.StageSysctl, ENOENT or EINVAL or ERANGE or EPERM or EACCES) => ErrorKind.InvalidArgument,
            // clone(CLONE_NEWPID...) into a pid namespace whose init has exited: the pod is being stopped.
            (SpawnProtocol.StageClone, ENOMEM) => ErrorKind.FailedPrecondition,
            _ => ErrorKind.Internal,
        };
        if (error.Stage == SpawnProtocol.StageClone && error.Errno == ENOMEM)
        {
            reason += " (the pid namespace it joins has no init any more: its pod is stopping)";
        }
        return new SpawnException(kind, error.Stage, error.Errno, error.Message,
            $"container setup failed at stage {stage}: {error.Message}{reason}");
    }
}

/// <summary>
/// A process the spawn helper created: the container's init (or an exec'd process), adopted through a pidfd.
/// While <see cref="Parked"/>, it waits before execve for <see cref="StartAsync"/>.
/// </summary>
public sealed class SpawnedProcess : IDisposable
{
    private readonly SafeFileHandle _control;

    internal SpawnedProcess(WatchedProcess process, SafeFileHandle control, bool parked)
    {
        Process = process;
        _control = control;
        Parked = parked;
    }

    /// <summary>A process started by someone else (an external runtime) and adopted: running, no control socket.</summary>
    internal SpawnedProcess(WatchedProcess process)
        : this(process, new SafeFileHandle(IntPtr.Zero, ownsHandle: false), parked: false)
    {
    }

    public WatchedProcess Process { get; }

    public int Pid => Process.Pid;

    public bool Parked { get; private set; }

    /// <summary>Releases a parked process to execve; returns once the program runs (or throws what failed).</summary>
    public async Task StartAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        if (!Parked)
        {
            throw NacelleException.FailedPrecondition($"process {Pid} is not waiting to start");
        }

        if (!SpawnCalls.Send(_control, [SpawnProtocol.StartByte]))
        {
            throw NacelleException.FailedPrecondition($"process {Pid} is gone: it exited before it was started");
        }

        Parked = false;
        await WaitForExecAsync(DateTime.UtcNow + timeout, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The control socket closes on a successful execve (close-on-exec); an error report comes instead otherwise.</summary>
    internal async Task WaitForExecAsync(DateTime deadline, CancellationToken cancellationToken)
    {
        var report = await Spawner.ReceiveAsync(_control, deadline, cancellationToken).ConfigureAwait(false);
        _control.Dispose();
        if (report is { Kind: SpawnProtocol.ReportError } error)
        {
            await Process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            throw Spawner.ToException(error);
        }
    }

    public void Dispose()
    {
        _control.Dispose();
        Process.Dispose();
    }
}
