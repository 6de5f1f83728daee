using System.Diagnostics;
using System.Globalization;
using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using Nacelle.Storage;
using Nacelle.ImageService;
using Nacelle.ImageService.Layers;
using Nacelle.Tests.Support.Registry;
using Runtime.V1;

namespace Nacelle.Bench.Cri;

/// <summary>
/// PullImage of a 98 MB, 6-layer gzip image (<see cref="PullImageBuilder"/>) from a loopback registry: nacelle against
/// containerd 1.6's CRI plugin, one CRI client for both, the image removed after every pull so each one fetches and
/// unpacks everything, interleaved per iteration; idle, then with a CPU hog (one busy process) running. The floor is
/// measured in the same conditions: inflating and hashing the same layers from memory, all at once, nothing written.
/// </summary>
internal static class PullBenchmark
{
    public const string Repository = "bench/pull";
    public const string Tag = "98mb";

    /// <summary>The name containerd's config gives its sandbox image; certs.d maps it to the loopback registry.</summary>
    public const string PauseImageName = "bench.invalid/pause:3.9";

    public static async Task RunAsync(BenchOptions options, CriSession nacelle)
    {
        await using var registry = await RegistryServer.StartAsync();
        if (options.RegistryPidFile is not null)
        {
            await File.WriteAllTextAsync(options.RegistryPidFile, registry.ProcessId.ToString(CultureInfo.InvariantCulture));
        }

        var (spec, blobs) = await PushAsync(registry);
        using var containerd = options.ContainerdSocket is { } socket ? new CriSession(socket, Path.Combine(options.Work, "logs"), "/") : null;
        if (containerd is not null)
        {
            WriteContainerdHosts(options.ContainerdCertsDir!, registry.Host);
            await containerd.WaitUntilAnswersAsync();
        }

        var image = $"{registry.Host}/{Repository}:{Tag}";
        var results = new List<(string Condition, Samples Nacelle, Samples Containerd, Samples Floor, string Inflater)>();
        foreach (var hog in new[] { false, true })
        {
            using var busy = hog ? CpuHog.Start() : null;
            var condition = hog ? "CPU hog on one core" : "idle";
            var n = new Samples();
            var c = new Samples();
            for (var i = 0; i < options.Warmup + options.Iterations; i++)
            {
                var measured = i >= options.Warmup;
                var nacelleMs = await PullOnceAsync(nacelle, image);
                var containerdMs = containerd is null ? double.NaN : await PullOnceAsync(containerd, image);
                if (i == 0 && containerd is not null)
                {
                    CheckContainerdForgot(options.ContainerdRoot, spec);
                }

                if (measured)
                {
                    n.Add(nacelleMs);
                    if (containerd is not null)
                    {
                        c.Add(containerdMs);
                    }
                }

                Console.Error.WriteLine(FormattableString.Invariant(
                    $"{condition} {(measured ? "run" : "warm-up")} {i + 1}: nacelle {nacelleMs:F0} ms, containerd {containerdMs:F0} ms"));
            }

            var (floor, inflater) = PullStages.MeasureFloor(blobs, Math.Max(5, options.Iterations / 2));
            results.Add((condition, n, c, floor, inflater));
        }

        var compressed = spec.Layers.Sum(l => l.Size);
        Console.WriteLine();
        Console.WriteLine($"## PullImage of a {compressed / 1e6:F1} MB image in {spec.Layers.Count} gzip layers from a loopback registry: " +
                          $"{options.Iterations} iterations after {options.Warmup} warm-ups, interleaved, the image removed after each pull");
        Console.WriteLine();
        Console.WriteLine(await Machine.DescribeAsync(options.Runc));
        Console.WriteLine("One CRI client (this program) drives both runtimes; containerd 1.6 (Debian) with its CRI plugin, overlayfs snapshotter, on its own");
        Console.WriteLine("root, state and socket. Floor: inflate + sha256 of blob and tar of every layer from memory, all layers at once, nothing written,");
        Console.WriteLine($"with the fastest inflater found ({results[0].Inflater}). Throughput ratio: containerd median / nacelle median (above 1: nacelle faster).");
        Console.WriteLine();
        Table.Header("condition", "nacelle median ms", "p90", "containerd median ms", "p90", "floor median ms", "throughput vs containerd", "nacelle / floor");
        foreach (var (condition, n, c, floor, _) in results)
        {
            Table.Row(condition, Table.F(n.Median, 0), Table.F(n.P90, 0), Table.F(c.Median, 0), Table.F(c.P90, 0), Table.F(floor.Median, 0),
                c.Count == 0 ? "-" : Table.F(c.Median / n.Median, 2) + "x", Table.F(n.Median / floor.Median, 2) + "x");
        }

        Console.WriteLine();
        await PullStages.PrintProfileAsync(blobs, options.Work, () => DownloadAllAsync(registry, spec));
        await PrintInProcessPullsAsync(registry, options.Work);
    }

    /// <summary>
    /// The profile alone (no daemon, no containerd): the stage table and in-process pulls through nacelle's
    /// ImageManager, for finding hotspots while developing.
    /// </summary>
    public static async Task ProfileAsync(BenchOptions options)
    {
        await using var registry = await RegistryServer.StartAsync();
        var (spec, blobs) = await PushAsync(registry);
        var (floor, inflater) = PullStages.MeasureFloor(blobs, 5);
        Console.WriteLine(FormattableString.Invariant($"Floor: {floor.Median:F0} ms (median of 5, {inflater})."));
        Console.WriteLine();
        await PullStages.PrintProfileAsync(blobs, options.Work, () => DownloadAllAsync(registry, spec));
        await PrintInProcessPullsAsync(registry, options.Work);
    }

