using System.Diagnostics;
using Google.Protobuf;
using Nacelle.Tests.Support.Registry;
using Runtime.V1;

namespace Nacelle.Bench.Cri;

/// <summary>
/// Containers through the CRI socket against the runc reference, interleaved per iteration. One iteration: RunPodSandbox
/// + CreateContainer (<c>sleep 3600</c> from a busybox image pulled once from a loopback registry) + StartContainer, timed
/// as one "pod+container start" and in parts, then ExecSync of <c>echo hi</c>; the teardown (StopContainer,
/// RemoveContainer, StopPodSandbox, RemovePodSandbox) is timed separately. An rpc answering Unimplemented skips its rows.
/// </summary>
internal static class ContainersBenchmark
{
    public static async Task RunAsync(BenchOptions options, CriSession cri, RuncReference reference)
    {
        // The image: Debian's docker-registry on 127.0.0.1 (killed by pid when disposed; its pid is also written for the
        // script's trap in case this program dies), with the busybox test image the end-to-end tests use.
        await using var registry = await RegistryServer.StartAsync();
        if (options.RegistryPidFile is not null)
        {
            await File.WriteAllTextAsync(options.RegistryPidFile, registry.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        using (var pusher = registry.CreatePusher())
        {
            await TestImages.PushBusyboxAsync(pusher, "bench/busybox", "latest");
        }

        var image = $"{registry.Host}/bench/busybox:latest";
        var p0 = Stopwatch.GetTimestamp();
        await cri.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = image } });
        var pullMs = Stopwatch.GetElapsedTime(p0).TotalMilliseconds;

        var s = new Dictionary<string, Samples>();
        Samples S(string name) => s.TryGetValue(name, out var v) ? v : s[name] = new Samples();

        for (var i = 0; i < options.Warmup + options.Iterations; i++)
        {
            var measured = i >= options.Warmup;
            var m = new Dictionary<string, double>();
            await NacelleIterationAsync(cri, image, i, m);
            await ReferenceIterationAsync(reference, i, m);
            if (measured)
            {
                foreach (var (name, ms) in m)
                {
                    S(name).Add(ms);
                }
            }

            Console.Error.WriteLine($"{(measured ? "run" : "warm-up")} {i + 1}: " +
                string.Join(", ", m.Select(kv => FormattableString.Invariant($"{kv.Key} {kv.Value:F1}"))));
        }

        Console.WriteLine();
        Console.WriteLine($"## Containers through the CRI socket: {options.Iterations} iterations after {options.Warmup} warm-ups, interleaved");
        Console.WriteLine();
        Console.WriteLine(await Machine.DescribeAsync(options.Runc));
        Console.WriteLine(FormattableString.Invariant($"Image {image} (busybox-static), PullImage once: {pullMs:F1} ms. Container: `sleep 3600`."));
        Console.WriteLine("Reference (runc by hand): the pod as in bench/pods.sh (netns, CNI ADD, `runc run -d` of a pause container), then");
        Console.WriteLine("`runc create` (config.json written, joining the pause container's net/ipc/uts namespaces) and `runc start`;");
        Console.WriteLine("exec: `runc exec <id> echo hi`. Ratio: median / reference median (below 1: nacelle is faster).");
        Console.WriteLine();
        Table.Header("operation", "median ms", "p90 ms", "vs reference");
        Row("pod+container start (RunPodSandbox + CreateContainer + StartContainer)", "total", "ref total", ["CreateContainer", "StartContainer"]);
        Row("  RunPodSandbox", "RunPodSandbox", "ref pod", []);
        Row("  CreateContainer", "CreateContainer", "ref create", ["CreateContainer"]);
        Row("  StartContainer", "StartContainer", "ref start", ["StartContainer"]);
        Row("ExecSync (echo hi)", "ExecSync", "ref exec", ["ExecSync"]);
        Row("teardown (StopContainer + RemoveContainer + StopPodSandbox + RemovePodSandbox)", "teardown", "ref teardown", []);
        Row("reference: pod (netns + CNI ADD + runc run -d)", "ref pod", "ref pod", []);
        Row("reference: runc create", "ref create", "ref create", []);
        Row("reference: runc start", "ref start", "ref start", []);
        Row("reference: pod+container start", "ref total", "ref total", []);
        Row("reference: runc exec echo hi", "ref exec", "ref exec", []);
        Row("reference: teardown (2x runc delete --force + CNI DEL + netns del)", "ref teardown", "ref teardown", []);
        Console.WriteLine();
        Console.WriteLine("containerd 1.6, stated (not measured here): RunPodSandbox ~170 ms, CreateContainer ~14 ms, StartContainer ~90 ms,");
        Console.WriteLine("pod+container from scratch ~430 ms.");

