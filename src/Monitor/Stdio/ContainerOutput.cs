using System.IO.Pipes;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using Nacelle.Common;
using Nacelle.ContainerCore.Spawn;
using Nacelle.Monitor.Logging;

namespace Nacelle.Monitor.Stdio;

/// <summary>
/// A new container's stdio and where it goes: without a terminal, two pipes pumped into the CRI log (or /dev/null
/// when there is no log); with one, the pty master the spawn helper sends back, pumped into the log as stdout.
/// Prepared before the spawn (<see cref="Stdio"/>), started after it (<see cref="StartPump"/>); disposing it undoes
/// everything (a create that failed).
/// </summary>
internal sealed class ContainerOutput : IDisposable
{
    private readonly bool _terminal;
    private AnonymousPipeServerStream? _stdout;
    private AnonymousPipeServerStream? _stderr;

    private ContainerOutput(bool terminal) => _terminal = terminal;

    /// <summary>What the spawn gives the container as stdin/stdout/stderr.</summary>
    public SpawnStdio Stdio { get; private set; } = SpawnStdio.Null;

    /// <summary>The container's log writer (null: no log).</summary>
    public CriLogWriter? Log { get; private set; }

    /// <summary>A tty container's pty master, once the spawn helper has sent it.</summary>
    public SafeFileHandle? Terminal { get; private set; }

    /// <summary>Opens the log (when <paramref name="logFile"/> is given) and prepares the container's stdio.</summary>
    public static ContainerOutput Prepare(string? logFile, bool terminal)
    {
        var output = new ContainerOutput(terminal);
        try
        {
            if (logFile is not null)
            {
                output.Log = CriLogWriter.Open(logFile);
            }

            if (terminal)
            {
                // The spawn helper allocates the pty inside the container (its /dev/pts) and hands us the master.
                output.Stdio = SpawnStdio.Null with { ConsoleReceived = received => output.Terminal = received };
            }
            else if (output.Log is not null)
            {
                output._stdout = new AnonymousPipeServerStream(PipeDirection.In, HandleInheritability.None);
                output._stderr = new AnonymousPipeServerStream(PipeDirection.In, HandleInheritability.None);
                output.Stdio = new SpawnStdio(null, PipeEnds.WriteEnd(output._stdout), PipeEnds.WriteEnd(output._stderr));
            }

            return output;
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }

    /// <summary>After the spawn: starts copying the container's output into its log; the task ends with the output.</summary>
    public Task StartPump(string id, ILogger logger)
    {
        if (_terminal && Terminal is null)
        {
            throw NacelleException.Internal($"container {id}: no terminal came back from the spawn helper");
        }

        if (Terminal is not null)
        {
            // The only stream of a tty container, logged as stdout; drained even without a log, or the container
            // would block once the pty's buffer fills.
            MonitorLog.TerminalAllocated(logger, id);
            return TerminalOutput.PumpAsync(Log, Terminal);
        }

        if (Log is not null)
        {
            // Our copies of the write ends go; the pumps end when the container's last copy closes.
            _stdout!.DisposeLocalCopyOfClientHandle();
            _stderr!.DisposeLocalCopyOfClientHandle();
            return PumpPipesAsync(Log, _stdout, _stderr);
        }

        return Task.CompletedTask;
    }

    private static async Task PumpPipesAsync(CriLogWriter log, AnonymousPipeServerStream stdout, AnonymousPipeServerStream stderr)
    {
        await using (stdout.ConfigureAwait(false))
        await using (stderr.ConfigureAwait(false))
        {
            await CriLogPump.RunContainerAsync(log, stdout, stderr).ConfigureAwait(false);
        }
    }

    public void Dispose()
    {
        Log?.Dispose();
        _stdout?.Dispose();
        _stderr?.Dispose();
        Terminal?.Dispose();
    }
}
