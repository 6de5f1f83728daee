using System.Diagnostics;
using System.Text;
using Grpc.Core;
using Nacelle.ContainerCore.Interop;
using Runtime.V1;

namespace Nacelle.Tests.EndToEnd.Infrastructure;

/// <summary>
/// One real nacelle daemon on a temporary socket, root and state directory, with its own metrics port.
/// Disposing it kills the process if it is still running and removes the directory.
/// </summary>
internal sealed class DaemonProcess : IAsyncDisposable
{
    private readonly StringBuilder _output = new();
    private CriClient? _client;

    private DaemonProcess(string directory, Process process, int metricsPort)
    {
        WorkDirectory = directory;
        Process = process;
        MetricsPort = metricsPort;
    }

    public string WorkDirectory { get; }

    public string Socket => Path.Combine(WorkDirectory, "nacelle.sock");

    public string Root => Path.Combine(WorkDirectory, "root");

    public string State => Path.Combine(WorkDirectory, "state");

    /// <summary>
    /// Waits until the daemon's trashes are empty: removed writable layers and bundles are moved there at once and
    /// unmounted and deleted in the background, one after another. False if they are not empty within 10 s.
    /// </summary>
    public async Task<bool> WaitForTrashesAsync()
    {
        foreach (var trash in new[] { Path.Combine(Root, "trash"), Path.Combine(State, "trash") })
        {
            for (var i = 0; i < 100 && Directory.Exists(trash) && Directory.GetFileSystemEntries(trash).Length > 0; i++)
            {
                await Task.Delay(100);
            }

            if (Directory.Exists(trash) && Directory.GetFileSystemEntries(trash).Length > 0)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The CNI conf dir of daemons started without a [cni] table of their own (created empty).</summary>
    public string CniConfDir => Path.Combine(WorkDirectory, "cni", "net.d");

    public int MetricsPort { get; }

    /// <summary>
    /// Debian's plugins (containernetworking-plugins, installed by scripts/install-deps.sh --test): the built-in network's
    /// bridge, host-local, portmap and loopback.
    /// </summary>
    public const string HostCniBinDir = "/usr/lib/cni";

    /// <summary>
    /// [cni] keys (for <see cref="CniToml"/>'s extra) choosing the built-in network as scripts/run.sh does, without masquerade:
    /// test networks never send traffic off the machine.
    /// </summary>
    public const string BuiltinNetworkKeys = "default_network = \"builtin\"\ndefault_masquerade = false";

    /// <summary>
    /// A [cni] table that keeps the daemon off the host's CNI state: the conf dir in <paramref name="directory"/> (created
    /// empty), plugins from <paramref name="binDirs"/> (default: <see cref="HostCniBinDir"/>); the cache follows --root.
    /// </summary>
    public static string CniToml(string directory, IEnumerable<string>? binDirs = null, string extra = "")
    {
        var confDir = Path.Combine(directory, "cni", "net.d");
        System.IO.Directory.CreateDirectory(confDir);
        var bins = string.Join(", ", (binDirs ?? [HostCniBinDir]).Select(d => $"\"{d}\""));
        return $"[cni]\nconf_dir = \"{confDir}\"\nbin_dirs = [{bins}]\n{extra}\n";
    }

    public Process Process { get; }

    /// <summary>Whether a wrapper (e.g. nsenter into a test systemd's namespaces) runs the daemon as its child.</summary>
    public bool Wrapped { get; private init; }

    /// <summary>
    /// The daemon's pid (in this test's pid namespace): the process started, or under a wrapper that forks (nsenter
    /// --pid), the wrapper's child once there is one.
    /// </summary>
    public int Pid
    {
        get
        {
            if (!Wrapped || Process.HasExited)
            {
                return Process.Id;
            }

            var children = Directory.GetDirectories($"/proc/{Process.Id}/task")
                .Select(task => Path.Combine(task, "children"))
                .Where(File.Exists)
                .SelectMany(file => File.ReadAllText(file).Split(' ', StringSplitOptions.RemoveEmptyEntries));
            return children.Select(c => int.Parse(c, System.Globalization.CultureInfo.InvariantCulture)).FirstOrDefault(Process.Id);
        }
    }

    public CriClient Client => _client ??= new CriClient(Socket);

    /// <summary>Everything the daemon wrote to stdout and stderr so far.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>The daemon executable: <paramref name="executable"/> (another build, e.g. a previous release, with its
    /// monitor beside it), else $NACELLE_BIN (the Native AOT build in CI) or `dotnet nacelle.dll` beside the tests.
    /// <paramref name="wrapper"/>, when given, runs it: the command and arguments put before the daemon's (e.g. nsenter).</summary>
    public static ProcessStartInfo StartInfo(IEnumerable<string> args, string? executable = null, IReadOnlyList<string>? wrapper = null)
    {
        var bin = executable ?? Environment.GetEnvironmentVariable("NACELLE_BIN");
        var info = new ProcessStartInfo(wrapper is { Count: > 0 } ? wrapper[0] : string.IsNullOrEmpty(bin) ? "dotnet" : bin);
        foreach (var arg in wrapper?.Skip(1) ?? [])
        {
            info.ArgumentList.Add(arg);
        }

        if (wrapper is { Count: > 0 })
        {
            info.ArgumentList.Add(string.IsNullOrEmpty(bin) ? "dotnet" : bin);
        }

        if (!string.IsNullOrEmpty(bin))
        {
            info.Environment.Remove("NACELLE_MONITOR"); // the monitor beside that daemon
        }
        else
        {
            info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "nacelle.dll"));
            // The JIT daemon's pods run the JIT monitor beside the tests (the AOT one sits beside the AOT daemon).
            info.Environment["NACELLE_MONITOR"] = Path.Combine(AppContext.BaseDirectory, "nacelle-monitor.dll");
        }

        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        info.RedirectStandardInput = true;
        info.UseShellExecute = false;
        // The daemon under test must not pick up a developer's tracing setup.
        foreach (var key in info.Environment.Keys.Where(k => k.StartsWith("OTEL_", StringComparison.Ordinal)).ToList())
        {
            info.Environment.Remove(key);
        }

        return info;
    }

