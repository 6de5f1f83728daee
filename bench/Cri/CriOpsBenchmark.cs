using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Nacelle.Tests.Support.Registry;
using Runtime.V1;

namespace Nacelle.Bench.Cri;

/// <summary>
/// The operations critest's <c>-benchmark</c> times (cri-tools pkg/benchmark), made the way it makes them, nacelle against
/// containerd 1.6 in the same run, the runtimes alternating every iteration:
/// - pod: RunPodSandbox (CreatePod), PodSandboxStatus verbose (StatusPod), StopPodSandbox (StopPod), RemovePodSandbox
///   (RemovePod), for critest's pod (metadata, cgroup parent, labels: pod network, pid namespace of the pod);
/// - container, in a fresh pod: ImageStatus + CreateContainer (CreateContainer, as critest's helper does both), StartContainer,
///   ContainerStatus verbose (StatusContainer), StopContainer with critest's 60 s timeout (StopContainer), RemoveContainer,
///   for busybox <c>top</c>;
/// - image: PullImage of a 1 MB image of its own, ImageStatus (StatusImage), RemoveImage; ListImages with six images;
/// - pod and container from scratch: RunPodSandbox + CreateContainer + StartContainer + StopPodSandbox + RemovePodSandbox.
/// Prints each median, p90 and the ratio nacelle/containerd of the medians.
/// </summary>
internal static class CriOpsBenchmark
{
    private const string PullRepository = "bench/pullme";
    private const int ListedImages = 5;
    private const int ListCallsPerIteration = 10;

    private static readonly string[] Operations =
    [
        "CreatePod", "StatusPod", "StopPod", "RemovePod", "CreateContainer", "StartContainer", "StatusContainer", "StopContainer",
        "RemoveContainer", "PullImage", "StatusImage", "RemoveImage", "ListImages", "PodAndContainer",
    ];

