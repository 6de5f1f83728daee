using System.Runtime.CompilerServices;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Reactor;
using Nacelle.ContainerCore.Spawn;
using Nacelle.Monitor.Memory;
using Nacelle.Monitor.Server;

// nacelle-monitor --pod <id> --dir <monitor directory> [--cgroup-parent <path>] [--socket <path>] [--spawn-helper-fd <fd>]
// Started detached by the daemon, one per pod; serves its socket (default <dir>/monitor.sock) until a shutdown request.
// The main thread runs the fd reactor's loop and everything the monitor does runs there: sockets, pipes, pidfds and
// timers are all waited on by that one epoll loop, and continuations run inline on it (no thread pool, no timer
// thread). With the runtime's finalizer thread that makes two threads.
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
    // The daemon's sealed copy of the spawn helper, when it passed one: the node then keeps one copy, not one per pod.
    if (options.SpawnHelperFd is { } helperFd)
    {
        SpawnHelperBinary.UseShared(SpawnHelperBinary.Adopt(helperFd));
    }

    FdReactor.UseCallerThread();
    // Settles unmap clean file pages only here, in the Native AOT build (Memory/FilePages: never under the JIT).
    ScratchMemory.DropsFilePages = !RuntimeFeature.IsDynamicCodeSupported;
    JsonMetadata.Cached = false; // JSON metadata is kept only until the next settle (docs/architecture.md, the monitor's memory)
    var server = new MonitorServer(options, reapOrphans: true);
    try
    {
        var serving = server.RunAsync();
        FdReactor.Run(() => !serving.IsCompleted);
        serving.GetAwaiter().GetResult();
    }
    finally
    {
        var disposing = server.DisposeAsync().AsTask();
        FdReactor.Run(() => !disposing.IsCompleted);
        disposing.GetAwaiter().GetResult();
    }

    return 0;
}
catch (Exception e) when (e is NacelleException or IOException)
{
    Console.Error.WriteLine($"nacelle-monitor {options.PodId}: {e.Message}");
    return 1;
}
