using System.IO.Pipes;
using System.Text.Json;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Processes;
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

        using var stdout = new AnonymousPipeServerStream(PipeDirection.In, HandleInheritability.None);
        using var stderr = new AnonymousPipeServerStream(PipeDirection.In, HandleInheritability.None);
        SpawnedProcess spawned;
        try
        {
            using (reaper?.Hold())
            {
                spawned = await runtime.ExecAsync(id, process, new SpawnStdio(null, PipeEnds.WriteEnd(stdout), PipeEnds.WriteEnd(stderr))).ConfigureAwait(false);
                reaper?.Track(spawned.Pid);
            }
        }
        catch (SpawnException e) when (e.Stage is SpawnProtocol.StageLookup or SpawnProtocol.StageCwd)
        {
            var what = e.Stage == SpawnProtocol.StageLookup ? $"command '{process.Args.FirstOrDefault()}'" : $"working directory '{process.Cwd}'";
            var message = $"exec in container {id}: {what}: {e.Detail} ({System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(e.Errno)})";
            throw e.Errno == 2 ? NacelleException.NotFound(message) : NacelleException.InvalidArgument(message);
        }
        finally
        {
            // Only the exec'd process (and what it starts) holds the write ends now.
            stdout.DisposeLocalCopyOfClientHandle();
            stderr.DisposeLocalCopyOfClientHandle();
        }

        using (spawned)
        {
            using var stopReading = new CancellationTokenSource();
            var outTask = OutputCapture.CaptureAsync(PipeEnds.ReadEnd(stdout), limit, stopReading.Token);
            var errTask = OutputCapture.CaptureAsync(PipeEnds.ReadEnd(stderr), limit, stopReading.Token);
            var exitTask = spawned.Process.WaitForExitAsync();
            var timedOut = false;
            if (request.TimeoutMs is > 0 and var timeout)
            {
                using var timer = new CancellationTokenSource(TimeSpan.FromMilliseconds(timeout));
                var fired = Task.Delay(Timeout.Infinite, timer.Token);
                if (await Task.WhenAny(exitTask, fired).ConfigureAwait(false) != exitTask)
                {
                    timedOut = spawned.Process.Signal(Signals.SIGKILL);
                }

                await timer.CancelAsync().ConfigureAwait(false);
            }

            ProcessExit exit;
            try
            {
                exit = await exitTask.ConfigureAwait(false);
            }
            finally
            {
                reaper?.Untrack(spawned.Pid);
            }

            // The output ends when the last writer closes; a background child may keep it open: bounded wait.
            var outputs = Task.WhenAll(outTask, errTask);
            if (await Task.WhenAny(outputs, Task.Delay(OutputGrace)).ConfigureAwait(false) != outputs)
            {
                MonitorLog.ExecOutputAbandoned(log, id, spawned.Pid, (int)OutputGrace.TotalSeconds);
                await stopReading.CancelAsync().ConfigureAwait(false);
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

    private static SpecProcess ParseProcess(MonitorRequest request)
    {
        try
        {
            return JsonSerializer.Deserialize(
                request.ProcessJson ?? throw NacelleException.InvalidArgument("exec-sync: processJson is required"),
                RuntimeSpecJson.Default.SpecProcess) ?? throw NacelleException.InvalidArgument("exec-sync: processJson is null");
        }
        catch (JsonException e)
        {
            throw NacelleException.InvalidArgument($"exec-sync: processJson is not an OCI process: {e.Message}");
        }
    }
}
