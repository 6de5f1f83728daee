using System.Diagnostics;
using Runtime.V1;

namespace Nacelle.Bench.Cri;

/// <summary>
/// The load kubelet puts on a runtime in steady state, with N pods of one busybox <c>sleep</c> container each (kubelet's
/// pod config: pod network on the test bridge, per-container pid namespace, a log directory):
/// - every second, the relist: ListPodSandbox, then ListContainers (PLEG);
/// - every 10 s, the stats: ListContainerStats, ListPodSandboxStats, ImageFsInfo (eviction manager, summary API) and
///   ListImages (node status);
/// - every 10 s for each pod, spread evenly over the period: an exec probe (ExecSync <c>true</c>), PodSandboxStatus and
///   ContainerStatus (the pod worker's status).
/// For each pod count, each runtime alone on the machine in turn (its pods made untimed, the load run for the duration,
/// its pods removed): per-rpc p50 and p99, runtime CPU (the daemon plus its per-pod processes, from /proc/PID/stat, their
/// reaped children included), the daemon's RSS over the run and the per-pod processes' PSS.
/// </summary>
internal static class KubeletLoadBenchmark
{
    private static readonly TimeSpan StatsPeriod = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan RelistPeriod = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan RssPeriod = TimeSpan.FromSeconds(5);

    private static readonly string[] Rpcs =
    [
        "ListPodSandbox", "ListContainers", "PodSandboxStatus", "ContainerStatus", "ExecSync", "ListContainerStats",
        "ListPodSandboxStats", "ImageFsInfo", "ListImages",
    ];

    public static async Task RunAsync(BenchOptions options, CriSession nacelle)
    {
        await using var runtimes = await ComparedRuntimes.StartAsync(options, nacelle);
        foreach (var pods in options.PodCounts)
        {
            var runs = new List<LoadResult>();
            foreach (var runtime in runtimes.All)
            {
                var clock = Stopwatch.StartNew();
                try
                {
                    runs.Add(await RunOnceAsync(runtime, runtimes.Image, pods, options.Duration));
                }
                catch (Exception e) when (runs.Count > 0)
                {
                    // A reference that fails late (an hour-long run) must not take the runs measured before it along.
                    Print(options, pods, runs);
                    Console.Error.WriteLine(FormattableString.Invariant(
                        $"{runtime.Name} failed {clock.Elapsed.TotalSeconds:F0} s into its run, after the runs above: {e.Message}"));
                    throw;
                }
            }

            Print(options, pods, runs);
        }

        Console.WriteLine(await Machine.DescribeAsync(options.Runc));
    }

