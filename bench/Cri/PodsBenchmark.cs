using System.Diagnostics;
using Runtime.V1;

namespace Nacelle.Bench.Cri;

/// <summary>
/// Pod sandboxes through the CRI socket against the runc reference, interleaved per iteration so drift in machine load
/// hits both alike:
/// - latency of RunPodSandbox, and of StopPodSandbox + RemovePodSandbox (also each alone), pod network via CNI;
/// - memory per pod with <see cref="BenchOptions.MemoryPods"/> pods running: PSS of each pod's monitor and pause-init
///   (PSS divides shared pages among the processes mapping them, so the sum over pods is what the pods cost together),
///   and the daemon's RSS growth.
/// </summary>
internal static class PodsBenchmark
{
    public static async Task RunAsync(BenchOptions options, CriSession cri, RuncReference reference)
    {
        var runtime = cri.Runtime;
        var run = new Samples();
        var stop = new Samples();
        var remove = new Samples();
        var stopRemove = new Samples();
        var refRun = new Samples();
        var refTeardown = new Samples();

        for (var i = 0; i < options.Warmup + options.Iterations; i++)
        {
            var measured = i >= options.Warmup;

            var t0 = Stopwatch.GetTimestamp();
            var id = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = cri.PodConfig($"lat-{i}") })).PodSandboxId;
            var runMs = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            if (i == 0)
            {
                // Untimed sanity check: the pod got an address on the test network (CNI really ran).
                Console.Error.WriteLine($"first pod {id[..12]}: IP {(await cri.PodProcessesAsync(id)).Ip}");
            }

            var t1 = Stopwatch.GetTimestamp();
            await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = id });
            var t2 = Stopwatch.GetTimestamp();
            await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id });
            var t3 = Stopwatch.GetTimestamp();

            var r0 = Stopwatch.GetTimestamp();
            var pod = await reference.RunPodAsync($"lat{i}");
            var r1 = Stopwatch.GetTimestamp();
            await reference.RemovePodAsync(pod);
            var r2 = Stopwatch.GetTimestamp();
            if (i == 0)
            {
                Console.Error.WriteLine($"first reference pod {pod.Id}: IP {pod.Ip}");
            }

            if (measured)
            {
                run.Add(runMs);
                stop.Add(Ms(t1, t2));
                remove.Add(Ms(t2, t3));
                stopRemove.Add(Ms(t1, t3));
                refRun.Add(Ms(r0, r1));
                refTeardown.Add(Ms(r1, r2));
            }

            Console.Error.WriteLine(FormattableString.Invariant(
                $"{(measured ? "run" : "warm-up")} {i + 1}: RunPodSandbox {runMs:F1} ms, Stop+Remove {Ms(t1, t3):F1} ms; reference run {Ms(r0, r1):F1} ms, teardown {Ms(r1, r2):F1} ms"));
        }

        var memory = await MeasureMemoryAsync(options, cri, reference);

        Console.WriteLine();
        Console.WriteLine($"## Pod sandboxes through the CRI socket: {options.Iterations} iterations after {options.Warmup} warm-ups, interleaved");
        Console.WriteLine();
        Console.WriteLine(await Machine.DescribeAsync(options.Runc));
        Console.WriteLine($"Network: CNI conflist {options.CniConflist} (network {options.NetworkName}), plugins from {options.CniBinDir}, used by both.");
        Console.WriteLine("Reference (runc by hand, as containerd's CRI plugin + shim would): ip netns add, CNI ADD (loopback, conflist),");
        Console.WriteLine("config.json written, `runc run -d` of a busybox `sleep` pause container in that netns; teardown: `runc delete --force`,");
        Console.WriteLine("CNI DEL, ip netns del. Ratio: median / reference median (below 1: nacelle is faster).");
        Console.WriteLine();
        Table.Header("operation", "median ms", "p90 ms", "vs reference");
        Table.LatencyRow("nacelle RunPodSandbox", run, refRun);
        Table.LatencyRow("reference: netns + CNI ADD + runc run -d", refRun, refRun);
        Table.Row("containerd 1.6 RunPodSandbox (stated, not measured here)", "~170", "-", "-");
        Table.LatencyRow("nacelle StopPodSandbox + RemovePodSandbox", stopRemove, refTeardown);
        Table.LatencyRow("  StopPodSandbox alone", stop, null);
        Table.LatencyRow("  RemovePodSandbox alone", remove, null);
        Table.LatencyRow("reference: runc delete --force + CNI DEL + netns del", refTeardown, refTeardown);
        Console.WriteLine();
        memory.Print(options.MemoryPods);
    }

    private sealed record MemoryResult(double MonitorMb, double PauseMb, double DaemonBeforeMb, double DaemonAfterMb, double ReferenceMb)
    {
        public void Print(int pods)
        {
            Console.WriteLine($"## Memory per pod with {pods} pods running (PSS from /proc/<pid>/smaps_rollup, summed, divided by {pods})");
            Console.WriteLine();
            Table.Header("per pod", "MB");
            Table.Row("nacelle-monitor", Table.F(MonitorMb / pods, 2));
            Table.Row("pause-init", Table.F(PauseMb / pods, 2));
            Table.Row("**nacelle total per pod**", Table.F((MonitorMb + PauseMb) / pods, 2));
            Table.Row("daemon RSS growth per pod", Table.F((DaemonAfterMb - DaemonBeforeMb) / pods, 2));
            Table.Row("reference: runc pause container (busybox sleep)", Table.F(ReferenceMb / pods, 2));
            Table.Row("containerd 1.6 per pod, shim included (stated, not measured here)", "~10");
            Console.WriteLine();
            Console.WriteLine(FormattableString.Invariant(
                $"Daemon RSS: {DaemonBeforeMb:F1} MB before the {pods} pods, {DaemonAfterMb:F1} MB with them running (+{DaemonAfterMb - DaemonBeforeMb:F1} MB)."));
            Console.WriteLine("The reference row is the pause process alone: a real containerd adds a containerd-shim-runc-v2 per pod");
            Console.WriteLine("(about 10 MB), not measured here because no containerd is installed.");
        }
    }

    private static async Task<MemoryResult> MeasureMemoryAsync(BenchOptions options, CriSession cri, RuncReference reference)
    {
        var runtime = cri.Runtime;
        var daemonBefore = Memory.RssMb(options.DaemonPid);
        var ids = new List<string>();
        for (var i = 0; i < options.MemoryPods; i++)
        {
            ids.Add((await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = cri.PodConfig($"mem-{i}") })).PodSandboxId);
        }

        await Task.Delay(TimeSpan.FromSeconds(2)); // let the monitors settle after start (GC, lazily touched pages)
        double monitor = 0, pause = 0;
        foreach (var id in ids)
        {
            var (monitorPid, pausePid, _) = await cri.PodProcessesAsync(id);
            monitor += Memory.PssMb(monitorPid);
            pause += Memory.PssMb(pausePid);
        }

        var daemonAfter = Memory.RssMb(options.DaemonPid);
        Console.Error.WriteLine(FormattableString.Invariant(
            $"{ids.Count} nacelle pods: monitors {monitor:F1} MB, pause-inits {pause:F1} MB PSS; daemon RSS {daemonBefore:F1} -> {daemonAfter:F1} MB"));
        foreach (var id in ids)
        {
            await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = id });
            await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id });
        }

        var pods = new List<RuncPod>();
        for (var i = 0; i < options.MemoryPods; i++)
        {
            pods.Add(await reference.RunPodAsync($"mem{i}"));
        }

        await Task.Delay(TimeSpan.FromSeconds(2));
        var referencePss = pods.Sum(p => Memory.PssMb(p.PausePid));
        Console.Error.WriteLine(FormattableString.Invariant($"{pods.Count} reference pods: pause containers {referencePss:F1} MB PSS"));
        foreach (var pod in pods)
        {
            await reference.RemovePodAsync(pod);
        }

        return new MemoryResult(monitor, pause, daemonBefore, daemonAfter, referencePss);
    }

    private static double Ms(long from, long to) => Stopwatch.GetElapsedTime(from, to).TotalMilliseconds;
}
