using System.Globalization;

namespace Nacelle.Bench.Cri;

/// <summary>The command line: <c>pods|containers|cleanup --socket S --work DIR ...</c> (see Usage).</summary>
internal sealed class BenchOptions
{
    public const string Usage = """
        Nacelle.Bench.Cri pods|containers|pull|imagefs|streams|kubelet-load|ops|memory|hot-rpcs|cleanup --socket SOCK --work DIR
            --daemon-pid PID --cni-conflist FILE [--cni-bin DIR (/usr/lib/cni)]
            [--iterations N (30 pods, 50 containers, 10 pulls, 50 exec round trips, 20 ops)] [--warmup W (3)]
            [--memory-pods M (30)] [--forward-mib M (256: bytes per port-forward copy)] [--forward-iterations K (5)]
            [--containerd-socket SOCK --containerd-root DIR --containerd-certs DIR --containerd-pid PID: the containerd
             reference (pull, imagefs, kubelet-load, ops, memory)]
            (imagefs: --memory-pods is the number of pods, --iterations the number of ImageFsInfo calls)
            (kubelet-load: [--pod-counts 30,100] [--duration SECONDS (120)] per pod count and runtime)
            (hot-rpcs: [--pod-counts N (30): the first count], --iterations rounds (2000), [--baseline-socket SOCK
             --baseline-pid PID: a second nacelle daemon, another build, measured in the same rounds],
             [--pause-ms P (0): an idle pause before each call, so that each finds the daemon's threads asleep, as
             kubelet's paced calls do])
            (memory: [--hostile N (20)] requests of each hostile kind, [--settle SECONDS (100)] before the last reading)
        Nacelle.Bench.Cri pull-profile --work DIR: the pull's floor and stage profile alone, no daemon
            [--runc PATH (/usr/sbin/runc)] [--cgroup-parent /nacelle-bench-...] [--registry-pid-file FILE]
            [--ref-prefix P (ncb<pid>): the name prefix of the reference's netns and runc containers]
        The daemon is started (and stopped) by bench/pods.sh and bench/containers.sh; cleanup stops and removes every
        container and pod of the daemon and the runc reference's containers and netns.
        """;

    public required string Command { get; init; }

    public string Socket { get; private set; } = string.Empty;

    public string Work { get; private set; } = string.Empty;

    public int DaemonPid { get; private set; }

    public string CniConflist { get; private set; } = string.Empty;

    public string CniBinDir { get; private set; } = "/usr/lib/cni";

    public string NetworkName { get; set; } = string.Empty;

    public int Iterations { get; private set; }

    public int Warmup { get; private set; } = 3;

    public int MemoryPods { get; private set; } = 30;

    public string Runc { get; private set; } = "/usr/sbin/runc";

    public string CgroupParent { get; private set; } = "/nacelle-bench";

    public string? RegistryPidFile { get; private set; }

    public string? ContainerdSocket { get; private set; }

    /// <summary>hot-rpcs: a second nacelle daemon (another build) measured next to the first.</summary>
    public string? BaselineSocket { get; private set; }

    public int BaselinePid { get; private set; }

    /// <summary>hot-rpcs: the pause before each call (0: back to back).</summary>
    public int PauseMs { get; private set; }

    /// <summary>streams: bytes of one port-forward copy (and of its direct reference).</summary>
    public long ForwardBytes { get; private set; } = 256L << 20;

    /// <summary>streams: measured port-forward copies.</summary>
    public int ForwardIterations { get; private set; } = 5;

    public string? ContainerdRoot { get; private set; }

    public string? ContainerdCertsDir { get; private set; }

    /// <summary>The containerd reference's pid (its CPU and RSS are measured next to the daemon's).</summary>
    public int? ContainerdPid { get; private set; }

    /// <summary>kubelet-load: the numbers of pods, one run of the load for each.</summary>
    public IReadOnlyList<int> PodCounts { get; private set; } = [30, 100];

    /// <summary>kubelet-load: how long the load runs for each pod count and runtime.</summary>
    public TimeSpan Duration { get; private set; } = TimeSpan.FromSeconds(120);

    /// <summary>memory: requests of each hostile kind in the burst.</summary>
    public int Hostile { get; private set; } = 20;

