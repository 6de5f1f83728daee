using System.Globalization;
using System.Text.Json;
using Nacelle.Tests.Support.Registry;
using Runtime.V1;

namespace Nacelle.Bench.Cri;

/// <summary>
/// One runtime of a comparison: its CRI session, its daemon's pid, and how to find the long-lived processes it keeps
/// per pod (nacelle: the pod's monitor and pause-init; containerd: the pod's shim and its pause container).
/// </summary>
internal sealed class RuntimeUnderTest(string name, CriSession cri, int daemonPid, Func<string, Task<IReadOnlyList<int>>> podProcesses)
{
    public string Name => name;

    public CriSession Cri => cri;

    public int DaemonPid => daemonPid;

    /// <summary>The pod's long-lived processes (not its containers' workloads).</summary>
    public Task<IReadOnlyList<int>> PodProcessesAsync(string podId) => podProcesses(podId);
}

/// <summary>
/// nacelle, when the script started them a second nacelle build (the baseline) and containerd 1.6 (bench/reference/containerd.sh), with a loopback registry
/// holding the busybox test image (bench/busybox:latest) and the image containerd's sandboxes use; the busybox image is
/// pulled into every runtime (untimed).
/// </summary>
internal sealed class ComparedRuntimes : IAsyncDisposable
{
    private readonly List<IDisposable> _sessions = [];

    private ComparedRuntimes(RegistryServer registry, string image)
    {
        Registry = registry;
        Image = image;
    }

    public RegistryServer Registry { get; }

    /// <summary>The busybox image, as a reference to the loopback registry.</summary>
    public string Image { get; }

    public List<RuntimeUnderTest> All { get; } = [];

    /// <summary>Starts the registry, pushes the images (plus what <paramref name="push"/> adds), pulls busybox everywhere.</summary>
    public static async Task<ComparedRuntimes> StartAsync(BenchOptions options, CriSession nacelle, Func<OciPusher, Task>? push = null)
    {
        var registry = await RegistryServer.StartAsync();
        if (options.RegistryPidFile is not null)
        {
            await File.WriteAllTextAsync(options.RegistryPidFile, registry.ProcessId.ToString(CultureInfo.InvariantCulture));
        }

        using (var pusher = registry.CreatePusher())
        {
            await TestImages.PushBusyboxAsync(pusher, "bench/busybox", "latest");
            await TestImages.PushImageAsync(pusher, "pause", "3.9", new TestImageSpec
            {
                Layers = [TestImages.BusyboxLayer()],
                Cmd = ["/bin/sleep", "2147483647"],
            });
            if (push is not null)
            {
                await push(pusher);
            }
        }

        var runtimes = new ComparedRuntimes(registry, $"{registry.Host}/bench/busybox:latest");
        runtimes.All.Add(new RuntimeUnderTest("nacelle", nacelle, options.DaemonPid, async podId =>
        {
            var (monitor, pause, _) = await nacelle.PodProcessesAsync(podId);
            return [monitor, pause];
        }));
        if (options.BaselineSocket is { } baselineSocket)
        {
            var baseline = new CriSession(baselineSocket, Path.Combine(options.Work, "logs"), options.CgroupParent + "/baseline");
            runtimes._sessions.Add(baseline);
            await baseline.WaitUntilAnswersAsync();
            runtimes.All.Add(new RuntimeUnderTest("baseline", baseline, options.BaselinePid, async podId =>
            {
                var (monitor, pause, _) = await baseline.PodProcessesAsync(podId);
                return [monitor, pause];
            }));
        }

        if (options.ContainerdSocket is { } socket)
        {
            var containerd = new CriSession(socket, Path.Combine(options.Work, "logs"), options.CgroupParent + "/containerd");
            runtimes._sessions.Add(containerd);
            PullBenchmark.WriteContainerdHosts(options.ContainerdCertsDir!, registry.Host);
            await containerd.WaitUntilAnswersAsync();
            runtimes.All.Add(new RuntimeUnderTest("containerd", containerd, options.ContainerdPid ?? 0,
                podId => ContainerdPodProcessesAsync(containerd, socket, podId)));
        }

        foreach (var runtime in runtimes.All)
        {
            await runtime.Cri.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = runtimes.Image } });
        }

        return runtimes;
    }

    /// <summary>containerd's shim of the pod (started with the sandbox's id and this containerd's socket) and its pause process.</summary>
    private static async Task<IReadOnlyList<int>> ContainerdPodProcessesAsync(CriSession containerd, string socket, string podId)
    {
        var status = await containerd.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = podId, Verbose = true });
        using var info = JsonDocument.Parse(status.Info["info"]);
        var pids = new List<int> { info.RootElement.GetProperty("pid").GetInt32() };
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            string[] argv;
            try
            {
                argv = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0');
            }
            catch (IOException)
            {
                continue; // exited meanwhile
            }

            if (argv[0].EndsWith("containerd-shim-runc-v2", StringComparison.Ordinal) && Follows(argv, "-id", podId) && Follows(argv, "-address", socket))
            {
                pids.Add(pid);
            }
        }

        return pids;
    }

    private static bool Follows(string[] argv, string flag, string value)
    {
        var i = Array.IndexOf(argv, flag);
        return i >= 0 && i + 1 < argv.Length && argv[i + 1] == value;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var session in _sessions)
        {
            session.Dispose();
        }

        await Registry.DisposeAsync();
    }
}

/// <summary>CPU time of processes from /proc/PID/stat.</summary>
internal static class ProcessCpu
{
    /// <summary>USER_HZ: the unit of /proc/PID/stat times (100 on every Linux architecture nacelle runs on).</summary>
    private const double TicksPerSecond = 100;

    /// <summary>
    /// utime + stime + cutime + cstime in seconds: the process and the children it reaped (CNI plugins for a daemon, exec
    /// processes for a monitor or shim); 0 for a process that is gone.
    /// </summary>
    public static double Seconds(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return 0;
        }

        // The command name (field 2) may hold spaces: fields are counted after its closing parenthesis.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // fields[0] is field 3 (state): utime, stime, cutime, cstime are fields 14-17.
        return Enumerable.Range(11, 4).Sum(i => double.Parse(fields[i], CultureInfo.InvariantCulture)) / TicksPerSecond;
    }
}
