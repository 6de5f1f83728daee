using System.Diagnostics;
using Grpc.Core;
using Runtime.V1;

namespace Nacelle.Bench.Cri;

/// <summary>
/// Where the daemon's memory goes and whether it comes back: its RSS and anonymous memory once ready (Version and Status answered) and
/// after 100 Version calls, after a round
/// of pods (30 pods with a container each, their status, stats and an exec, then removed), right after a burst of hostile
/// requests (1 MB strings, 10,000 annotations, labels, env vars or selector entries, each kind <see cref="BenchOptions.Hostile"/>
/// times; refused or served, whatever the daemon answers) and once it was left alone for <see cref="BenchOptions.Settle"/>.
/// containerd goes through the same steps for reference.
/// </summary>
internal static class MemoryBenchmark
{
    private const int RoundPods = 30;
    private const int Many = 10_000;
    private static readonly string Megabyte = new('x', 1 << 20);

    public static async Task RunAsync(BenchOptions options, CriSession nacelle)
    {
        // Before anything else touches the daemon (containerd's is read after the images are pulled into it).
        var fresh = new Dictionary<string, Reading[]> { ["nacelle"] = await FreshAsync(nacelle, options.DaemonPid) };

        await using var runtimes = await ComparedRuntimes.StartAsync(options, nacelle);
        if (runtimes.All.Count > 1)
        {
            fresh[runtimes.All[1].Name] = await FreshAsync(runtimes.All[1].Cri, runtimes.All[1].DaemonPid);
        }

        var rows = new List<(string Name, Reading[] Mb, Dictionary<StatusCode, int> Answers)>();
        foreach (var runtime in runtimes.All)
        {
            await RoundAsync(runtime.Cri, runtimes.Image);
            var before = await SettledRssAsync(runtime, TimeSpan.FromSeconds(5));
            KeepSmaps(runtime, "before");
            var answers = await BurstAsync(runtime.Cri, runtimes.Image, options.Hostile);
            var after = Reading.Of(runtime.DaemonPid);
            KeepSmaps(runtime, "after");
            var settled = await SettledRssAsync(runtime, options.Settle);
            KeepSmaps(runtime, "settled");
            rows.Add((runtime.Name, [.. fresh[runtime.Name], before, after, settled], answers));
            Console.Error.WriteLine(FormattableString.Invariant($"{runtime.Name}: {before.Rss:F1} MB before the burst, {after.Rss:F1} after, {settled.Rss:F1} settled"));
        }

        Console.WriteLine();
        Console.WriteLine("## Daemon memory: fresh, after a round of pods, after hostile requests, settled");
        Console.WriteLine();
        Console.WriteLine(await Machine.DescribeAsync(options.Runc));
        Console.WriteLine(FormattableString.Invariant(
            $"Round: {RoundPods} pods with a busybox container each, status, stats and an exec each, removed. Burst: {options.Hostile} requests of each"));
        Console.WriteLine("hostile kind (1 MB strings in names, ids, images, commands and label values; 10,000 annotations, labels, env vars or");
        Console.WriteLine(FormattableString.Invariant($"selector entries). Settled: {options.Settle.TotalSeconds:F0} s later, after a few Version calls. Ready: once it answered Version and Status (before the 100 calls)."));
        Console.WriteLine("Each cell: VmRSS / anonymous memory (smaps_rollup) of the daemon, MB. Anonymous memory is the daemon's own; RSS also");
        Console.WriteLine("counts the executable's and libraries' file pages it has mapped, which it gives back when left alone.");
        Console.WriteLine();
        Table.Header("runtime", "ready", "after 100 Version calls", "after the round", "right after the burst", "settled",
            "settled / after the round", "answers to the burst");
        foreach (var (name, mb, answers) in rows)
        {
            Table.Row(name, mb[0].Cell, mb[1].Cell, mb[2].Cell, mb[3].Cell, mb[4].Cell,
                Table.F(mb[4].Rss / mb[2].Rss, 2) + "x / " + Table.F(mb[4].Anonymous / mb[2].Anonymous, 2) + "x",
                string.Join(", ", answers.OrderBy(a => a.Key).Select(a => $"{a.Key} {a.Value}")));
        }

        Console.WriteLine();
    }

