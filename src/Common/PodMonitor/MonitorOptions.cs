using System.Text;

namespace Nacelle.Common.PodMonitor;

/// <summary>
/// Where one pod's nacelle-monitor keeps its state and listens: what the daemon's launcher passes on the monitor's
/// command line and the monitor parses back (<see cref="ToArguments"/>, <see cref="Parse"/>).
/// </summary>
public sealed record MonitorOptions
{
    public required string PodId { get; init; }

    /// <summary>The pod's monitor directory (volatile, under /run): monitor.sock, containers/, exits/.</summary>
    public required string Directory { get; init; }

    /// <summary>The cgroup parent of the pod's containers (kubelet's pod cgroup); null: ContainerCore's default.</summary>
    public string? CgroupParent { get; init; }

    /// <summary>The monitor's socket (default: monitor.sock in <see cref="Directory"/>). Unix socket paths are limited to
    /// 107 bytes, so the pod manager keeps them short.</summary>
    public string SocketPath
    {
        get => field ?? Path.Combine(Directory, "monitor.sock");
        init => field = value;
    }

    /// <summary>The fd on which the monitor inherits the daemon's sealed copy of the spawn helper (see
    /// SpawnHelperBinary.Adopt); null: the monitor makes its own copy.</summary>
    public int? SpawnHelperFd { get; init; }

    /// <summary>Refuses a socket path the kernel cannot bind (sun_path holds 108 bytes with its NUL).</summary>
    public void CheckSocketPath()
    {
        if (Encoding.UTF8.GetByteCount(SocketPath) > 107)
        {
            throw NacelleException.InvalidArgument($"monitor socket path '{SocketPath}' is longer than the 107 bytes a unix socket path may have");
        }
    }

    /// <summary>The usage line of nacelle-monitor.</summary>
    public const string Usage = "usage: nacelle-monitor --pod <id> --dir <directory> [--cgroup-parent <path>] [--socket <path>] [--spawn-helper-fd <fd>]";

    /// <summary>The monitor's command-line arguments for these options (after the program name).</summary>
    public IReadOnlyList<string> ToArguments()
    {
        var argv = new List<string> { "--pod", PodId, "--dir", Directory, "--socket", SocketPath };
        if (CgroupParent is { } parent)
        {
            argv.AddRange(["--cgroup-parent", parent]);
        }

        if (SpawnHelperFd is { } fd)
        {
            argv.AddRange(["--spawn-helper-fd", fd.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        }

        return argv;
    }

    /// <summary>Parses the monitor's command line; throws InvalidArgument naming what is wrong (the caller prints
    /// <see cref="Usage"/>).</summary>
    public static MonitorOptions Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        string? pod = null, dir = null, cgroupParent = null, socket = null;
        int? helperFd = null;
        for (var i = 0; i < args.Count; i += 2)
        {
            if (i + 1 >= args.Count)
            {
                throw NacelleException.InvalidArgument($"option {args[i]} needs a value");
            }

            switch (args[i])
            {
                case "--pod": pod = args[i + 1]; break;
                case "--dir": dir = args[i + 1]; break;
                case "--cgroup-parent": cgroupParent = args[i + 1]; break;
                case "--socket": socket = args[i + 1]; break;
                case "--spawn-helper-fd":
                    helperFd = int.TryParse(args[i + 1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var fd) && fd > 2
                        ? fd
                        : throw NacelleException.InvalidArgument($"--spawn-helper-fd needs an fd number above 2, not '{args[i + 1]}'");
                    break;
                default: throw NacelleException.InvalidArgument($"unknown option {args[i]}");
            }
        }

        if (pod is null || dir is null)
        {
            throw NacelleException.InvalidArgument("--pod and --dir are required");
        }

        var options = new MonitorOptions { PodId = pod, Directory = dir, CgroupParent = cgroupParent, SpawnHelperFd = helperFd };
        return socket is null ? options : options with { SocketPath = socket };
    }
}
