using System.Globalization;
using System.Text.Json;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Processes;
using Nacelle.ContainerCore.Spawn;
using Nacelle.ContainerCore.Spec;

namespace Nacelle.ContainerCore.Runtime.Oci;

/// <summary>
/// Drives one container through an external OCI runtime, for <see cref="ContainerRuntime"/>, which keeps everything
/// else the same as for the built-in core (its state, exit watch, signals, cgroup stats, freeze, updates):
/// <list type="bullet">
/// <item>create: <c>create --bundle B --pid-file P &lt;id&gt;</c> with the container's stdio (the runtime hands them to the
/// container's init); when the runtime exits its init is re-parented to this process (a child subreaper, as the pod's
/// monitor is) and adopted through a pidfd, so its exit is reaped here with its code;</item>
/// <item>start: <c>start &lt;id&gt;</c>;</item>
/// <item>exec: <c>exec --detach --pid-file P --process J &lt;id&gt;</c> with the exec's stdio; the process is adopted the same way;</item>
/// <item>delete: <c>delete --force &lt;id&gt;</c> (the runtime's state and its cgroup).</item>
/// </list>
/// Signals go to the adopted init through its pidfd (and to the cgroup's processes for "all"), as the built-in core
/// sends them: what <c>kill</c> does for process-based runtimes, without the pid-reuse window of a second process.
/// Per container the launcher keeps its files in <c>&lt;state dir&gt;/oci/</c>: the bundle, pid files, process files and
/// the runtime's log of the last command.
/// </summary>
public sealed class OciRuntimeLauncher(ExternalRuntime runtime, string stateDirectory, TimeSpan timeout, Func<IDisposable?>? holdReaping)
{
    public ExternalRuntime Runtime { get; } = runtime ?? throw new ArgumentNullException(nameof(runtime));

    private string Files => Path.Combine(stateDirectory, "oci");

    private string LogFile => Path.Combine(Files, "runtime.log");

    /// <summary>The bundle directory (config.json) given to the runtime.</summary>
    public string BundleDirectory => Path.Combine(Files, "bundle");

    /// <summary>Writes the bundle and runs create; returns the init, adopted (our child once the runtime exited).</summary>
    public async Task<WatchedProcess> CreateAsync(string id, RuntimeSpec spec, string specBundle, string cgroupsPath, SpawnStdio stdio,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(stdio);
        if (spec.Process?.Terminal == true)
        {
            // The runtime would hand the pty master over a --console-socket, which nacelle does not serve yet.
            throw NacelleException.FailedPrecondition(
                $"process.terminal: runtime handler \"{Runtime.Name}\" runs containers without a terminal only (tty: true is served by the built-in handler)");
        }

        OciBundle.Write(BundleDirectory, spec, specBundle, cgroupsPath);
        var pidFile = Path.Combine(Files, "init.pid");
        File.Delete(pidFile);
        var held = holdReaping?.Invoke();
        try
        {
            await OciRuntimeCommand.RunCheckedAsync(Runtime, LogFile, ["create", "--bundle", BundleDirectory, "--pid-file", pidFile, id], stdio,
                timeout, holdReaping: null, cancellationToken).ConfigureAwait(false);
            return Adopt(pidFile, "create");
        }
        finally
        {
            held?.Dispose();
        }
    }

    public Task StartAsync(string id, CancellationToken cancellationToken) =>
        OciRuntimeCommand.RunCheckedAsync(Runtime, LogFile, ["start", id], SpawnStdio.Null, timeout, holdReaping, cancellationToken);

    /// <summary>Runs <paramref name="process"/> in the container; returns it adopted, once it runs.</summary>
    public async Task<WatchedProcess> ExecAsync(string id, SpecProcess process, SpawnStdio stdio, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(process);
        if (process.Terminal)
        {
            throw NacelleException.FailedPrecondition(
                $"process.terminal: runtime handler \"{Runtime.Name}\" runs exec processes without a terminal only");
        }

        Directory.CreateDirectory(Files);
        var name = Guid.NewGuid().ToString("N", CultureInfo.InvariantCulture);
        var processFile = Path.Combine(Files, $"exec-{name}.json");
        var pidFile = Path.Combine(Files, $"exec-{name}.pid");
        File.WriteAllText(processFile, JsonSerializer.Serialize(process, RuntimeSpecJson.Default.SpecProcess));
        var held = holdReaping?.Invoke();
        try
        {
            var result = await OciRuntimeCommand.RunAsync(Runtime, LogFile,
                ["exec", "--detach", "--pid-file", pidFile, "--process", processFile, id], stdio, timeout, holdReaping: null, cancellationToken)
                .ConfigureAwait(false);
            if (!result.Succeeded)
            {
                var message = $"exec in container {id} (runtime handler \"{Runtime.Name}\"): {result.Error}";
                // As the built-in core: a command or working directory that is not there is NotFound.
                throw result.Error is { } error && (error.Contains("no such file or directory", StringComparison.OrdinalIgnoreCase) ||
                                                    error.Contains("not found", StringComparison.OrdinalIgnoreCase))
                    ? NacelleException.NotFound(message)
                    : NacelleException.FailedPrecondition(message);
            }

            return Adopt(pidFile, "exec");
        }
        finally
        {
            held?.Dispose();
            File.Delete(processFile);
            File.Delete(pidFile);
        }
    }

    /// <summary>Removes the runtime's record of the container (and the cgroup it made); an unknown one is not an error.</summary>
    public async Task DeleteAsync(string id, CancellationToken cancellationToken)
    {
        var result = await OciRuntimeCommand.RunAsync(Runtime, LogFile, ["delete", "--force", id], SpawnStdio.Null, timeout, holdReaping,
            cancellationToken).ConfigureAwait(false);
        if (!result.Succeeded && !(result.Error ?? "").Contains("does not exist", StringComparison.OrdinalIgnoreCase))
        {
            throw NacelleException.FailedPrecondition($"runtime handler \"{Runtime.Name}\": delete of container {id}: {result.Error}");
        }
    }

    private WatchedProcess Adopt(string pidFile, string what)
    {
        string text;
        try
        {
            text = File.ReadAllText(pidFile).Trim();
        }
        catch (IOException e)
        {
            throw NacelleException.FailedPrecondition($"runtime handler \"{Runtime.Name}\": {what} left no pid file: {e.Message}");
        }

        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid <= 1)
        {
            throw NacelleException.FailedPrecondition($"runtime handler \"{Runtime.Name}\": {what} wrote '{text}' as the pid");
        }

        // The runtime has exited: its container process is now a child of this process (a subreaper), reaped here.
        return WatchedProcess.Adopt(pid);
    }
}