    /// <summary>memory: how long the daemon is left alone after the burst before the last reading.</summary>
    public TimeSpan Settle { get; private set; } = TimeSpan.FromSeconds(100);

    /// <summary>Prefix of every netns and runc container id this run creates (unique per run, found again by cleanup).</summary>
    public string ReferencePrefix { get; private set; } = "ncb" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);

    public static BenchOptions Parse(string[] args)
    {
        if (args.Length == 0 || args[0] is not ("pods" or "containers" or "pull" or "pull-profile" or "imagefs" or "streams" or "kubelet-load" or "ops" or "memory" or "hot-rpcs" or "cleanup"))
        {
            throw new ArgumentException(Usage);
        }

        var options = new BenchOptions { Command = args[0] };
        options.Iterations = args[0] switch { "containers" or "streams" => 50, "pull" => 10, "imagefs" => 1000, "ops" => 20, "hot-rpcs" => 2000, _ => 30 };
        for (var i = 1; i < args.Length; i++)
        {
            var value = i + 1 < args.Length ? args[i + 1] : throw new ArgumentException($"{args[i]} needs a value\n{Usage}");
            switch (args[i])
            {
                case "--socket": options.Socket = value; break;
                case "--work": options.Work = value; break;
                case "--daemon-pid": options.DaemonPid = Int(value); break;
                case "--cni-conflist": options.CniConflist = value; break;
                case "--cni-bin": options.CniBinDir = value; break;
                case "--iterations": options.Iterations = Int(value); break;
                case "--warmup": options.Warmup = Int(value); break;
                case "--memory-pods": options.MemoryPods = Int(value); break;
                case "--runc": options.Runc = value; break;
                case "--cgroup-parent": options.CgroupParent = value; break;
                case "--registry-pid-file": options.RegistryPidFile = value; break;
                case "--ref-prefix": options.ReferencePrefix = value; break;
                case "--containerd-socket": options.ContainerdSocket = value; break;
                case "--baseline-socket": options.BaselineSocket = value; break;
                case "--baseline-pid": options.BaselinePid = Int(value); break;
                case "--pause-ms": options.PauseMs = Int(value); break;
                case "--forward-mib": options.ForwardBytes = (long)Int(value) << 20; break;
                case "--forward-iterations": options.ForwardIterations = Int(value); break;
                case "--containerd-root": options.ContainerdRoot = value; break;
                case "--containerd-certs": options.ContainerdCertsDir = value; break;
                case "--containerd-pid": options.ContainerdPid = Int(value); break;
                case "--pod-counts": options.PodCounts = [.. value.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(Int)]; break;
                case "--duration": options.Duration = TimeSpan.FromSeconds(Int(value)); break;
                case "--hostile": options.Hostile = Int(value); break;
                case "--settle": options.Settle = TimeSpan.FromSeconds(Int(value)); break;
                default: throw new ArgumentException($"unknown argument {args[i]}\n{Usage}");
            }

            i++;
        }

        if (options.Command == "pull-profile")
        {
            return options.Work.Length > 0 ? options : throw new ArgumentException($"--work is required\n{Usage}");
        }

        if (options.ContainerdSocket is not null && options.ContainerdCertsDir is null)
        {
            throw new ArgumentException($"--containerd-socket needs --containerd-certs\n{Usage}");
        }

        if (options.Socket.Length == 0 || options.Work.Length == 0 || options.DaemonPid == 0 || options.CniConflist.Length == 0)
        {
            throw new ArgumentException($"--socket, --work, --daemon-pid and --cni-conflist are required\n{Usage}");
        }

        return options;
    }

    private static int Int(string value) => int.Parse(value, CultureInfo.InvariantCulture);
}

/// <summary>One line describing where the numbers come from.</summary>
internal static class Machine
{
    public static async Task<string> DescribeAsync(string runc)
    {
        var cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim();
        var runcVersion = (await Processes.RunAsync(runc, ["--version"])).Stdout.Split('\n')[0];
        var cgroup = Directory.Exists("/sys/fs/cgroup/memory") ? "cgroup v1 (+ unified)" : "cgroup v2";
        return $"Machine: kernel {File.ReadAllText("/proc/sys/kernel/osrelease").Trim()}, {Environment.ProcessorCount} cores ({cpu}), {cgroup}, " +
               $"{runcVersion}, load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]} at the end.";
    }
}