    /// <summary>With MEMORY_SMAPS_DIR set, keeps a copy of the daemon's /proc/pid/smaps at each step (name-step.smaps), to
    /// find by mapping what a step left behind.</summary>
    private static void KeepSmaps(RuntimeUnderTest runtime, string step)
    {
        if (Environment.GetEnvironmentVariable("MEMORY_SMAPS_DIR") is { Length: > 0 } dir)
        {
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, $"{runtime.Name}-{step}.smaps"), File.ReadAllText($"/proc/{runtime.DaemonPid}/smaps"));
        }
    }

    /// <summary>Once ready (the readiness wait called Version and Status), then after 100 Version calls.</summary>
    private static async Task<Reading[]> FreshAsync(CriSession cri, int pid)
    {
        var started = Reading.Of(pid);
        for (var i = 0; i < 100; i++)
        {
            await cri.Runtime.VersionAsync(new VersionRequest());
        }

        await Task.Delay(TimeSpan.FromSeconds(2));
        return [started, Reading.Of(pid)];
    }

    /// <summary>One reading of a process's memory, MB.</summary>
    private readonly record struct Reading(double Rss, double Anonymous)
    {
        public static Reading Of(int pid) => new(Memory.RssMb(pid), Memory.AnonymousMb(pid));

        public string Cell => Table.F(Rss) + " / " + Table.F(Anonymous);
    }

    private static async Task<Reading> SettledRssAsync(RuntimeUnderTest runtime, TimeSpan settle)
    {
        await Task.Delay(settle);
        for (var i = 0; i < 10; i++)
        {
            await runtime.Cri.Runtime.VersionAsync(new VersionRequest());
        }

        await Task.Delay(TimeSpan.FromSeconds(1));
        return Reading.Of(runtime.DaemonPid);
    }

    /// <summary>Pods with a container each, what kubelet asks of them, then removed.</summary>
    private static async Task RoundAsync(CriSession cri, string image)
    {
        var clock = Stopwatch.StartNew();
        var pods = new List<string>();
        for (var i = 0; i < RoundPods; i++)
        {
            var config = cri.PodConfig($"mem-{i}");
            Directory.CreateDirectory(config.LogDirectory);
            var pod = (await cri.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config })).PodSandboxId;
            pods.Add(pod);
            var container = (await cri.Runtime.CreateContainerAsync(new CreateContainerRequest
            {
                PodSandboxId = pod, Config = CriSession.ContainerConfig("app", image), SandboxConfig = config,
            })).ContainerId;
            await cri.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = container });
            await cri.Runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = container, Cmd = { "true" }, Timeout = 10 });
            await cri.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = container, Verbose = true });
            await cri.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = pod, Verbose = true });
        }

        await cri.Runtime.ListContainerStatsAsync(new ListContainerStatsRequest());
        await cri.Runtime.ListPodSandboxStatsAsync(new ListPodSandboxStatsRequest());
        await cri.Images.ImageFsInfoAsync(new ImageFsInfoRequest());
        foreach (var pod in pods)
        {
            await cri.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod });
            await cri.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod });
        }

        Console.Error.WriteLine(FormattableString.Invariant($"round of {RoundPods} pods in {clock.Elapsed.TotalSeconds:F1} s"));
    }

    /// <summary>The hostile requests, with one pod and container to aim them at; returns how they were answered.</summary>
    private static async Task<Dictionary<StatusCode, int>> BurstAsync(CriSession cri, string image, int each)
    {
        var answers = new Dictionary<StatusCode, int>();
        var config = cri.PodConfig("mem-target");
        Directory.CreateDirectory(config.LogDirectory);
        var pod = (await cri.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config })).PodSandboxId;
        var container = (await cri.Runtime.CreateContainerAsync(new CreateContainerRequest
        {
            PodSandboxId = pod, Config = CriSession.ContainerConfig("app", image), SandboxConfig = config,
        })).ContainerId;
        await cri.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = container });
        var made = new List<string>();

        async Task Call(Func<Task> call)
        {
            try
            {
                await call();
                answers[StatusCode.OK] = answers.GetValueOrDefault(StatusCode.OK) + 1;
            }
            catch (RpcException e)
            {
                answers[e.StatusCode] = answers.GetValueOrDefault(e.StatusCode) + 1;
            }
        }

        for (var i = 0; i < each; i++)
        {
            var annotated = cri.PodConfig($"mem-annotated-{i}");
            for (var a = 0; a < Many; a++)
            {
                annotated.Annotations[$"example.com/annotation-{a}"] = "value-" + a;
            }

            await Call(async () => made.Add((await cri.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = annotated })).PodSandboxId));
            var named = cri.PodConfig(Megabyte);
            await Call(async () => made.Add((await cri.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = named })).PodSandboxId));

            var labelled = CriSession.ContainerConfig($"labelled-{i}", image);
            labelled.Labels["big"] = Megabyte;
            for (var e = 0; e < Many; e++)
            {
                labelled.Envs.Add(new KeyValue { Key = $"VAR_{e}", Value = Google.Protobuf.ByteString.CopyFromUtf8("value") });
            }

            await Call(async () => await cri.Runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = labelled, SandboxConfig = config }));
            var huge = CriSession.ContainerConfig($"huge-{i}", image);
            huge.Command.Add(Megabyte);
            await Call(async () => await cri.Runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = huge, SandboxConfig = config }));

            var selector = new ContainerFilter();
            for (var l = 0; l < Many; l++)
            {
                selector.LabelSelector[$"label-{l}"] = "value";
            }

            await Call(async () => await cri.Runtime.ListContainersAsync(new ListContainersRequest { Filter = selector }));
            await Call(async () => await cri.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = Megabyte }));
            await Call(async () => await cri.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = Megabyte } }));
            await Call(async () => await cri.Runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = container, Cmd = { "echo", Megabyte }, Timeout = 10 }));
        }

        // Whatever the daemon accepted goes, with the target pod.
        foreach (var id in made.Append(pod))
        {
            await cri.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = id });
            await cri.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id });
        }

        return answers;
    }
}