        void Row(string label, string name, string referenceName, string[] rpcs)
        {
            var skipped = rpcs.FirstOrDefault(cri.IsUnimplemented);
            if (skipped is not null)
            {
                Table.Row(label, $"skipped: {skipped} unimplemented", "-", "-");
                return;
            }

            Table.LatencyRow(label, S(name), S(referenceName));
        }
    }

    /// <summary>One nacelle pod with one container, its phases written to <paramref name="m"/>.</summary>
    private static async Task NacelleIterationAsync(CriSession cri, string image, int i, Dictionary<string, double> m)
    {
        var runtime = cri.Runtime;
        var config = cri.PodConfig($"ctr-{i}");
        Directory.CreateDirectory(config.LogDirectory);

        var t0 = Stopwatch.GetTimestamp();
        var podId = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config })).PodSandboxId;
        var t1 = Stopwatch.GetTimestamp();
        m["RunPodSandbox"] = Ms(t0, t1);

        string? containerId = null;
        var created = await cri.TryAsync("CreateContainer", async () => containerId = (await runtime.CreateContainerAsync(new CreateContainerRequest
        {
            PodSandboxId = podId,
            Config = CriSession.ContainerConfig("sleeper", image),
            SandboxConfig = config,
        })).ContainerId);
        var t2 = Stopwatch.GetTimestamp();
        var started = created && await cri.TryAsync("StartContainer", async () =>
            await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = containerId }));
        var t3 = Stopwatch.GetTimestamp();
        if (created)
        {
            m["CreateContainer"] = Ms(t1, t2);
        }

        if (started)
        {
            m["StartContainer"] = Ms(t2, t3);
            m["total"] = Ms(t0, t3);
            ExecSyncResponse? exec = null;
            var e0 = Stopwatch.GetTimestamp();
            if (await cri.TryAsync("ExecSync", async () =>
                    exec = await runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = containerId, Cmd = { "echo", "hi" }, Timeout = 10 })))
            {
                m["ExecSync"] = Stopwatch.GetElapsedTime(e0).TotalMilliseconds;
                if (exec!.ExitCode != 0 || exec.Stdout != ByteString.CopyFromUtf8("hi\n"))
                {
                    throw new InvalidOperationException($"ExecSync echo hi: exit {exec.ExitCode}, stdout '{exec.Stdout.ToStringUtf8()}'");
                }
            }
        }

        // Teardown, timed apart: the container killed at once (timeout 0), then the pod.
        var d0 = Stopwatch.GetTimestamp();
        if (containerId is not null)
        {
            await cri.TryAsync("StopContainer", async () =>
                await runtime.StopContainerAsync(new StopContainerRequest { ContainerId = containerId, Timeout = 0 }));
            await cri.TryAsync("RemoveContainer", async () =>
                await runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = containerId }));
        }

        await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId });
        await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId });
        m["teardown"] = Stopwatch.GetElapsedTime(d0).TotalMilliseconds;
    }

    /// <summary>The same by hand with runc.</summary>
    private static async Task ReferenceIterationAsync(RuncReference reference, int i, Dictionary<string, double> m)
    {
        var t0 = Stopwatch.GetTimestamp();
        var pod = await reference.RunPodAsync($"ctr{i}");
        var t1 = Stopwatch.GetTimestamp();
        await reference.CreateContainerAsync(pod, "sleeper");
        var t2 = Stopwatch.GetTimestamp();
        await reference.StartContainerAsync(pod, "sleeper");
        var t3 = Stopwatch.GetTimestamp();
        await reference.ExecAsync(pod, "sleeper");
        var t4 = Stopwatch.GetTimestamp();
        await reference.DeleteContainerAsync(pod, "sleeper");
        await reference.RemovePodAsync(pod);
        var t5 = Stopwatch.GetTimestamp();
        m["ref pod"] = Ms(t0, t1);
        m["ref create"] = Ms(t1, t2);
        m["ref start"] = Ms(t2, t3);
        m["ref total"] = Ms(t0, t3);
        m["ref exec"] = Ms(t3, t4);
        m["ref teardown"] = Ms(t4, t5);
    }

    private static double Ms(long from, long to) => Stopwatch.GetElapsedTime(from, to).TotalMilliseconds;
}
