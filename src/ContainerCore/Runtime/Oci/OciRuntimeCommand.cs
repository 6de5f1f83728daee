using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Processes;
using Nacelle.ContainerCore.Reactor;
using Nacelle.ContainerCore.Spawn;

namespace Nacelle.ContainerCore.Runtime.Oci;

/// <summary>How a runtime command ended: its exit code and the error it logged (null when it succeeded).</summary>
public sealed record OciCommandResult(int ExitCode, string? Error)
{
    public bool Succeeded => ExitCode == 0;
}

/// <summary>
/// Runs one command of an external OCI runtime as a child of this process:
/// <c>&lt;path&gt; --root &lt;root&gt; --log &lt;file&gt; --log-format json [args...] &lt;command...&gt;</c>, with the stdio it is
/// given (a create or exec passes the container's own: the runtime hands them to the container process). Its exit
/// is reaped through a pidfd; what it logged at level "error" (or, failing that, the last line it logged) becomes the
/// message of a failure. The environment is a fixed PATH only, so nothing of this process leaks into a container.
/// </summary>
public static class OciRuntimeCommand
{
    private static readonly string[] Environment = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"];

    /// <summary>The argument vector of a command (without the program name's own slot filled twice).</summary>
    public static IReadOnlyList<string> Arguments(ExternalRuntime runtime, string logFile, IEnumerable<string> command)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        return [runtime.Path, "--root", runtime.Root, "--log", logFile, "--log-format", "json", .. runtime.Args, .. command];
    }

    /// <summary>Runs the command to its end (SIGKILL after <paramref name="timeout"/>).</summary>
    /// <param name="holdReaping">Suspends a child reaper of this process while the command runs (its exit is ours to reap).</param>
    public static async Task<OciCommandResult> RunAsync(ExternalRuntime runtime, string logFile, IEnumerable<string> command, SpawnStdio stdio,
        TimeSpan timeout, Func<IDisposable?>? holdReaping = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentNullException.ThrowIfNull(stdio);
        if (!File.Exists(runtime.Path))
        {
            throw NacelleException.FailedPrecondition(
                $"runtime handler \"{runtime.Name}\": its runtime {runtime.Path} does not exist on this node (install it, or fix runtime.handlers.{runtime.Name}.path)");
        }

        Directory.CreateDirectory(runtime.Root);
        TruncateLog(logFile);
        var argv = Arguments(runtime, logFile, command);
        using var hold = holdReaping?.Invoke();
        int pid;
        try
        {
            pid = SpawnCalls.Spawn(runtime.Path, argv, [stdio.Stdin, stdio.Stdout, stdio.Stderr], environment: Environment);
        }
        catch (IOException e)
        {
            throw NacelleException.FailedPrecondition($"runtime handler \"{runtime.Name}\": cannot run {runtime.Path}: {e.Message}");
        }

        using var process = WatchedProcess.Adopt(pid);
        var exiting = process.WaitForExitAsync(CancellationToken.None);
        // The bound is the reactor's timer: in nacelle-monitor it fires on the loop, so neither the wait nor its
        // continuation starts the thread pool (a default timer or CancelAsync would).
        using var timer = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var fired = FdReactor.DelayAsync(timeout, timer.Token);
        var timedOut = false;
        if (await Task.WhenAny(exiting, fired).ConfigureAwait(false) == fired && !fired.IsCanceled)
        {
            timedOut = process.Signal(Signals.SIGKILL);
        }
        else if (!exiting.IsCompleted)
        {
            // Cancelled by the caller: the command is killed as on a timeout, and its exit still waited for.
            process.Signal(Signals.SIGKILL);
        }

        var exit = await exiting.ConfigureAwait(false);
        timer.Cancel(); // ends the bound's wait
        if (timedOut)
        {
            return new OciCommandResult(exit.ExitCode,
                $"{string.Join(' ', command.Take(1))} did not finish within {timeout.TotalSeconds:0}s and was killed");
        }

        return new OciCommandResult(exit.ExitCode, exit.ExitCode == 0 ? null : ErrorOf(logFile) ?? $"exit status {exit.ExitCode}");
    }

    /// <summary>Runs the command and throws (FailedPrecondition, with what the runtime said) unless it succeeds.</summary>
    public static async Task RunCheckedAsync(ExternalRuntime runtime, string logFile, IReadOnlyList<string> command, SpawnStdio stdio,
        TimeSpan timeout, Func<IDisposable?>? holdReaping = null, CancellationToken cancellationToken = default)
    {
        var result = await RunAsync(runtime, logFile, command, stdio, timeout, holdReaping, cancellationToken).ConfigureAwait(false);
        if (!result.Succeeded)
        {
            throw NacelleException.FailedPrecondition($"runtime handler \"{runtime.Name}\": {runtime.Path} {command[0]}: {result.Error}");
        }
    }

    /// <summary>
    /// The error a runtime logged: the messages of its "error"/"fatal" lines of logrus JSON ({"level":"error","msg":...}),
    /// or its last line when none is JSON (crun and others log plain text).
    /// </summary>
    public static string? ParseError(IEnumerable<string> lines)
    {
        ArgumentNullException.ThrowIfNull(lines);
        var errors = new List<string>();
        string? last = null;
        foreach (var line in lines)
        {
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            last = line.Trim();
            try
            {
                using var document = JsonDocument.Parse(line);
                if (document.RootElement.ValueKind == JsonValueKind.Object &&
                    document.RootElement.TryGetProperty("level", out var level) && level.GetString() is "error" or "fatal" or "panic" &&
                    document.RootElement.TryGetProperty("msg", out var message) && message.GetString() is { Length: > 0 } text)
                {
                    errors.Add(text);
                }
                else if (document.RootElement.TryGetProperty("msg", out var any) && any.GetString() is { Length: > 0 } anyText)
                {
                    last = anyText;
                }
            }
            catch (JsonException)
            {
                // a plain text line
            }
        }

        return errors.Count > 0 ? string.Join("; ", errors.Distinct(StringComparer.Ordinal)) : last;
    }

    private static string? ErrorOf(string logFile)
    {
        try
        {
            return ParseError(File.ReadLines(logFile));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static void TruncateLog(string logFile)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(logFile)!);
        using var _ = File.Open(logFile, FileMode.Create, FileAccess.Write);
    }

    /// <summary>A handle for a path opened for writing (the runtime's stdout/stderr when no one reads them).</summary>
    internal static SafeFileHandle OpenForWriting(string path) =>
        File.OpenHandle(path, FileMode.Create, FileAccess.Write, FileShare.ReadWrite);
}
