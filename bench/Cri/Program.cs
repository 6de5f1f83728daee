using Nacelle.Bench.Cri;

// Pod sandbox, container and stream benchmarks through nacelle's CRI socket, each against a runc reference measured in the same
// run (see PodsBenchmark and ContainersBenchmark). Run through bench/pods.sh or bench/containers.sh, which start the
// daemon with a private root, state, socket and CNI conf dir on a test bridge, and clean everything up.
BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}

if (options.Command == "pull-profile")
{
    await PullBenchmark.ProfileAsync(options);
    return 0;
}

using var cri = new CriSession(options.Socket, Path.Combine(options.Work, "logs"), options.CgroupParent + "/nacelle");
var cni = new CniRunner(options.CniConflist, options.CniBinDir);
options.NetworkName = cni.NetworkName;
var reference = new RuncReference(options.Runc, options.Work, cni, options.CgroupParent + "/runc", options.ReferencePrefix);

if (options.Command == "cleanup")
{
    await CleanupAsync();
    return 0;
}

var exitCode = 0;
try
{
    await cri.WaitUntilReadyAsync(cni.NetworkName);
    reference.Prepare();
    switch (options.Command)
    {
        case "pods":
            await PodsBenchmark.RunAsync(options, cri, reference);
            break;
        case "containers":
            await ContainersBenchmark.RunAsync(options, cri, reference);
            break;
        case "imagefs":
            await ImageFsBenchmark.RunAsync(options, cri);
            break;
        case "streams":
            await StreamsBenchmark.RunAsync(options, cri, reference);
            break;
        case "kubelet-load":
            await KubeletLoadBenchmark.RunAsync(options, cri);
            break;
        case "ops":
            await CriOpsBenchmark.RunAsync(options, cri);
            break;
        case "hot-rpcs":
            await HotRpcsBenchmark.RunAsync(options, cri);
            break;
        case "memory":
            await MemoryBenchmark.RunAsync(options, cri);
            break;
        default:
            await PullBenchmark.RunAsync(options, cri);
            break;
    }
}
catch (Exception e)
{
    Console.Error.WriteLine($"benchmark failed: {e}");
    exitCode = 1;
}
finally
{
    await CleanupAsync();
}

return exitCode;

// Everything this run created, whether it finished or not: the daemon's pods and containers (through the daemon), the
// reference's runc containers and netns. Each part is best effort so one failure does not keep the others.
async Task CleanupAsync()
{
    try
    {
        await cri.RemoveEverythingAsync();
    }
    catch (Exception e)
    {
        Console.Error.WriteLine($"cleanup: removing the daemon's pods: {e.Message}");
    }

    if (options.ContainerdSocket is { } containerdSocket && File.Exists(containerdSocket))
    {
        try
        {
            using var containerd = new CriSession(containerdSocket, Path.Combine(options.Work, "logs"), "/");
            await containerd.RemoveEverythingAsync();
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"cleanup: removing containerd's pods: {e.Message}");
        }
    }

    try
    {
        await reference.CleanupAsync();
    }
    catch (Exception e)
    {
        Console.Error.WriteLine($"cleanup: runc reference: {e.Message}");
    }
}
