using System.Diagnostics;
using Runtime.V1;

namespace Nacelle.Bench.Cri;

/// <summary>
/// ImageFsInfo latency with many pods running (one <c>sleep</c> container each, busybox from a loopback registry, pod
/// network on the test bridge), nacelle against containerd 1.6 with the same pods, one CRI client: what kubelet's and
/// crictl's clients pay when they connect, and kubelet's stats loop. The pods are made untimed, then ImageFsInfo is
/// called back to back, the runtimes alternating in blocks of 50 calls.
/// </summary>
internal static class ImageFsBenchmark
{
    public static async Task RunAsync(BenchOptions options, CriSession nacelle)
    {
        await using var runtimes = await ComparedRuntimes.StartAsync(options, nacelle);
        var image = runtimes.Image;
        var pods = options.MemoryPods;
        var ready = new List<(string Name, CriSession Cri)>();
        foreach (var (name, cri) in runtimes.All.Select(r => (r.Name, r.Cri)))
        {
            try
            {
                var start = Stopwatch.GetTimestamp();
                for (var i = 0; i < pods; i++)
                {
                    await StartPodAsync(cri, image, $"fs-{i}");
                }

                Console.Error.WriteLine(FormattableString.Invariant($"{name}: {pods} pods with a container each in {Stopwatch.GetElapsedTime(start).TotalSeconds:F1} s"));
                ready.Add((name, cri));
            }
            catch (Exception e)
            {
                Console.Error.WriteLine($"{name}: could not start {pods} pods: {e.Message}");
            }
        }

        var samples = ready.ToDictionary(r => r.Name, _ => new Samples());
        var calls = Math.Max(options.Iterations, 100);
        foreach (var (_, cri) in ready)
        {
            await cri.Images.ImageFsInfoAsync(new ImageFsInfoRequest()); // warm-up
        }

        for (var done = 0; done < calls; done += 50)
        {
            foreach (var (name, cri) in ready)
            {
                for (var i = 0; i < 50; i++)
                {
                    var start = Stopwatch.GetTimestamp();
                    await cri.Images.ImageFsInfoAsync(new ImageFsInfoRequest());
                    samples[name].AddSince(start);
                }
            }
        }

        Console.WriteLine();
        Console.WriteLine($"## ImageFsInfo with {pods} pods running (one busybox `sleep` container each): {samples.Values.First().Count} calls per runtime");
        Console.WriteLine();
        Console.WriteLine(await Machine.DescribeAsync(options.Runc));
        Console.WriteLine("One CRI client, the runtimes alternating in blocks of 50 calls. containerd 1.6 with its CRI plugin (bench/reference/containerd.sh).");
        Console.WriteLine();
        Table.Header("runtime", "p50 ms", "p90 ms", "p99 ms", "max ms");
        foreach (var (name, s) in samples)
        {
            Table.Row(name, Table.F(s.Median, 3), Table.F(s.P90, 3), Table.F(s.Percentile(0.99), 3), Table.F(s.Percentile(1), 3));
        }

        foreach (var (name, cri) in ready)
        {
            var info = await cri.Images.ImageFsInfoAsync(new ImageFsInfoRequest());
            foreach (var fs in info.ImageFilesystems.Select(f => ("image", f)).Concat(info.ContainerFilesystems.Select(f => ("container", f))))
            {
                Console.WriteLine(FormattableString.Invariant(
                    $"{name} {fs.Item1} filesystem {fs.f.FsId?.Mountpoint}: {fs.f.UsedBytes?.Value / 1e6:F1} MB, {fs.f.InodesUsed?.Value} inodes"));
            }
        }

        Console.WriteLine();
    }

    private static async Task StartPodAsync(CriSession cri, string image, string name)
    {
        var config = cri.PodConfig(name);
        Directory.CreateDirectory(config.LogDirectory);
        var podId = (await cri.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config })).PodSandboxId;
        var containerId = (await cri.Runtime.CreateContainerAsync(new CreateContainerRequest
        {
            PodSandboxId = podId,
            Config = CriSession.ContainerConfig("sleeper", image),
            SandboxConfig = config,
        })).ContainerId;
        await cri.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = containerId });
    }
}
