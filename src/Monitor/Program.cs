using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Interop;
using Nacelle.Monitor.Server;

// nacelle-monitor --pod <id> --dir <monitor directory> [--cgroup-parent <path>] [--socket <path>]
// Started detached by the daemon, one per pod; serves its socket (default <dir>/monitor.sock) until a shutdown request.
MonitorOptions options;
try
{
    options = MonitorOptions.Parse(args);
}
catch (NacelleException e)
{
    Console.Error.WriteLine($"nacelle-monitor: {e.Message}");
    Console.Error.WriteLine(MonitorOptions.Usage);
    return 2;
}

try
{
    // A child subreaper: orphaned descendants (a host-pid container's double-forked daemons, the background children
    // of an exec) are re-parented to the monitor instead of init, and its OrphanReaper collects them.
    ChildReaping.BecomeSubreaper();
    await using var server = new MonitorServer(options, reapOrphans: true);
    await server.RunAsync();
    return 0;
}
catch (Exception e) when (e is NacelleException or IOException)
{
    Console.Error.WriteLine($"nacelle-monitor {options.PodId}: {e.Message}");
    return 1;
}
