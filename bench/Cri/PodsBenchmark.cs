using System.Diagnostics;
using Runtime.V1;

namespace Nacelle.Bench.Cri;

/// <summary>
/// Pod sandboxes through the CRI socket against the runc reference, interleaved per iteration so drift in machine load
/// hits both alike:
/// - latency of RunPodSandbox, and of StopPodSandbox + RemovePodSandbox (also each alone), pod network via CNI;
/// - memory per pod with <see cref="BenchOptions.MemoryPods"/> pods running, idle and under load, against containerd 1.6
///   in the same run (<see cref="PodMemoryBenchmark"/>).
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
        await PodMemoryBenchmark.RunAsync(options, cri);
    }

    private static double Ms(long from, long to) => Stopwatch.GetElapsedTime(from, to).TotalMilliseconds;
}
