using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Processes;
using Nacelle.ContainerCore.Spawn;

namespace Nacelle.Sandbox.Monitor;

/// <summary>Starts a pod's nacelle-monitor detached (own session), so it outlives the daemon.</summary>
public static class MonitorLauncher
{
    /// <summary>Environment variable naming another monitor program (tests run the JIT build through `dotnet`).</summary>
    public const string PathVariable = "NACELLE_MONITOR";

    /// <summary>The monitor's fd for the daemon's copy of the spawn helper.</summary>
    private const int HelperFd = 3;

    /// <summary>
    /// Launches the monitor for <paramref name="options"/>. The daemon reaps it when it exits while the daemon runs
    /// (the returned handle); after a daemon restart the monitor is init's child, and the daemon only reconnects.
    /// </summary>
    public static WatchedProcess Launch(MonitorOptions options, string? program = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        program ??= Environment.GetEnvironmentVariable(PathVariable) is { Length: > 0 } p ? p : Path.Combine(AppContext.BaseDirectory, "nacelle-monitor");
        var argv = new List<string>();
        string path;
        if (program.EndsWith(".dll", StringComparison.Ordinal))
        {
            path = Path.Combine(Path.GetDirectoryName(Environment.ProcessPath!)!, "dotnet");
            if (!File.Exists(path))
            {
                path = "/usr/bin/dotnet";
            }

            argv.AddRange(["dotnet", program]);
        }
        else
        {
            path = program;
            argv.Add("nacelle-monitor");
        }

        options.CheckSocketPath();
        // The daemon's sealed copy of the spawn helper goes with it (fd 3): one copy on the node instead of ~0.8 MB of
        // shared memory per pod.
        var helper = SpawnHelperBinary.Shared;
        argv.AddRange((options with { SpawnHelperFd = HelperFd }).ToArguments());

        Directory.CreateDirectory(options.Directory);
        using var log = File.OpenHandle(Path.Combine(options.Directory, "monitor.log"), FileMode.Append, FileAccess.Write);
        var environment = new List<string> { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" };
        foreach (var name in new[] { "DOTNET_ROOT", "NACELLE_SPAWN_HELPER" })
        {
            if (Environment.GetEnvironmentVariable(name) is { Length: > 0 } value)
            {
                environment.Add($"{name}={value}");
            }
        }

        var pid = SpawnCalls.Spawn(path, argv, [null, log, log, helper.Handle], newSession: true, environment);
        return WatchedProcess.Adopt(pid);
    }
}