    private static async Task<(TestImageSpec Spec, IReadOnlyList<byte[]> Blobs)> PushAsync(RegistryServer registry)
    {
        var build = Stopwatch.StartNew();
        var spec = PullImageBuilder.Build();
        using (var pusher = registry.CreatePusher())
        {
            await TestImages.PushImageAsync(pusher, Repository, Tag, spec);
            await TestImages.PushBusyboxAsync(pusher, "pause", "3.9"); // containerd's sandbox image (busybox; see containerd.sh)
        }

        var blobs = spec.Layers.Select(l => l.Blob!).ToList();
        Console.Error.WriteLine(FormattableString.Invariant(
            $"image built and pushed in {build.Elapsed.TotalSeconds:F1} s: {spec.Layers.Count} layers, {spec.Layers.Sum(l => l.Size) / 1e6:F1} MB compressed; layer gzip decoder {LayerStreams.GzipImplementation}"));
        return (spec, blobs);
    }

    private static async Task<double> PullOnceAsync(CriSession cri, string image)
    {
        var start = Stopwatch.GetTimestamp();
        var pulled = await cri.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = image } });
        var ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        await cri.Images.RemoveImageAsync(new RemoveImageRequest { Image = new ImageSpec { Image = pulled.ImageRef } });
        var status = await cri.Images.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = image } });
        if (status.Image is not null)
        {
            throw new InvalidOperationException($"{image} is still present after RemoveImage");
        }

        return ms;
    }

    // containerd's RemoveImage deletes synchronously (garbage collection included): no layer blob may remain.
    private static void CheckContainerdForgot(string? root, TestImageSpec spec)
    {
        if (root is null)
        {
            return;
        }

        var blobs = Path.Combine(root, "io.containerd.content.v1.content/blobs/sha256");
        var left = spec.Layers.Count(l => File.Exists(Path.Combine(blobs, l.Digest[7..])));
        if (left > 0)
        {
            Console.Error.WriteLine($"warning: {left} layer blobs are still in containerd's content store after RemoveImage: its later pulls are not cold");
        }
    }

    // certs.d/<host>/hosts.toml (containerd's config_path): plain HTTP to the loopback registry, also under the pause
    // image's name.
    public static void WriteContainerdHosts(string certsDir, string registryHost)
    {
        foreach (var name in new[] { registryHost, PauseImageName.Split('/')[0] })
        {
            var dir = Path.Combine(certsDir, name);
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, "hosts.toml"), $"""
                server = "http://{registryHost}"

                [host."http://{registryHost}"]
                  capabilities = ["pull", "resolve"]
                """);
        }
    }

    // Every layer over HTTP to a null sink, 3 at a time (the default max_concurrent_downloads of both runtimes).
    private static async Task<double> DownloadAllAsync(RegistryServer registry, TestImageSpec spec)
    {
        using var client = new HttpClient();
        using var slots = new SemaphoreSlim(3);
        var start = Stopwatch.GetTimestamp();
        await Task.WhenAll(spec.Layers.Select(async layer =>
        {
            await slots.WaitAsync();
            try
            {
                await using var body = await client.GetStreamAsync(new Uri(registry.BaseUri, $"v2/{Repository}/blobs/{layer.Digest}"));
                await body.CopyToAsync(Stream.Null, 1 << 17);
            }
            finally
            {
                slots.Release();
            }
        }));
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    // The same pull as the daemon's, in this process (no gRPC): wall time, and the CPU time this process spent.
    private static async Task PrintInProcessPullsAsync(RegistryServer registry, string scratch)
    {
        Console.WriteLine("## nacelle's pull in process (ImageManager, as the daemon runs it), fresh store each time");
        Console.WriteLine();
        Table.Header("run", "wall ms", "cpu ms (this process)");
        for (var i = 0; i < 3; i++)
        {
            var root = Directory.CreateDirectory(Path.Combine(scratch, $"pull-{Guid.NewGuid():N}")).FullName;
            try
            {
                using var images = new ImageManager(new ImageServiceOptions { Root = root }, new MetadataDatabase(Path.Combine(root, "metadata.db")),
                    NullLoggerFactory.Instance);
                var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                var start = Stopwatch.GetTimestamp();
                await images.PullAsync($"{registry.Host}/{Repository}:{Tag}", null, CancellationToken.None);
                var wall = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                var used = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds;
                Table.Row((i + 1).ToString(CultureInfo.InvariantCulture), Table.F(wall, 0), Table.F(used, 0));
            }
            finally
            {
                Directory.Delete(root, recursive: true); // root may delete in read-only directories
            }
        }

        Console.WriteLine();
    }
}

/// <summary>A busy-loop process (one core's worth of CPU), started and stopped by pid.</summary>
internal sealed class CpuHog : IDisposable
{
    private readonly Process _process;

    private CpuHog(Process process) => _process = process;

    public static CpuHog Start()
    {
        var process = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", "while :; do :; done"]) { UseShellExecute = false })!;
        Console.Error.WriteLine($"CPU hog started: pid {process.Id}");
        return new CpuHog(process);
    }

    public void Dispose()
    {
        _process.Kill(); // this pid only
        _process.WaitForExit();
        _process.Dispose();
    }
}
