using Nacelle.Common;
using Nacelle.ContainerCore.Interop;
using Nacelle.Sandbox.Monitor;

// nacelle-monitor --pod <id> --dir <monitor directory> [--cgroup-parent <path>] [--socket <path>]
// Started detached by the daemon, one per pod; serves its socket (default <dir>/monitor.sock) until a shutdown request.
string? pod = null, dir = null, cgroupParent = null, socket = null;
for (var i = 0; i + 1 < args.Length; i += 2)
{
    switch (args[i])
    {
        case "--pod": pod = args[i + 1]; break;
        case "--dir": dir = args[i + 1]; break;
        case "--cgroup-parent": cgroupParent = args[i + 1]; break;
        case "--socket": socket = args[i + 1]; break;
        default:
            Console.Error.WriteLine($"nacelle-monitor: unknown option {args[i]}");
            return 2;
    }
}

if (pod is null || dir is null)
{
    Console.Error.WriteLine("usage: nacelle-monitor --pod <id> --dir <directory> [--cgroup-parent <path>] [--socket <path>]");
    return 2;
}

try
{
    // A child subreaper: orphaned descendants (a host-pid container's double-forked daemons, the background children
    // of an exec) are re-parented to the monitor instead of init, and its OrphanReaper collects them.
    ChildReaping.BecomeSubreaper();
    var options = new MonitorOptions { PodId = pod, Directory = dir, CgroupParent = cgroupParent, ReapOrphans = true };
    await using var server = new MonitorServer(socket is null ? options : options with { SocketPath = socket });
    await server.RunAsync();
    return 0;
}
catch (Exception e) when (e is NacelleException or IOException)
{
    Console.Error.WriteLine($"nacelle-monitor {pod}: {e.Message}");
    return 1;
}
