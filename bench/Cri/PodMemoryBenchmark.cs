using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Nacelle.Tests.Support.Registry;
using Nacelle.Tests.Support.Streaming;
using Runtime.V1;

namespace Nacelle.Bench.Cri;

/// <summary>
/// What a pod costs in memory while it runs, nacelle against containerd 1.6 measured in the same run with one CRI
/// client: N pods of one busybox <c>sleep</c> container each; per pod, the PSS, RSS and threads of nacelle-monitor and
/// pause-init, and of containerd's containerd-shim-runc-v2 and pause (busybox <c>sleep</c> as containerd's sandbox image,
/// see bench/reference/containerd.sh). Then under load in one pod: a second container writing about 10 MB/s of log
/// lines, an ExecSync every second and an attach open (the Go SPDY client, its output thrown away), sampled every half
/// second; and once the load stopped, the same process again.
/// </summary>
internal static class PodMemoryBenchmark
{
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(5); // the monitor settles its memory 2 s after work
    private static readonly TimeSpan LoadTime = TimeSpan.FromSeconds(20);

    /// <summary>The pids of one pod: the runtime's per-pod process (monitor or shim) and the namespace holder.</summary>
    private delegate Task<(int Keeper, int Pause)> PodPids(CriSession cri, string podId);

    private sealed record Result(string Runtime, string Keeper, string Pause, Usage KeeperIdle, Usage PauseIdle, int Pods,
        Usage LoadMax, Usage AfterLoad, double LogMbPerSecond, int Execs, (double, double, IReadOnlyList<(string, double)>) Breakdown);

