using Nacelle.ContainerCore.Interop;
using Nacelle.Tests.EndToEnd.Infrastructure;
using Nacelle.Tests.Support;

namespace Nacelle.Tests.EndToEnd.Fuzzing;

/// <summary>
/// The host seen from outside the daemon, before and after a fuzz run: which files, directories and cgroups exist in
/// the trees a hostile path could reach, the node-wide sysctls and names; and, once every pod is removed, what is left of
/// them (processes, mounts, cgroups, veths, IP reservations, iptables rules). Also the teardown that ends whatever a
/// failed run left behind.
/// </summary>
internal sealed class FuzzHost(string marker, IReadOnlyCollection<string> ownDirectories)
{
    /// <summary>Trees where any new entry is a finding (nothing else on a test machine writes there).</summary>
    private static readonly (string Root, int Depth)[] Quiet = [("/", 1), ("/etc", 2), ("/var/log", 1), ("/root", 1), ("/var/lib", 1), ("/usr", 1)];

    /// <summary>Trees other tests write to as well: only entries carrying the run's marker are findings.</summary>
    private static readonly (string Root, int Depth)[] Busy = [("/tmp", 2), ("/run", 2), ("/var/tmp", 2), ("/dev", 1), ("/dev/shm", 1), ("/sys/fs/cgroup", 3)];

    private HashSet<string> _entries = [];
    private Dictionary<string, string> _values = [];

    /// <summary>Records the quiet trees and the node-wide values.</summary>
    public void Before(IEnumerable<string> sysctls)
    {
        _entries = [.. Quiet.SelectMany(t => Walk(t.Root, t.Depth))];
        _values = Values(sysctls);
    }

    /// <summary>Every entry that appeared in a quiet tree, carries the marker anywhere, or a node-wide value that changed.</summary>
    public List<string> Changes(IEnumerable<string> sysctls, IEnumerable<string> extraTrees)
    {
        var found = new List<string>();
        foreach (var entry in Quiet.SelectMany(t => Walk(t.Root, t.Depth)).Where(e => !_entries.Contains(e)))
        {
            found.Add($"new in a system directory: {entry}");
        }

        foreach (var entry in Busy.Select(t => (t.Root, t.Depth)).Concat(Quiet).Concat(extraTrees.Select(t => (t, 3)))
                     .SelectMany(t => Walk(t.Item1, t.Item2)).Where(e => e.Contains(marker, StringComparison.Ordinal)).Distinct())
        {
            found.Add($"made from a hostile path: {entry}");
        }

        foreach (var (key, value) in Values(sysctls).Where(p => _values.GetValueOrDefault(p.Key) != p.Value))
        {
            found.Add($"{key} changed from {_values.GetValueOrDefault(key)} to {value}");
        }

        return found;
    }

    private static Dictionary<string, string> Values(IEnumerable<string> sysctls) =>
        sysctls.Append("kernel.hostname").Append("kernel.domainname")
            .Select(k => (k, path: "/proc/sys/" + k.Replace('.', '/')))
            .Where(p => File.Exists(p.path))
            .ToDictionary(p => p.k, p => File.ReadAllText(p.path).Trim(), StringComparer.Ordinal);

    private IEnumerable<string> Walk(string root, int depth)
    {
        if (depth == 0 || ownDirectories.Any(own => root == own || root.StartsWith(own + "/", StringComparison.Ordinal)))
        {
            yield break;
        }

        IEnumerable<string> children;
        try
        {
            children = new DirectoryInfo(root).EnumerateFileSystemInfos()
                .Select(info => (info, isDirectory: info is DirectoryInfo && info.LinkTarget is null))
                .SelectMany(c => c.isDirectory ? (IEnumerable<string>)[c.info.FullName, .. Walk(c.info.FullName, depth - 1)] : [c.info.FullName])
                .ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            yield break;
        }

        foreach (var child in children)
        {
            yield return child;
        }
    }

    // ------------------------------------------------------------------ leftovers of removed pods

