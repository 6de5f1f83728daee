using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Processes;
using Nacelle.ContainerCore.Spawn;
using Nacelle.Monitor.Reaping;
using Nacelle.Monitor.Server;

namespace Nacelle.Monitor.Operations;

internal sealed partial class MonitorOperations
{
    /// <summary>
    /// exec-stream (version 2): spawns a process in a running container as exec-sync does (the container's namespaces,
    /// cgroup and seccomp profile, the process's user, capabilities and environment), with a pty from the container's
    /// devpts (process.terminal, sized by consoleSize) or pipes, and answers with the daemon's ends of them as
    /// SCM_RIGHTS. The connection then belongs to the process (see <see cref="ExecStreamSession"/>).
    /// </summary>
    private async Task<Answer> ExecStreamAsync(MonitorRequest request, MonitorResponse ok)
    {
        var id = Id(request);
        var process = ParseProcess(request);
        var ends = new List<(string Name, SafeFileHandle Handle)>();
        var theirs = new List<SafeFileHandle>();
        try
        {
            SpawnStdio stdio;
            if (process.Terminal)
            {
                // The spawn helper opens the pty in the container's /dev/pts and sends us the master: the daemon's end.
                stdio = SpawnStdio.Null with { ConsoleReceived = master => ends.Add(("pty", master)) };
            }
            else
            {
                SafeFileHandle? stdin = null;
                if (request.Stdin)
                {
                    var (read, write) = DescriptorCalls.CreatePipe(nonBlockingRead: false, nonBlockingWrite: false);
                    theirs.Add(read);
                    ends.Add(("stdin", write));
                    stdin = read;
                }

                var (stdoutRead, stdoutWrite) = DescriptorCalls.CreatePipe(nonBlockingRead: false, nonBlockingWrite: false);
                theirs.Add(stdoutWrite);
                ends.Add(("stdout", stdoutRead));
                var (stderrRead, stderrWrite) = DescriptorCalls.CreatePipe(nonBlockingRead: false, nonBlockingWrite: false);
                theirs.Add(stderrWrite);
                ends.Add(("stderr", stderrRead));
                stdio = new SpawnStdio(stdin, stdoutWrite, stderrWrite);
            }

            var spawned = await SpawnExecAsync(id, process, stdio).ConfigureAwait(false);
            MonitorLog.ExecStreamStarted(log, id, spawned.Pid, process.Terminal ? "a terminal" : request.Stdin ? "pipes and stdin" : "pipes");
            var answer = ok with { Fds = [.. ends.Select(e => e.Name)] };
            return new Answer(answer, new ExecStreamSession(id, spawned, [.. ends.Select(e => e.Handle)], reaper, log));
        }
        catch
        {
            ends.ForEach(e => e.Handle.Dispose());
            throw;
        }
        finally
        {
            // The process's ends: it holds its own copies now (or never will).
            theirs.ForEach(h => h.Dispose());
        }
    }

    /// <summary>
    /// An exec-stream after its answer: the descriptors go with the ok line and the monitor closes its copies; then it
    /// waits for the process or the daemon, whichever ends first. The process exiting: one <c>exited</c> event with its
    /// exit code (128+N for a signal), then the connection closes. The daemon closing (its client went away, a timeout):
    /// the process is SIGKILLed and reaped. Either way nothing of it is left.
    /// </summary>
    private sealed class ExecStreamSession(string id, SpawnedProcess spawned, SafeFileHandle[] ends, OrphanReaper? reaper, ILogger log)
        : IConnectionSession
    {
        public async Task RunAsync(Connection connection, MonitorResponse answer, CancellationToken cancellationToken)
        {
            using (spawned)
            {
                var exit = spawned.Process.WaitForExitAsync();
                using var hangUp = new CancellationTokenSource();
                try
                {
                    try
                    {
                        await connection.WriteAsync(answer, [.. ends.Cast<SafeHandle>()], cancellationToken).ConfigureAwait(false);
                    }
                    finally
                    {
                        Array.ForEach(ends, e => e.Dispose());
                    }

                    var closed = connection.WaitClosedAsync(hangUp.Token);
                    if (await Task.WhenAny(exit, closed).ConfigureAwait(false) == exit)
                    {
                        var code = (await exit.ConfigureAwait(false)).ExitCode;
                        MonitorLog.ExecFinished(log, id, spawned.Pid, code, string.Empty);
                        await connection.WriteAsync(new MonitorResponse
                        {
                            Id = 0, Ok = true, Event = MonitorProtocol.EventExited, Exec = new MonitorExecResult { ExitCode = code },
                        }, cancellationToken: cancellationToken).ConfigureAwait(false);
                        hangUp.Cancel(); // not CancelAsync: its callbacks would run on the thread pool, off the loop
                        await closed.ConfigureAwait(false);
                        return;
                    }
                }
                catch (Exception e) when (e is IOException or OperationCanceledException)
                {
                    // the daemon is gone (or the monitor is shutting down): the process goes too
                }
                finally
                {
                    if (!exit.IsCompleted)
                    {
                        MonitorLog.ExecStreamAbandoned(log, id, spawned.Pid);
                        spawned.Process.Signal(Signals.SIGKILL);
                    }

                    await exit.ConfigureAwait(false);
                    reaper?.Untrack(spawned.Pid);
                }
            }
        }
    }
}