    /// <summary>Runs `nacelle ARGS` to completion (config commands) and returns its exit code and output.</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunToExitAsync(params string[] args)
    {
        using var process = Process.Start(StartInfo(args))!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>
    /// Starts a daemon. <paramref name="configToml"/> is appended to a config that already sets the metrics address;
    /// when <paramref name="waitUntilServing"/> is true this returns once a Version call is answered. Unless
    /// <paramref name="configToml"/> has a [cni] table of its own, <see cref="CniToml"/> keeps the daemon off the host's
    /// /etc/cni/net.d and /var/lib/cni.
    /// </summary>
    public static async Task<DaemonProcess> StartAsync(
        string configToml = "",
        IReadOnlyDictionary<string, string>? environment = null,
        IEnumerable<string>? extraArgs = null,
        bool waitUntilServing = true,
        string? directory = null,
        bool metricsEnabled = true,
        string? executable = null,
        IReadOnlyList<string>? wrapper = null)
    {
        directory ??= System.IO.Directory.CreateTempSubdirectory("nacelle-e2e-").FullName;
        for (var attempt = 1; ; attempt++)
        {
            var metricsPort = Ports.FreeLoopbackPort();
            var daemon = await LaunchAsync(directory, metricsPort, configToml, environment, extraArgs, metricsEnabled, executable, wrapper);
            if (!waitUntilServing)
            {
                return daemon;
            }

            try
            {
                await daemon.WaitUntilServingAsync();
                return daemon;
            }
            catch (InvalidOperationException) when (attempt < 3 && daemon.LostMetricsPort())
            {
                // The port was free when picked and another process took it before the daemon bound it: a new port.
                daemon.Process.Dispose();
            }
            catch
            {
                // The caller never gets the daemon, so nobody else would stop it or remove its directory.
                await daemon.DisposeAsync();
                throw;
            }
        }
    }

    private static async Task<DaemonProcess> LaunchAsync(string directory, int metricsPort, string configToml,
        IReadOnlyDictionary<string, string>? environment, IEnumerable<string>? extraArgs, bool metricsEnabled, string? executable,
        IReadOnlyList<string>? wrapper)
    {
        var configPath = Path.Combine(directory, "config.toml");
        var cni = configToml.Contains("[cni]", StringComparison.Ordinal) ? string.Empty : CniToml(directory);
        await File.WriteAllTextAsync(configPath,
            $"metrics.enabled = {(metricsEnabled ? "true" : "false")}\nmetrics.address = \"127.0.0.1:{metricsPort}\"\n{configToml}\n{cni}");

        var args = new List<string>
        {
            "--config", configPath,
            "--socket", Path.Combine(directory, "nacelle.sock"),
            "--root", Path.Combine(directory, "root"),
            "--state", Path.Combine(directory, "state"),
        };
        args.AddRange(extraArgs ?? []);

        var info = StartInfo(args, executable, wrapper);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        var process = Process.Start(info)!;
        var daemon = new DaemonProcess(directory, process, metricsPort) { Wrapped = wrapper is { Count: > 0 } };
        process.OutputDataReceived += (_, e) => daemon.Append(e.Data);
        process.ErrorDataReceived += (_, e) => daemon.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.StandardInput.Close();
        return daemon;
    }

    /// <summary>Whether the daemon exited because its metrics port, picked free, was taken before it could bind it.</summary>
    private bool LostMetricsPort() =>
        Process.HasExited && Output.Contains($"127.0.0.1:{MetricsPort} is already in use", StringComparison.Ordinal);

    /// <summary>
    /// Starts a new daemon on the directory (socket, root, state) of one that has exited, as a restart after a crash
    /// or an upgrade would. The stopped object is spent: only the returned one is disposed.
    /// </summary>
    public static async Task<DaemonProcess> RestartAsync(DaemonProcess stopped, string configToml = "", string? executable = null)
    {
        if (!stopped.Process.HasExited)
        {
            throw new InvalidOperationException("stop the daemon before restarting it");
        }

        stopped._client?.Dispose();
        stopped.Process.Dispose();
        return await StartAsync(configToml, directory: stopped.WorkDirectory, executable: executable);
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    public async Task WaitUntilServingAsync()
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (Process.HasExited)
            {
                Process.WaitForExit(); // drains the redirected output, so the message has the reason
                throw new InvalidOperationException($"nacelle exited with {Process.ExitCode} before serving:\n{Output}");
            }

            if (File.Exists(Socket))
            {
                try
                {
                    await Client.Runtime.VersionAsync(new VersionRequest(), deadline: DateTime.UtcNow.AddSeconds(5));
                    return;
                }
                catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable)
                {
                    // Not accepting yet.
                }
            }

            await Task.Delay(20);
        }