    /// <summary>What survives the removal of every pod: processes in the pods' cgroups or naming the daemon's directory,
    /// mounts under the test's directories, cgroups nacelle made, veths on the bridge, IPs, portmap rules.</summary>
    public static List<string> Leftovers(DaemonProcess daemon, FuzzTarget target, FuzzModel model, TestBridge? bridge)
    {
        var found = new List<string>();
        var podCgroups = model.AllPodIds.Select(id => id[..12]).ToList();
        foreach (var pid in Processes())
        {
            if (pid == daemon.Process.Id)
            {
                continue;
            }

            var cgroup = Read($"/proc/{pid}/cgroup");
            var cmdline = Read($"/proc/{pid}/cmdline").Replace('\0', ' ');
            if (cgroup.Contains(target.CgroupParent, StringComparison.Ordinal) || podCgroups.Any(id => cgroup.Contains(id, StringComparison.Ordinal))
                || cmdline.Contains(daemon.WorkDirectory, StringComparison.Ordinal))
            {
                found.Add($"process {pid} ({cmdline.Trim()}) in {cgroup.Split('\n').FirstOrDefault(l => l.Length > 0)}");
            }
        }

        foreach (var point in new[] { daemon.WorkDirectory, target.LogBase, target.VolumeBase }.SelectMany(PodLeftovers.MountsUnder))
        {
            found.Add($"mount {point}");
        }

        var callerParents = model.RequestedCgroupParents;
        foreach (var hierarchy in Hierarchies())
        {
            var parent = hierarchy + target.CgroupParent;
            if (Directory.Exists(parent))
            {
                foreach (var dir in Directory.EnumerateDirectories(parent, "*", SearchOption.AllDirectories)
                             .Where(d => !callerParents.Contains(d[hierarchy.Length..])))
                {
                    found.Add($"cgroup {dir}");
                }
            }

            foreach (var id in podCgroups)
            {
                if (Directory.Exists($"{hierarchy}/nacelle/pod-{id}"))
                {
                    found.Add($"cgroup {hierarchy}/nacelle/pod-{id}");
                }
            }
        }

        if (bridge is not null)
        {
            var ports = TestBridge.Run("ip", "-o", "link", "show", "master", bridge.BridgeName).Stdout.Trim();
            if (ports.Length > 0)
            {
                found.Add($"veths on {bridge.BridgeName}: {ports}");
            }

            found.AddRange(bridge.Reservations().Select(ip => $"IP {ip} still reserved by host-local"));
            found.AddRange(bridge.PortmapRules().Select(rule => $"iptables: {rule}"));
        }

        return found;
    }

    /// <summary>Ends whatever a failed run left: processes in the pods' cgroups and monitors (by pid), mounts under the
    /// test's directories, nacelle's cgroups of the run's pods and the fuzzer's cgroup parent, files made from hostile paths.</summary>
    public void TearDown(DaemonProcess? daemon, FuzzTarget target, FuzzModel? model)
    {
        TestCgroups.KillTree(target.CgroupParent);
        foreach (var id in model?.AllPodIds ?? [])
        {
            foreach (var pid in PodLeftovers.ProcessesMentioning("--pod " + id))
            {
                Signals.Send(pid, Signals.SIGKILL);
            }

            TestCgroups.KillTree($"/nacelle/pod-{id[..12]}");
        }

        foreach (var point in new[] { daemon?.WorkDirectory, target.LogBase, target.VolumeBase }.OfType<string>().SelectMany(PodLeftovers.MountsUnder))
        {
            TestBridge.Run("umount", "-l", point);
        }

        Thread.Sleep(200);
        foreach (var id in model?.AllPodIds ?? [])
        {
            Try(() => TestCgroups.RemoveTree($"/nacelle/pod-{id[..12]}"));
        }

        Try(() => TestCgroups.RemoveTree(target.CgroupParent));
        foreach (var hierarchy in Hierarchies())
        {
            foreach (var dir in Walk(hierarchy, 2).Where(d => d.Contains(marker, StringComparison.Ordinal)).OrderByDescending(d => d.Length))
            {
                Try(() => Directory.Delete(dir));
            }
        }

        foreach (var entry in Busy.Where(t => !t.Root.StartsWith("/sys", StringComparison.Ordinal)).Concat(Quiet)
                     .SelectMany(t => Walk(t.Root, t.Depth)).Where(e => e.Contains(marker, StringComparison.Ordinal))
                     .OrderByDescending(e => e.Length).ToList())
        {
            Try(() =>
            {
                if (Directory.Exists(entry))
                {
                    Directory.Delete(entry, recursive: true);
                }
                else
                {
                    File.Delete(entry);
                }
            });
        }
    }

    private static IEnumerable<string> Hierarchies() =>
        Directory.GetDirectories("/sys/fs/cgroup").Append("/sys/fs/cgroup/unified").Distinct().Where(d => !File.Exists(d));

    private static IEnumerable<int> Processes() =>
        Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Select(n => int.TryParse(n, out var pid) ? pid : 0).Where(p => p > 0);

    private static string Read(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }

    private static void Try(Action action)
    {
        try
        {
            action();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