    private static async Task<LoadResult> RunOnceAsync(RuntimeUnderTest runtime, string image, int podCount, TimeSpan duration)
    {
        var cri = runtime.Cri;
        var clock = Stopwatch.StartNew();
        var pods = new List<(string Pod, string Container)>();
        var processes = new List<int>();
        try
        {
            for (var i = 0; i < podCount; i++)
            {
                var (podId, containerId) = await cri.RunSleepingPodAsync($"load-{podCount}-{i}", image);
                pods.Add((podId, containerId));
                processes.AddRange(await runtime.PodProcessesAsync(podId));
            }

            Console.Error.WriteLine(FormattableString.Invariant(
                $"{runtime.Name}: {podCount} pods in {clock.Elapsed.TotalSeconds:F1} s; load for {duration.TotalSeconds:F0} s"));
            return await LoadAsync(runtime, pods, processes, duration);
        }
        finally
        {
            foreach (var (pod, _) in pods)
            {
                await cri.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod });
                await cri.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod });
            }
        }
    }

    private static async Task<LoadResult> LoadAsync(RuntimeUnderTest runtime, List<(string Pod, string Container)> pods, List<int> processes,
        TimeSpan duration)
    {
        var cri = runtime.Cri;
        var result = new LoadResult(runtime.Name, processes.Count);
        using var stop = new CancellationTokenSource(duration);
        var daemonCpu0 = ProcessCpu.Seconds(runtime.DaemonPid);
        var podCpu0 = processes.Sum(ProcessCpu.Seconds);
        var wall = Stopwatch.StartNew();

        async Task Timed(string rpc, Func<Task> call)
        {
            var start = Stopwatch.GetTimestamp();
            await call();
            result.Record(rpc, Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }

        async Task Every(TimeSpan period, Func<Task> work)
        {
            using var timer = new PeriodicTimer(period);
            do
            {
                await work();
            }
            while (await WaitAsync(timer, stop.Token));
        }

        var relist = Every(RelistPeriod, async () =>
        {
            await Timed("ListPodSandbox", async () => await cri.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest()));
            await Timed("ListContainers", async () => await cri.Runtime.ListContainersAsync(new ListContainersRequest()));
        });
        var stats = Every(StatsPeriod, async () =>
        {
            await Timed("ListContainerStats", async () => await cri.Runtime.ListContainerStatsAsync(new ListContainerStatsRequest()));
            await Timed("ListPodSandboxStats", async () => await cri.Runtime.ListPodSandboxStatsAsync(new ListPodSandboxStatsRequest()));
            await Timed("ImageFsInfo", async () => await cri.Images.ImageFsInfoAsync(new ImageFsInfoRequest()));
            await Timed("ListImages", async () => await cri.Images.ListImagesAsync(new ListImagesRequest()));
        });
        var rss = Every(RssPeriod, () =>
        {
            result.Rss.Add((wall.Elapsed, Memory.RssMb(runtime.DaemonPid)));
            return Task.CompletedTask;
        });

        // The pod workers: pod i's probe and status at i/N of every period, each pod's calls one after the other (as one
        // pod worker makes them), the pods' concurrently (as kubelet's pod workers and probers run).
        var workers = new List<Task>();
        var next = 0;
        var slot = StatsPeriod / pods.Count;
        var podTimer = Every(slot, () =>
        {
            var (pod, container) = pods[next++ % pods.Count];
            workers.RemoveAll(t => t.IsCompleted);
            workers.Add(Task.Run(async () =>
            {
                await Timed("ExecSync", async () =>
                {
                    var exec = await cri.Runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = container, Cmd = { "true" }, Timeout = 10 });
                    if (exec.ExitCode != 0)
                    {
                        throw new InvalidOperationException($"{runtime.Name}: probe `true` in {container} exited with {exec.ExitCode}");
                    }
                });
                await Timed("PodSandboxStatus", async () => await cri.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = pod }));
                await Timed("ContainerStatus", async () => await cri.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = container }));
            }));
            return Task.CompletedTask;
        });

        await Task.WhenAll(relist, stats, rss, podTimer);
        await Task.WhenAll(workers);
        result.WallSeconds = wall.Elapsed.TotalSeconds;
        result.DaemonCpuSeconds = ProcessCpu.Seconds(runtime.DaemonPid) - daemonCpu0;
        result.PodCpuSeconds = processes.Sum(ProcessCpu.Seconds) - podCpu0;
        result.PodPssMb = processes.Sum(pid => File.Exists($"/proc/{pid}/smaps_rollup") ? Memory.PssMb(pid) : 0);
        result.Rss.Add((wall.Elapsed, Memory.RssMb(runtime.DaemonPid)));
        return result;
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken cancellationToken)
    {
        try
        {
            return await timer.WaitForNextTickAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private static void Print(BenchOptions options, int pods, List<LoadResult> runs)
    {
        Console.WriteLine();
        Console.WriteLine(FormattableString.Invariant(
            $"## kubelet-shaped load, {pods} pods with one container each, {options.Duration.TotalSeconds:F0} s per runtime"));
        Console.WriteLine();
        Console.WriteLine("Relist every 1 s (ListPodSandbox + ListContainers); every 10 s ListContainerStats, ListPodSandboxStats, ImageFsInfo,");
        Console.WriteLine("ListImages; every 10 s per pod ExecSync `true`, PodSandboxStatus, ContainerStatus. Each runtime alone in turn,");
        Console.WriteLine("one CRI client. containerd 1.6 with its CRI plugin and runc (bench/reference/containerd.sh).");
        Console.WriteLine();
        var columns = new List<string> { "rpc" };
        foreach (var run in runs)
        {
            columns.Add($"{run.Runtime} p50 ms");
            columns.Add($"{run.Runtime} p99 ms");
        }

        if (runs.Count > 1)
        {
            columns.Add("p50 ratio");
        }

        Table.Header([.. columns]);
        foreach (var rpc in Rpcs)
        {
            var cells = new List<string> { $"{rpc} ({runs[0].Samples(rpc).Count} calls)" };
            foreach (var run in runs)
            {
                cells.Add(Table.F(run.Samples(rpc).Median, 3));
                cells.Add(Table.F(run.Samples(rpc).Percentile(0.99), 3));
            }

            if (runs.Count > 1)
            {
                cells.Add(Table.F(runs[0].Samples(rpc).Median / runs[1].Samples(rpc).Median, 2) + "x");
            }

            Table.Row([.. cells]);
        }

        Console.WriteLine();
        Table.Header(["", .. runs.Select(r => r.Runtime), .. runs.Count > 1 ? new[] { "ratio" } : []]);
        Line("runtime CPU, % of one core (daemon + per-pod processes)", r => r.TotalCpuPercent, 2);
        Line("  daemon", r => r.DaemonCpuSeconds / r.WallSeconds * 100, 2);
        Line("  per-pod processes (monitor + pause-init; shim + pause)", r => r.PodCpuSeconds / r.WallSeconds * 100, 2);
        Line("daemon RSS MB at the start of the load", r => r.Rss[0].Mb, 1);
        Line("daemon RSS MB at the end", r => r.Rss[^1].Mb, 1);
        Line("daemon RSS MB max", r => r.Rss.Max(s => s.Mb), 1);
        Line("daemon RSS growth, first to last window (a sixth of the run, at most 10 min), %", r => r.RssGrowthPercent, 1);
        Line("per-pod processes PSS MB, all pods", r => r.PodPssMb, 1);
        Console.WriteLine();

        void Line(string label, Func<LoadResult, double> value, int decimals)
        {
            var cells = new List<string> { label };
            cells.AddRange(runs.Select(r => Table.F(value(r), decimals)));
            if (runs.Count > 1)
            {
                cells.Add(Table.F(value(runs[0]) / value(runs[1]), 2) + "x");
            }

            Table.Row([.. cells]);
        }
    }

    private sealed class LoadResult(string runtime, int processCount)
    {
        private readonly Dictionary<string, Samples> _samples = new(StringComparer.Ordinal);

        public string Runtime => runtime;

        public int ProcessCount => processCount;

        public double WallSeconds { get; set; }

        public double DaemonCpuSeconds { get; set; }

        public double PodCpuSeconds { get; set; }

        public double PodPssMb { get; set; }

        public double TotalCpuPercent => (DaemonCpuSeconds + PodCpuSeconds) / WallSeconds * 100;

        public List<(TimeSpan At, double Mb)> Rss { get; } = [];

        /// <summary>Mean RSS of the last window over the first's, as a growth in percent.</summary>
        public double RssGrowthPercent
        {
            get
            {
                var end = Rss[^1].At;
                var window = TimeSpan.FromTicks(Math.Min(TimeSpan.FromMinutes(10).Ticks, end.Ticks / 6));
                var first = Rss.Where(s => s.At <= window).Select(s => s.Mb).DefaultIfEmpty(double.NaN).Average();
                var last = Rss.Where(s => s.At >= end - window).Select(s => s.Mb).DefaultIfEmpty(double.NaN).Average();
                return (last / first - 1) * 100;
            }
        }

        public Samples Samples(string rpc)
        {
            lock (_samples)
            {
                return _samples.TryGetValue(rpc, out var s) ? s : _samples[rpc] = new Samples();
            }
        }

        public void Record(string rpc, double ms)
        {
            var samples = Samples(rpc);
            lock (samples)
            {
                samples.Add(ms);
            }
        }
    }
}