    public static async Task RunAsync(BenchOptions options, CriSession nacelle)
    {
        await using var runtimes = await ComparedRuntimes.StartAsync(options, nacelle, PushAsync);
        var host = runtimes.Registry.Host;
        foreach (var runtime in runtimes.All)
        {
            for (var i = 0; i < ListedImages; i++)
            {
                await runtime.Cri.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = $"{host}/bench/list-{i}:latest" } });
            }
        }

        var samples = runtimes.All.ToDictionary(r => r.Name, _ => Operations.ToDictionary(o => o, _ => new Samples()));
        for (var i = 0; i < options.Warmup + options.Iterations; i++)
        {
            foreach (var runtime in runtimes.All)
            {
                var m = new Dictionary<string, List<double>>();
                await IterationAsync(runtime.Cri, runtimes.Image, $"{host}/{PullRepository}:latest", i, m);
                if (i >= options.Warmup)
                {
                    foreach (var (name, values) in m)
                    {
                        values.ForEach(samples[runtime.Name][name].Add);
                    }
                }

                Console.Error.WriteLine($"{runtime.Name} {(i < options.Warmup ? "warm-up" : "run")} {i + 1}: " +
                    string.Join(", ", m.Select(kv => FormattableString.Invariant($"{kv.Key} {kv.Value.Average():F2}"))));
            }
        }

        Console.WriteLine();
        Console.WriteLine($"## critest's benchmark operations: {options.Iterations} iterations after {options.Warmup} warm-ups, runtimes alternating");
        Console.WriteLine();
        Console.WriteLine(await Machine.DescribeAsync(options.Runc));
        Console.WriteLine("As cri-tools pkg/benchmark makes them (one CRI client): critest's pod (pod network, pod pid namespace), busybox `top`,");
        Console.WriteLine("StopContainer timeout 60 s, verbose status calls; CreateContainer includes critest's ImageStatus. PullImage: a 1 MB image");
        Console.WriteLine($"of its own from a loopback registry, removed after each pull. ListImages: {ListedImages + 1} images, {ListCallsPerIteration} calls per iteration.");
        Console.WriteLine("containerd 1.6 with its CRI plugin and runc (bench/reference/containerd.sh). Ratio: nacelle median / containerd median.");
        Console.WriteLine();
        var names = runtimes.All.Select(r => r.Name).ToList();
        Table.Header(["operation", .. names.SelectMany(n => new[] { $"{n} median ms", $"{n} p90 ms" }), .. names.Count > 1 ? new[] { "ratio" } : []]);
        foreach (var operation in Operations)
        {
            var cells = new List<string> { operation };
            foreach (var name in names)
            {
                cells.Add(Table.F(samples[name][operation].Median, 2));
                cells.Add(Table.F(samples[name][operation].P90, 2));
            }

            if (names.Count > 1)
            {
                cells.Add(Table.F(samples[names[0]][operation].Median / samples[names[1]][operation].Median, 2) + "x");
            }

            Table.Row([.. cells]);
        }

        Console.WriteLine();
    }

    /// <summary>The image PullImage fetches (a layer of 1 MB of random bytes and a text file) and the images ListImages lists.</summary>
    private static async Task PushAsync(OciPusher pusher)
    {
        var random = RandomNumberGenerator.GetBytes(1 << 20);
        await TestImages.PushImageAsync(pusher, PullRepository, "latest", new TestImageSpec
        {
            Layers = [TestLayer.Create(TarBuilder.Build(t => t.Directory("data").File("data/random", random).File("data/text", Encoding.ASCII.GetBytes("pull me\n"))))],
        });
        for (var i = 0; i < ListedImages; i++)
        {
            var variant = Encoding.ASCII.GetBytes($"list image {i}\n");
            await TestImages.PushImageAsync(pusher, $"bench/list-{i}", "latest", new TestImageSpec
            {
                Layers = [TestImages.BusyboxLayer(), TestLayer.Create(TarBuilder.Build(t => t.Directory("etc").File("etc/variant", variant)))],
            });
        }
    }

    private static async Task IterationAsync(CriSession cri, string image, string pullImage, int i, Dictionary<string, List<double>> m)
    {
        var runtime = cri.Runtime;
        var clock = new Clock(m);

        // Pod lifecycle.
        var config = PodConfig(cri, $"ops-pod-{i}");
        var podId = await clock.Time("CreatePod", async () => (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config })).PodSandboxId);
        await clock.Time("StatusPod", async () => await runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = podId, Verbose = true }));
        await clock.Time("StopPod", async () => await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId }));
        await clock.Time("RemovePod", async () => await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId }));

        // Container lifecycle in a pod of its own (made and removed untimed).
        config = PodConfig(cri, $"ops-ctr-{i}");
        podId = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config })).PodSandboxId;
        var containerId = await clock.Time("CreateContainer", () => CreateTopAsync(cri, podId, config, image, $"ops-{i}"));
        await clock.Time("StartContainer", async () => await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = containerId }));
        await clock.Time("StatusContainer", async () => await runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = containerId, Verbose = true }));
        await clock.Time("StopContainer", async () => await runtime.StopContainerAsync(new StopContainerRequest { ContainerId = containerId, Timeout = 60 }));
        await clock.Time("RemoveContainer", async () => await runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = containerId }));
        await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId });
        await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId });

        // Image lifecycle, then listing.
        var spec = new ImageSpec { Image = pullImage };
        await clock.Time("PullImage", async () => await cri.Images.PullImageAsync(new PullImageRequest { Image = spec }));
        await clock.Time("StatusImage", async () => await cri.Images.ImageStatusAsync(new ImageStatusRequest { Image = spec }));
        await clock.Time("RemoveImage", async () => await cri.Images.RemoveImageAsync(new RemoveImageRequest { Image = spec }));
        for (var call = 0; call < ListCallsPerIteration; call++)
        {
            await clock.Time("ListImages", async () => await cri.Images.ListImagesAsync(new ListImagesRequest()));
        }

        // A pod and its container from scratch, torn down.
        config = PodConfig(cri, $"ops-scratch-{i}");
        await clock.Time("PodAndContainer", async () =>
        {
            var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config })).PodSandboxId;
            var container = await CreateTopAsync(cri, pod, config, image, $"scratch-{i}");
            await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = container });
            await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod });
            await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod });
        });
    }

    /// <summary>critest's pod: metadata, cgroup parent and labels, nothing else (pod network, the pod's pid namespace).</summary>
    private static PodSandboxConfig PodConfig(CriSession cri, string name) => new()
    {
        Metadata = new PodSandboxMetadata { Name = name, Uid = "cri-test-uid" + Guid.NewGuid(), Namespace = "cri-test-namespace" + Guid.NewGuid() },
        Linux = new LinuxPodSandboxConfig { CgroupParent = cri.CgroupParent },
        Labels = { ["sandbox-platform"] = "linux/amd64" },
    };

    /// <summary>critest's CreateDefaultContainer: ImageStatus of the image, then CreateContainer of <c>top</c>.</summary>
    private static async Task<string> CreateTopAsync(CriSession cri, string podId, PodSandboxConfig podConfig, string image, string name)
    {
        await cri.Images.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = image } });
        return (await cri.Runtime.CreateContainerAsync(new CreateContainerRequest
        {
            PodSandboxId = podId,
            Config = new ContainerConfig
            {
                Metadata = new ContainerMetadata { Name = "Benchmark-container-" + name },
                Image = new ImageSpec { Image = image, UserSpecifiedImage = image },
                Command = { "top" },
                Linux = new LinuxContainerConfig(),
            },
            SandboxConfig = podConfig,
        })).ContainerId;
    }

    /// <summary>Times calls into the iteration's lists of milliseconds per operation.</summary>
    private sealed class Clock(Dictionary<string, List<double>> m)
    {
        public async Task<T> Time<T>(string operation, Func<Task<T>> call)
        {
            var start = Stopwatch.GetTimestamp();
            var result = await call();
            var ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            if (!m.TryGetValue(operation, out var list))
            {
                m[operation] = list = [];
            }

            list.Add(ms);
            return result;
        }

        public Task Time(string operation, Func<Task> call) => Time(operation, async () =>
        {
            await call();
            return true;
        });
    }
}
