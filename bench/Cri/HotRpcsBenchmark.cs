using System.Diagnostics;
using Google.Protobuf;
using Runtime.V1;

namespace Nacelle.Bench.Cri;

/// <summary>
/// The per-call cost of the rpcs kubelet polls, back to back (or each after an idle pause, --pause-ms): N pods with one busybox <c>sleep</c> container each on
/// every runtime (made untimed), then rounds of one call of each rpc per runtime, the runtimes taking turns within a
/// round (so a drift of the machine's speed reaches all alike). Version is the yardstick: a call whose handler does
/// nothing, so its time is the fixed cost of a call (client, HTTP/2, the server's pipeline). Prints p50 and p99 per rpc
/// and runtime, the p50 ratio to the first runtime, each answer's size, and each daemon's CPU time per measured call
/// (all rpcs together, from /proc/PID/stat: what the server spends, the client and the kernel's wake-ups not counted).
/// </summary>
internal static class HotRpcsBenchmark
{
    public static async Task RunAsync(BenchOptions options, CriSession nacelle)
    {
        await using var runtimes = await ComparedRuntimes.StartAsync(options, nacelle);
        var pods = options.PodCounts[0];
        var made = new List<List<(string Pod, string Container)>>();
        try
        {
            foreach (var runtime in runtimes.All)
            {
                made.Add(await MakePodsAsync(runtime.Cri, runtimes.Image, pods));
            }

            var calls = new List<(string Rpc, Func<CriSession, (string Pod, string Container), Task<IMessage>> Call)>
            {
                ("Version", async (c, _) => await c.Runtime.VersionAsync(new VersionRequest())),
                ("ListPodSandbox", async (c, _) => await c.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())),
                ("ListContainers", async (c, _) => await c.Runtime.ListContainersAsync(new ListContainersRequest())),
                ("PodSandboxStatus", async (c, p) => await c.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = p.Pod })),
                ("ContainerStatus", async (c, p) => await c.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = p.Container })),
                ("ListImages", async (c, _) => await c.Images.ListImagesAsync(new ListImagesRequest())),
                ("ImageStatus", async (c, _) => await c.Images.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = runtimes.Image } })),
                ("ImageFsInfo", async (c, _) => await c.Images.ImageFsInfoAsync(new ImageFsInfoRequest())),
            };
            var samples = runtimes.All.Select(_ => calls.ToDictionary(c => c.Rpc, _ => new Samples())).ToList();
            var sizes = runtimes.All.Select(_ => new Dictionary<string, int>()).ToList();
            var cpu = new double[runtimes.All.Count];
            for (var round = 0; round < options.Warmup + options.Iterations; round++)
            {
                if (round == options.Warmup)
                {
                    for (var r = 0; r < cpu.Length; r++)
                    {
                        cpu[r] = -ProcessCpu.Seconds(runtimes.All[r].DaemonPid);
                    }
                }

                for (var turn = 0; turn < runtimes.All.Count; turn++)
                {
                    // Each round starts with a different runtime.
                    var r = (round + turn) % runtimes.All.Count;
                    var pod = made[r][round % pods];
                    foreach (var (rpc, call) in calls)
                    {
                        if (options.PauseMs > 0)
                        {
                            await Task.Delay(options.PauseMs);
                        }

                        var start = Stopwatch.GetTimestamp();
                        var answer = await call(runtimes.All[r].Cri, pod);
                        if (round >= options.Warmup)
                        {
                            samples[r][rpc].AddSince(start);
                        }
                        else
                        {
                            sizes[r][rpc] = answer.CalculateSize();
                        }
                    }
                }
            }

            for (var r = 0; r < cpu.Length; r++)
            {
                cpu[r] += ProcessCpu.Seconds(runtimes.All[r].DaemonPid);
            }

            Print(options, pods, runtimes.All, calls.Select(c => c.Rpc).ToList(), samples, sizes);
            Console.WriteLine();
            foreach (var (runtime, seconds) in runtimes.All.Zip(cpu))
            {
                Console.WriteLine(FormattableString.Invariant(
                    $"{runtime.Name}: daemon CPU {seconds * 1e6 / (options.Iterations * calls.Count):F0} µs per call ({seconds:F1} s for {options.Iterations * calls.Count} calls)"));
            }
        }
        finally
        {
            for (var r = 0; r < made.Count; r++)
            {
                foreach (var (pod, _) in made[r])
                {
                    await runtimes.All[r].Cri.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod });
                    await runtimes.All[r].Cri.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod });
                }
            }
        }

        Console.WriteLine(await Machine.DescribeAsync(options.Runc));
    }

    private static async Task<List<(string Pod, string Container)>> MakePodsAsync(CriSession cri, string image, int count)
    {
        var made = new List<(string Pod, string Container)>();
        for (var i = 0; i < count; i++)
        {
            made.Add(await cri.RunSleepingPodAsync($"hot-{i}", image));
        }

        return made;
    }

    private static void Print(BenchOptions options, int pods, List<RuntimeUnderTest> runtimes, List<string> rpcs,
        List<Dictionary<string, Samples>> samples, List<Dictionary<string, int>> sizes)
    {
        Console.WriteLine();
        var pacing = options.PauseMs > 0 ? $"each after an idle pause of {options.PauseMs} ms" : "back to back";
        Console.WriteLine($"## hot rpcs {pacing}, {pods} pods with one container each, {options.Iterations} rounds");
        Console.WriteLine();
        var columns = new List<string> { "rpc" };
        foreach (var runtime in runtimes)
        {
            columns.AddRange([$"{runtime.Name} p50 ms", $"{runtime.Name} p99 ms", $"{runtime.Name} bytes"]);
        }

        columns.AddRange(runtimes.Skip(1).Select(r => $"p50 ratio to {r.Name}"));
        Table.Header([.. columns]);
        foreach (var rpc in rpcs)
        {
            var cells = new List<string> { rpc };
            for (var r = 0; r < runtimes.Count; r++)
            {
                var s = samples[r][rpc];
                cells.AddRange([Table.F(s.Median, 3), Table.F(s.Percentile(0.99), 3), sizes[r].GetValueOrDefault(rpc).ToString()]);
            }

            cells.AddRange(Enumerable.Range(1, runtimes.Count - 1).Select(r =>
                Table.F(samples[0][rpc].Median / samples[r][rpc].Median, 2) + "x"));
            Table.Row([.. cells]);
        }
    }
}
