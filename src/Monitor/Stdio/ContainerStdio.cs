using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using Nacelle.Common;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Spawn;
using Nacelle.Monitor.Logging;

namespace Nacelle.Monitor.Stdio;

/// <summary>
/// A new container's stdio and where it goes. Without a terminal: stdout and stderr are pipes pumped into the CRI log
/// and to attached clients, and stdin is /dev/null, or (created with stdin) a pipe whose write end the monitor keeps
/// for attachers. With a terminal: the pty master the spawn helper sends back, which is the container's stdin and its
/// only output (logged as stdout). Prepared before the spawn (<see cref="Stdio"/>), started after it
/// (<see cref="StartPump"/>); disposing it before the start undoes everything (a create that failed).
/// </summary>
internal sealed class ContainerStdio : IDisposable
{
    private readonly bool _terminal;
    private SafeFileHandle? _stdinRead;
    private SafeFileHandle? _stdoutRead;
    private SafeFileHandle? _stdoutWrite;
    private SafeFileHandle? _stderrRead;
    private SafeFileHandle? _stderrWrite;

    private ContainerStdio(bool terminal) => _terminal = terminal;

    /// <summary>What the spawn gives the container as stdin/stdout/stderr.</summary>
    public SpawnStdio Stdio { get; private set; } = SpawnStdio.Null;

    /// <summary>The container's log writer (null: no log).</summary>
    public CriLogWriter? Log { get; private set; }

    /// <summary>A tty container's pty master, once the spawn helper has sent it.</summary>
    public SafeFileHandle? Terminal { get; private set; }

    /// <summary>The write end of a non-tty container's stdin pipe (created with stdin), kept for attachers.</summary>
    public SafeFileHandle? StdinWriter { get; private set; }

    /// <summary>Opens the log (when <paramref name="logFile"/> is given) and prepares the container's stdio.</summary>
    public static ContainerStdio Prepare(string? logFile, bool terminal, bool stdin)
    {
        var stdio = new ContainerStdio(terminal);
        try
        {
            if (logFile is not null)
            {
                stdio.Log = CriLogWriter.Open(logFile);
            }

            if (terminal)
            {
                // The spawn helper allocates the pty inside the container (its /dev/pts) and hands us the master.
                stdio.Stdio = SpawnStdio.Null with { ConsoleReceived = received => stdio.Terminal = received };
                return stdio;
            }

            if (stdin)
            {
                (stdio._stdinRead, stdio.StdinWriter) = DescriptorCalls.CreatePipe(nonBlockingRead: false, nonBlockingWrite: false);
            }

            // Our read ends never block (the loop reads them); the container's write ends are ordinary blocking ones.
            (stdio._stdoutRead, stdio._stdoutWrite) = DescriptorCalls.CreatePipe(nonBlockingRead: true, nonBlockingWrite: false);
            (stdio._stderrRead, stdio._stderrWrite) = DescriptorCalls.CreatePipe(nonBlockingRead: true, nonBlockingWrite: false);
            stdio.Stdio = new SpawnStdio(stdio._stdinRead, stdio._stdoutWrite, stdio._stderrWrite);
            return stdio;
        }
        catch
        {
            stdio.Dispose();
            throw;
        }
    }

    /// <summary>
    /// After the spawn: lets go of the container's ends of the pipes and starts copying its output into the log and to
    /// <paramref name="tap"/>; the task ends with the output (the container's last writer closed, or its pty hung up).
    /// </summary>
    public Task StartPump(string id, IOutputTap tap, ILogger logger)
    {
        if (_terminal)
        {
            if (Terminal is null)
            {
                throw NacelleException.Internal($"container {id}: no terminal came back from the spawn helper");
            }

            // Its only stream, logged as stdout, drained even without a log (the container would block once the pty's
            // buffer fills). Non-blocking for the loop: this applies to every copy of the master (attachers' too).
            MonitorLog.TerminalAllocated(logger, id);
            DescriptorCalls.SetNonBlocking(Terminal, true);
            return CriLogPump.RunContainerAsync(Log, Terminal, null, tap);
        }

        // Only the container holds these now: the pumps end when its last copy closes.
        _stdinRead?.Dispose();
        _stdoutWrite?.Dispose();
        _stderrWrite?.Dispose();
        return PumpPipesAsync(Log, _stdoutRead!, _stderrRead!, tap);
    }

    private static async Task PumpPipesAsync(CriLogWriter? log, SafeFileHandle stdout, SafeFileHandle stderr, IOutputTap tap)
    {
        using (stdout)
        using (stderr)
        {
            await CriLogPump.RunContainerAsync(log, stdout, stderr, tap).ConfigureAwait(false);
        }
    }

    /// <summary>Undoes a create that failed.</summary>
    public void Dispose()
    {
        Log?.Dispose();
        _stdinRead?.Dispose();
        StdinWriter?.Dispose();
        _stdoutRead?.Dispose();
        _stdoutWrite?.Dispose();
        _stderrRead?.Dispose();
        _stderrWrite?.Dispose();
        Terminal?.Dispose();
    }
}