    public static async Task RunAsync(BenchOptions options, CriSession cri)
    {
        var (spdyClient, why) = StreamClients.SpdyClientBuild;
        if (spdyClient is null)
        {
            throw new InvalidOperationException($"the Go SPDY client cannot be built (attach under load): {why}");
        }

        await using var registry = await RegistryServer.StartAsync();
        using (var pusher = registry.CreatePusher())
        {
            await TestImages.PushBusyboxAsync(pusher, "bench/busybox", "latest");
            // containerd's sandbox image (see containerd.sh): busybox whose command sleeps, as a pause process does.
            await TestImages.PushImageAsync(pusher, "pause", "3.9",
                new TestImageSpec { Layers = [TestImages.BusyboxLayer(LayerCompression.Gzip)], Cmd = ["sleep", "2147483647"] });
        }

        var image = $"{registry.Host}/bench/busybox:latest";
        var results = new List<Result>();
        await cri.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = image } });
        results.Add(await MeasureAsync("nacelle", "nacelle-monitor", "pause-init", cri, image, options, spdyClient, NacellePidsAsync));

        if (options.ContainerdSocket is { } socket)
        {
            PullBenchmark.WriteContainerdHosts(options.ContainerdCertsDir!, registry.Host);
            using var containerd = new CriSession(socket, Path.Combine(options.Work, "containerd-logs"), options.CgroupParent + "/containerd");
            await containerd.WaitUntilAnswersAsync();
            await containerd.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = image } });
            results.Add(await MeasureAsync("containerd 1.6", "containerd-shim-runc-v2", "pause (busybox sleep)", containerd, image, options, spdyClient,
                ContainerdPids));
        }

        Print(results);
    }

    private static async Task<(int, int)> NacellePidsAsync(CriSession cri, string podId)
    {
        var (monitor, pause, _) = await cri.PodProcessesAsync(podId);
        return (monitor, pause);
    }

    /// <summary>containerd: the sandbox's pid from its verbose status; its shim is the pause process's parent.</summary>
    private static async Task<(int, int)> ContainerdPids(CriSession cri, string podId)
    {
        var status = await cri.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = podId, Verbose = true });
        using var info = JsonDocument.Parse(status.Info["info"]);
        var pause = info.RootElement.GetProperty("pid").GetInt32();
        var ppid = File.ReadLines($"/proc/{pause}/status").First(l => l.StartsWith("PPid:", StringComparison.Ordinal));
        return (int.Parse(ppid.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1].Trim(), CultureInfo.InvariantCulture), pause);
    }

    private static async Task<Result> MeasureAsync(string runtimeName, string keeperName, string pauseName, CriSession cri, string image,
        BenchOptions options, string spdyClient, PodPids pids)
    {
        var runtime = cri.Runtime;
        var pods = new List<(string Pod, PodSandboxConfig Config)>();
        try
        {
            for (var i = 0; i < options.MemoryPods; i++)
            {
                var config = cri.PodConfig($"mem-{i}");
                Directory.CreateDirectory(config.LogDirectory);
                var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config })).PodSandboxId;
                pods.Add((pod, config));
                var container = (await runtime.CreateContainerAsync(new CreateContainerRequest
                {
                    PodSandboxId = pod, Config = CriSession.ContainerConfig("sleep", image), SandboxConfig = config,
                })).ContainerId;
                await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = container });
            }

            await Task.Delay(Settle);
            Usage keepers = default, pauses = default;
            var firstKeeper = 0;
            foreach (var (pod, _) in pods)
            {
                var (keeper, pause) = await pids(cri, pod);
                firstKeeper = firstKeeper == 0 ? keeper : firstKeeper;
                keepers += Memory.Of(keeper);
                pauses += Memory.Of(pause);
            }

            var breakdown = Memory.Breakdown(firstKeeper);
            Console.Error.WriteLine(FormattableString.Invariant(
                $"{runtimeName}: {pods.Count} pods: {keeperName} {keepers.PssMb:F1} MB PSS, {keepers.RssMb:F1} MB RSS, {keepers.Threads} threads; {pauseName} {pauses.PssMb:F1} MB PSS"));

            var (loadMax, afterLoad, logRate, execs) = await LoadAsync(cri, image, pods[0].Pod, pods[0].Config, firstKeeper, spdyClient);
            return new Result(runtimeName, keeperName, pauseName, keepers.Per(pods.Count), pauses.Per(pods.Count), pods.Count, loadMax, afterLoad,
                logRate, execs, breakdown);
        }
        finally
        {
            foreach (var (pod, _) in pods)
            {
                await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod });
                await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod });
            }
        }
    }

    /// <summary>
    /// Load in one pod: a container logging about 10 MB/s (100 KB of 100-byte lines every 10 ms), an ExecSync of
    /// <c>echo hi</c> every second and an attach to the logging container, for <see cref="LoadTime"/>; the pod's
    /// <paramref name="keeper"/> sampled every 500 ms (its largest PSS, RSS and thread count), then again once the
    /// load is gone and <see cref="Settle"/> has passed.
    /// </summary>
    private static async Task<(Usage Max, Usage After, double LogMbPerSecond, int Execs)> LoadAsync(CriSession cri, string image, string pod,
        PodSandboxConfig podConfig, int keeper, string spdyClient)
    {
        var runtime = cri.Runtime;
        var logger = CriSession.ContainerConfig("logger", image);
        logger.Command.Clear();
        logger.Command.Add(["/bin/sh", "-c",
            "yes 012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678 | head -c 102400 > /tmp/b; " +
            "while :; do cat /tmp/b; usleep 10000; done"]);
        var loggerId = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = logger, SandboxConfig = podConfig }))
            .ContainerId;
        await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = loggerId });
        var sleeper = (await runtime.ListContainersAsync(new ListContainersRequest { Filter = new ContainerFilter { PodSandboxId = pod } }))
            .Containers.First(c => c.Metadata.Name == "sleep").Id;
        var logFile = Path.Combine(podConfig.LogDirectory, logger.LogPath);

        var url = (await runtime.AttachAsync(new AttachRequest { ContainerId = loggerId, Stdout = true, Stderr = true })).Url;
        var attach = Process.Start(new ProcessStartInfo(spdyClient, ["exec", "-url", url, "-stdout", "-stderr"])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        })!;
        var drain = Task.WhenAll(attach.StandardOutput.BaseStream.CopyToAsync(Stream.Null), attach.StandardError.BaseStream.CopyToAsync(Stream.Null));

        Usage max = default;
        var execs = 0;
        var startSize = File.Exists(logFile) ? new FileInfo(logFile).Length : 0;
        long logged = 0;
        var clock = Stopwatch.StartNew();
        var nextExec = TimeSpan.Zero;
        try
        {
            while (clock.Elapsed < LoadTime)
            {
                if (clock.Elapsed >= nextExec)
                {
                    var answer = await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = sleeper, Cmd = { "echo", "hi" }, Timeout = 10 });
                    execs += answer.ExitCode == 0 && answer.Stdout.ToStringUtf8() == "hi\n" ? 1 : 0;
                    nextExec += TimeSpan.FromSeconds(1);
                }

                max = max.Max(Memory.Of(keeper));
                await Task.Delay(500);
            }
        }
        finally
        {
            logged = (File.Exists(logFile) ? new FileInfo(logFile).Length : 0) - startSize;
            max = max.Max(Memory.Of(keeper));
            if (!attach.HasExited)
            {
                attach.Kill(entireProcessTree: true);
            }

            await attach.WaitForExitAsync();
            await drain;
            attach.Dispose();
            await runtime.StopContainerAsync(new StopContainerRequest { ContainerId = loggerId, Timeout = 0 });
            await runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = loggerId });
            Console.Error.WriteLine(FormattableString.Invariant($"load: {logged / 1e6 / clock.Elapsed.TotalSeconds:F1} MB/s of log, {execs} execs"));
        }

        var seconds = clock.Elapsed.TotalSeconds;
        await Task.Delay(Settle);
        return (max, Memory.Of(keeper), logged / 1e6 / seconds, execs);
    }

    private static void Print(List<Result> results)
    {
        var pods = results[0].Pods;
        Console.WriteLine($"## Memory per pod with {pods} pods of one busybox `sleep` container each (PSS from smaps_rollup, RSS and threads from status)");
        Console.WriteLine();
        Console.WriteLine("One CRI client drives both runtimes in this run. PSS divides shared pages among the processes mapping them (summed over");
        Console.WriteLine("pods it counts the shared binary once); RSS counts every mapped page in full; anon is the process's own memory, shared with");
        Console.WriteLine("no one (a process that alone maps pages its idle peers let go of is charged them in full in PSS, not in anon).");
        Console.WriteLine("memfd is memory in memfd files the process holds open (shared memory no PSS, RSS or anon shows unless mapped:");
        Console.WriteLine("the sealed copy of nacelle-spawn), divided among the processes holding each open, as PSS divides pages (the daemon");
        Console.WriteLine("hands its one copy to every monitor). Per-pod values are averages over the pods.");
        Console.WriteLine();
        Table.Header("per pod, idle", "PSS MB", "RSS MB", "threads", "anon MB", "memfd MB");
        foreach (var r in results)
        {
            Table.Row($"{r.Runtime}: {r.Keeper}", Table.F(r.KeeperIdle.PssMb, 2), Table.F(r.KeeperIdle.RssMb, 2), r.KeeperIdle.Threads.ToString(CultureInfo.InvariantCulture),
                Table.F(r.KeeperIdle.AnonymousMb, 2), Table.F(r.KeeperIdle.MemfdMb, 2));
            Table.Row($"{r.Runtime}: {r.Pause}", Table.F(r.PauseIdle.PssMb, 2), Table.F(r.PauseIdle.RssMb, 2), r.PauseIdle.Threads.ToString(CultureInfo.InvariantCulture),
                Table.F(r.PauseIdle.AnonymousMb, 2), Table.F(r.PauseIdle.MemfdMb, 2));
            var total = r.KeeperIdle + r.PauseIdle;
            Table.Row($"**{r.Runtime} total**", Table.F(total.PssMb, 2), Table.F(total.RssMb, 2), "-", Table.F(total.AnonymousMb, 2), Table.F(total.MemfdMb, 2));
        }

        if (results.Count == 2)
        {
            var n = results[0].KeeperIdle + results[0].PauseIdle;
            var c = results[1].KeeperIdle + results[1].PauseIdle;
            Table.Row("nacelle / containerd", Table.F(n.PssMb / c.PssMb, 2), Table.F(n.RssMb / c.RssMb, 2), "-", Table.F(n.AnonymousMb / c.AnonymousMb, 2), "-");
        }

        Console.WriteLine();
        Console.WriteLine($"## Under load in one pod ({LoadTime.TotalSeconds:F0} s: a container logging ~10 MB/s, ExecSync every second, an attach open), then {Settle.TotalSeconds:F0} s after it");
        Console.WriteLine();
        Table.Header("process", "log MB/s", "execs", "max PSS MB", "max RSS MB", "max anon MB", "max threads", "after: PSS MB", "RSS MB", "anon MB", "threads");
        foreach (var r in results)
        {
            Table.Row($"{r.Runtime}: {r.Keeper}", Table.F(r.LogMbPerSecond, 1), r.Execs.ToString(CultureInfo.InvariantCulture),
                Table.F(r.LoadMax.PssMb, 2), Table.F(r.LoadMax.RssMb, 2), Table.F(r.LoadMax.AnonymousMb, 2), r.LoadMax.Threads.ToString(CultureInfo.InvariantCulture),
                Table.F(r.AfterLoad.PssMb, 2), Table.F(r.AfterLoad.RssMb, 2), Table.F(r.AfterLoad.AnonymousMb, 2),
                r.AfterLoad.Threads.ToString(CultureInfo.InvariantCulture));
        }

        Console.WriteLine();
        foreach (var r in results)
        {
            var (anonymous, dirty, top) = r.Breakdown;
            Console.WriteLine(FormattableString.Invariant(
                $"Where one idle {r.Keeper}'s memory is (smaps): {anonymous:F0} kB anonymous, {dirty:F0} kB private dirty; PSS by mapping: {string.Join(", ", top.Select(t => $"{t.Item1} {t.Item2:F0} kB"))}."));
        }
    }
}
