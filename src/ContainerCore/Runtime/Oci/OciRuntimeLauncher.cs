using System.Globalization;
using Microsoft.Win32.SafeHandles;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Interop;
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
/// monitor is) and adopted through a pidfd, so its exit is reaped here with its code; with process.terminal also
/// <c>--console-socket S</c>, over which the runtime sends the pty master (<see cref="OciConsoleSocket"/>), handed on as
/// the built-in core's is (<see cref="SpawnStdio.ConsoleReceived"/>);</item>
/// <item>start: <c>start &lt;id&gt;</c>;</item>
/// <item>exec: <c>exec --detach --pid-file P --process J [--console-socket S] &lt;id&gt;</c> with the exec's stdio; the process is
/// adopted the same way, its terminal taken as create's;</item>
/// <item>delete: <c>delete --force &lt;id&gt;</c> (the runtime's state and its cgroup).</item>
/// </list>
/// Signals go to the adopted init through its pidfd (and to the cgroup's processes for "all"), as the built-in core
/// sends them: what <c>kill</c> does for process-based runtimes, without the pid-reuse window of a second process.
/// Per container the launcher keeps its files in <c>&lt;state dir&gt;/oci/</c>: the bundle, pid files, process files,
/// console sockets (<c>console/</c>, mode 0700, each removed once its master came or did not) and the runtime's log of
/// the last command.
/// </summary>
public sealed class OciRuntimeLauncher(ExternalRuntime runtime, string stateDirectory, TimeSpan timeout, Func<IDisposable?>? holdReaping)
{
    public ExternalRuntime Runtime { get; } = runtime ?? throw new ArgumentNullException(nameof(runtime));

    private string Files => Path.Combine(stateDirectory, "oci");

    private string LogFile => Path.Combine(Files, "runtime.log");

    /// <summary>Where console sockets are bound (mode 0700).</summary>
    private string ConsoleDirectory => Path.Combine(Files, "console");

    /// <summary>The bundle directory (config.json) given to the runtime.</summary>
    public string BundleDirectory => Path.Combine(Files, "bundle");

    /// <summary>Writes the bundle and runs create; returns the init, adopted (our child once the runtime exited).</summary>
    public async Task<WatchedProcess> CreateAsync(string id, RuntimeSpec spec, string specBundle, string cgroupsPath, SpawnStdio stdio,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(stdio);
        OciBundle.Write(BundleDirectory, spec, specBundle, cgroupsPath);
        var pidFile = Path.Combine(Files, "init.pid");
        File.Delete(pidFile);
        var deadline = DateTime.UtcNow + timeout;
        using var console = spec.Process?.Terminal == true ? OciConsoleSocket.Open(ConsoleDirectory) : null;
        var held = holdReaping?.Invoke();
        try
        {
            await OciRuntimeCommand.RunCheckedAsync(Runtime, LogFile,
                ["create", "--bundle", BundleDirectory, "--pid-file", pidFile, .. ConsoleArguments(console), id], stdio,
                timeout, holdReaping: null, cancellationToken).ConfigureAwait(false);
            var init = Adopt(pidFile, "create");
            await TakeConsoleAsync(init, console, $"runtime handler \"{Runtime.Name}\": create of container {id}", deadline, spec.Process?.ConsoleSize,
                stdio, cancellationToken).ConfigureAwait(false);
            return init;
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
        Directory.CreateDirectory(Files);
        var name = Guid.NewGuid().ToString("N", CultureInfo.InvariantCulture);
        var processFile = Path.Combine(Files, $"exec-{name}.json");
        var pidFile = Path.Combine(Files, $"exec-{name}.pid");
        File.WriteAllBytes(processFile, JsonMetadata.Serialize(process, RuntimeSpecJson.Default.SpecProcess));
        var deadline = DateTime.UtcNow + timeout;
        // With process.terminal in the process file the runtime allocates the pty (runc: in the container's devpts)
        // and sends its master over the console socket.
        using var console = process.Terminal ? OciConsoleSocket.Open(ConsoleDirectory) : null;
        var held = holdReaping?.Invoke();
        try
        {
            var result = await OciRuntimeCommand.RunAsync(Runtime, LogFile,
                ["exec", "--detach", "--pid-file", pidFile, "--process", processFile, .. ConsoleArguments(console), id], stdio, timeout,
                holdReaping: null, cancellationToken).ConfigureAwait(false);
            if (!result.Succeeded)
            {
                var message = $"exec in container {id} (runtime handler \"{Runtime.Name}\"): {result.Error}";
                // As the built-in core: a command or working directory that is not there is NotFound.
                throw result.Error is { } error && (error.Contains("no such file or directory", StringComparison.OrdinalIgnoreCase) ||
                                                    error.Contains("not found", StringComparison.OrdinalIgnoreCase))
                    ? NacelleException.NotFound(message)
                    : NacelleException.FailedPrecondition(message);
            }

            var adopted = Adopt(pidFile, "exec");
            await TakeConsoleAsync(adopted, console, $"runtime handler \"{Runtime.Name}\": exec in container {id}", deadline, process.ConsoleSize,
                stdio, cancellationToken).ConfigureAwait(false);
            return adopted;
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

    private static IEnumerable<string> ConsoleArguments(OciConsoleSocket? console) =>
        console is null ? [] : ["--console-socket", console.Address];

    /// <summary>
    /// For a process with a terminal: the pty master the runtime sent over <paramref name="console"/>, sized as the spec
    /// asks (again: a runtime may not apply consoleSize) and handed to <see cref="SpawnStdio.ConsoleReceived"/> as the
    /// built-in core hands its own. None by the deadline (or the connection closed without one): the process is killed
    /// and reaped, and the create or exec fails saying so.
    /// </summary>
    private async Task TakeConsoleAsync(WatchedProcess process, OciConsoleSocket? console, string what, DateTime deadline,
        SpecConsoleSize? size, SpawnStdio stdio, CancellationToken cancellationToken)
    {
        if (console is null)
        {
            return;
        }

        SafeFileHandle? master = null;
        try
        {
            master = await console.ReceiveAsync(what, deadline, timeout, cancellationToken).ConfigureAwait(false);
            if (size is { Height: > 0, Width: > 0 })
            {
                Pty.SetWindowSize(master, (ushort)Math.Min(size.Height, ushort.MaxValue), (ushort)Math.Min(size.Width, ushort.MaxValue));
            }
        }
        catch (Exception e)
        {
            master?.Dispose();
            process.Signal(Signals.SIGKILL);
            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            process.Dispose();
            if (e is IOException)
            {
                throw NacelleException.FailedPrecondition($"{what}: what the runtime sent over its --console-socket is not a terminal ({e.Message})");
            }

            throw;
        }

        if (stdio.ConsoleReceived is { } receiver)
        {
            receiver(master);
        }
        else
        {
            master.Dispose(); // nobody reads the terminal: its output is lost, as with the built-in core
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
