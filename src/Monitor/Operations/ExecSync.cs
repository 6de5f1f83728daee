using System.Text;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Processes;
using Nacelle.ContainerCore.Reactor;
using Nacelle.ContainerCore.Runtime;
using Nacelle.ContainerCore.Spawn;
using Nacelle.ContainerCore.Spec;
using Nacelle.Monitor.Stdio;

namespace Nacelle.Monitor.Operations;

internal sealed partial class MonitorOperations
{
    /// <summary>How long exec-sync keeps reading output after its process exited (a background child may hold the pipes).</summary>
    private static readonly TimeSpan OutputGrace = TimeSpan.FromSeconds(2);

    /// <summary>exec-sync: runs a process in a running container to completion and answers with its exit and output.</summary>
    private async Task<MonitorResponse> ExecSyncAsync(MonitorRequest request, MonitorResponse ok) =>
        ok with { Exec = await ExecSyncAsync(request).ConfigureAwait(false) };

    /// <summary>
    /// Runs a process in a running container to completion: stdin /dev/null, stdout and stderr captured up to the
    /// limit each (the rest read and dropped, so the process never blocks on a full pipe), SIGKILL at the timeout.
    /// </summary>
    private async Task<MonitorExecResult> ExecSyncAsync(MonitorRequest request)
    {
        var id = Id(request);
        var process = ParseProcess(request);
        if (process.Terminal)
        {
            throw NacelleException.InvalidArgument("exec-sync: a terminal is not supported (the output is captured, not a tty)");
        }

        var limit = request.OutputLimit switch
        {
            null or 0 => MonitorProtocol.DefaultExecOutputLimit,
            < 0 => throw NacelleException.InvalidArgument($"exec-sync: outputLimit {request.OutputLimit} is negative"),
            { } given => given,
        };
        if (request.TimeoutMs is < 0)
        {
            throw NacelleException.InvalidArgument($"exec-sync: timeoutMs {request.TimeoutMs} is negative");
        }

        var (stdoutRead, stdoutWrite) = DescriptorCalls.CreatePipe(nonBlockingRead: true, nonBlockingWrite: false);
        var (stderrRead, stderrWrite) = DescriptorCalls.CreatePipe(nonBlockingRead: true, nonBlockingWrite: false);
        using (stdoutRead)
        using (stderrRead)
        {
            SpawnedProcess spawned;
            using (stdoutWrite)
            using (stderrWrite)
            {
                // Only the exec'd process (and what it starts) holds the write ends once this block ends.
                spawned = await SpawnExecAsync(id, process, new SpawnStdio(null, stdoutWrite, stderrWrite)).ConfigureAwait(false);
            }

            using (spawned)
            {
                using var stopReading = new CancellationTokenSource();
                var outTask = OutputCapture.CaptureAsync(stdoutRead, limit, stopReading.Token);
                var errTask = OutputCapture.CaptureAsync(stderrRead, limit, stopReading.Token);
                var (exit, timedOut) = await WaitExecAsync(spawned, request.TimeoutMs).ConfigureAwait(false);

                // The output ends when the last writer closes; a background child may keep it open: bounded wait.
                var outputs = Task.WhenAll(outTask, errTask);
                if (await Task.WhenAny(outputs, FdReactor.DelayAsync(OutputGrace)).ConfigureAwait(false) != outputs)
                {
                    MonitorLog.ExecOutputAbandoned(log, id, spawned.Pid, (int)OutputGrace.TotalSeconds);
                    stopReading.Cancel(); // not CancelAsync: its callbacks would run on the thread pool, off the loop
                }

                var (outBytes, outTruncated) = await outTask.ConfigureAwait(false);
                var (errBytes, errTruncated) = await errTask.ConfigureAwait(false);
                MonitorLog.ExecFinished(log, id, spawned.Pid, exit.ExitCode, timedOut ? " (timed out, killed)" : string.Empty);
                return new MonitorExecResult
                {
                    ExitCode = exit.ExitCode,
                    Stdout = outBytes,
                    Stderr = errBytes,
                    TimedOut = timedOut,
                    Truncated = outTruncated || errTruncated,
                };
            }
        }
    }

    /// <summary>Spawns an exec'd process (tracked by the reaper until it is reaped here); a missing command or
    /// working directory is NotFound/InvalidArgument naming it.</summary>
    private async Task<SpawnedProcess> SpawnExecAsync(string id, SpecProcess process, SpawnStdio stdio)
    {
        try
        {
            using (var hold = reaper?.Hold())
            {
                // A failed spawn lets the reaper go at once, before the runtime waits to see whether the container is
                // ending: an orphan the helper left must be reaped for the container's init to finish its exit.
                var spawned = await runtime.ExecAsync(id, process, stdio, spawnFailed: () =>
                {
                    hold?.Dispose();
                    reaper?.ScanAfterFailedSpawn();
                }).ConfigureAwait(false);
                reaper?.Track(spawned.Pid);
                return spawned;
            }
        }
        catch (Exception e)
        {
            reaper?.ScanAfterFailedSpawn();
            if (e is not SpawnException { Stage: SpawnProtocol.StageLookup or SpawnProtocol.StageCwd } failed)
            {
                throw;
            }

            var what = failed.Stage == SpawnProtocol.StageLookup ? $"command '{process.Args.FirstOrDefault()}'" : $"working directory '{process.Cwd}'";
            var message = $"exec in container {id}: {what}: {failed.Detail} ({System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(failed.Errno)})";
            throw failed.Errno == 2 ? NacelleException.NotFound(message) : NacelleException.InvalidArgument(message);
        }
    }

    /// <summary>Waits for an exec'd process to exit, SIGKILLing it at the timeout (null or 0: none); it is reaped and
    /// untracked from the reaper either way.</summary>
    private async Task<(ProcessExit Exit, bool TimedOut)> WaitExecAsync(SpawnedProcess spawned, long? timeoutMs)
    {
        var exitTask = spawned.Process.WaitForExitAsync();
        var timedOut = false;
        try
        {
            if (timeoutMs is > 0 and var timeout)
            {
                using var timer = new CancellationTokenSource(TimeSpan.FromMilliseconds(timeout), FdReactor.Time);
                var fired = FdReactor.DelayAsync(Timeout.InfiniteTimeSpan, timer.Token);
                if (await Task.WhenAny(exitTask, fired).ConfigureAwait(false) != exitTask)
                {
                    timedOut = spawned.Process.Signal(Signals.SIGKILL);
                }

                timer.Cancel(); // not CancelAsync: its callbacks would run on the thread pool, off the loop
            }

            return (await exitTask.ConfigureAwait(false), timedOut);
        }
        finally
        {
            reaper?.Untrack(spawned.Pid);
        }
    }

    private static SpecProcess ParseProcess(MonitorRequest request)
    {
        try
        {
            // From UTF-8 bytes of its own: a string would be transcoded into a pooled buffer that the pool keeps.
            return JsonSerializer.Deserialize(
                Encoding.UTF8.GetBytes(request.ProcessJson ?? throw NacelleException.InvalidArgument($"{request.Op}: processJson is required")),
                RuntimeSpecJson.Current.SpecProcess) ?? throw NacelleException.InvalidArgument($"{request.Op}: processJson is null");
        }
        catch (JsonException e)
        {
            throw NacelleException.InvalidArgument($"{request.Op}: processJson is not an OCI process: {e.Message}");
        }
    }
}