        throw new TimeoutException($"nacelle did not serve {Socket} within 60 s:\n{Output}");
    }

    /// <summary>Sends a signal and waits for the process to exit; returns its exit code.</summary>
    public async Task<int> StopAsync(int signal = Signals.SIGTERM, TimeSpan? timeout = null)
    {
        Signals.Send(Pid, signal);
        return await WaitForExitAsync(timeout ?? TimeSpan.FromSeconds(30));
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        await Process.WaitForExitAsync(cancel.Token);
        Process.WaitForExit(); // drains the redirected output
        return Process.ExitCode;
    }

    public async Task<string> ScrapeMetricsAsync()
    {
        using var http = new HttpClient();
        return await http.GetStringAsync($"http://127.0.0.1:{MetricsPort}/metrics");
    }

    public async ValueTask DisposeAsync()
    {
        _client?.Dispose();
        if (!Process.HasExited)
        {
            // The daemon itself: a wrapper (nsenter) that forked it does not pass signals on, and waits for it. A graceful
            // stop first, which lets the daemon finish deleting removed rootfs directories (its trash) and unmount them;
            // killed, it would leave them mounted under the directory deleted below.
            Signals.Send(Pid, Signals.SIGTERM);
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            try
            {
                await Process.WaitForExitAsync(grace.Token);
            }
            catch (OperationCanceledException)
            {
                Signals.Send(Pid, Signals.SIGKILL);
                await Process.WaitForExitAsync();
            }
        }

        Process.Dispose();

        // Whatever is still mounted below (a daemon killed by its test, a trash not emptied) is unmounted before the
        // directory is deleted: a recursive delete must never walk into an overlay or a bind mount of a host directory.
        foreach (var point in PodLeftovers.MountsUnder(WorkDirectory))
        {
            TestBridge.Run("umount", "-l", point);
        }

        try
        {
            System.IO.Directory.Delete(WorkDirectory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a test may have left something odd (e.g. a socket with another owner).
        }
    }
}
