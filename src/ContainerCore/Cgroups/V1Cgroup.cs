using System.Globalization;
using Microsoft.Win32.SafeHandles;
using Nacelle.Common;
using Nacelle.ContainerCore.Interop;

namespace Nacelle.ContainerCore.Cgroups;

/// <summary>
/// A cgroup in the v1 hierarchies: one directory per mounted hierarchy (cpu, memory, pids, ...). On a hybrid node
/// it also has a twin directory in the cgroup2 mount (no controllers there), used for cgroup.kill and
/// <see cref="OpenDirectory"/>. The spawn helper joins the v1 hierarchies by thread (<see cref="ThreadFiles"/>), before it
/// clones the container process, since v1 has no CLONE_INTO_CGROUP, and clones that process into the twin
/// (<see cref="CloneIntoDirectory"/>); <see cref="AddProcess"/> moves a process by writing cgroup.procs everywhere.
/// </summary>
public sealed class V1Cgroup : ICgroup
{
    private const ulong UnlimitedThreshold = 1UL << 62; // v1 reports "no limit" as PAGE_COUNTER_MAX pages in bytes

    private readonly IReadOnlyDictionary<string, string> _controllerMounts;
    private IReadOnlyList<string>? _directories;
    private readonly IReadOnlyList<string> _namedMounts;

    internal V1Cgroup(IReadOnlyDictionary<string, string> controllerMounts, string? unifiedMount, string path, IReadOnlyList<string>? namedMounts = null)
    {
        _controllerMounts = controllerMounts;
        _namedMounts = namedMounts ?? [];
        Path = path;
        UnifiedDirectory = unifiedMount is null ? null : unifiedMount.TrimEnd('/') + path;
    }

    public string Path { get; }

    public bool IsUnified => false;

    /// <summary>The twin directory in the hybrid cgroup2 mount, if there is one.</summary>
    public string? UnifiedDirectory { get; }

    public IReadOnlyList<string> ProcsFiles =>
        [.. Directories.Select(d => d + "/cgroup.procs"), .. UnifiedDirectory is null ? [] : new[] { UnifiedDirectory + "/cgroup.procs" }];

    public IReadOnlyList<string> ThreadFiles => [.. Directories.Select(d => d + "/tasks")];

    public string? CloneIntoDirectory => UnifiedDirectory;

    /// <summary>This cgroup's directory in every v1 hierarchy (one per distinct mount); made on first use (stats open a
    /// cgroup per container and never need them).</summary>
    public IReadOnlyList<string> Directories => _directories ??= _controllerMounts.Values.Distinct(StringComparer.Ordinal)
        .Order(StringComparer.Ordinal).Select(mount => mount.TrimEnd('/') + Path).ToList();

    /// <summary>This cgroup's directory in the hierarchy of <paramref name="controller"/>; null when not mounted.</summary>
    public string? DirectoryOf(string controller) =>
        _controllerMounts.TryGetValue(controller, out var mount) ? mount.TrimEnd('/') + Path : null;

    /// <summary>mkdir -p in every hierarchy; cpuset levels without cpus or mems (a new one starts empty, and one another
    /// pod's create has just made may still be) inherit their parent's, from the top down: a process cannot join an empty
    /// cpuset (ENOSPC).</summary>
    internal void Create()
    {
        foreach (var (controller, mount) in _controllerMounts.DistinctBy(pair => pair.Value))
        {
            var isCpuset = _controllerMounts.Any(pair => pair.Key == "cpuset" && pair.Value == mount);
            CgroupFiles.CreateDirectories(mount, Path, isCpuset ? InheritCpuset : null);
        }

        if (UnifiedDirectory is not null)
        {
            CgroupFiles.CreateDirectories(UnifiedDirectory[..^Path.Length], Path);
        }
    }

    private static void InheritCpuset(string parent, string created)
    {
        foreach (var file in new[] { "cpuset.cpus", "cpuset.mems" })
        {
            var mine = CgroupFiles.ReadOrNull(System.IO.Path.Combine(created, file));
            if (mine is not null && mine.Trim().Length == 0)
            {
                CgroupFiles.Write(System.IO.Path.Combine(created, file), CgroupFiles.Read(System.IO.Path.Combine(parent, file)).Trim());
            }
        }
    }

    public void Apply(CgroupResources r)
    {
        CgroupResourceValidator.Validate(r);
        if (r.Unified is { Count: > 0 })
        {
            throw NacelleException.InvalidArgument(
                $"cgroup resources: Unified key \"{r.Unified.Keys.First()}\" needs cgroup v2, this node uses cgroup v1");
        }

        if (r.CpuShares is { } shares and > 0)
        {
            Write("cpu", "cpu.shares", Text(shares), nameof(r.CpuShares));
        }

        if (r.CpuPeriod is { } period and > 0)
        {
            Write("cpu", "cpu.cfs_period_us", Text(period), nameof(r.CpuPeriod));
        }

        if (r.CpuQuota is { } quota)
        {
            Write("cpu", "cpu.cfs_quota_us", quota > 0 ? Text(quota) : "-1", nameof(r.CpuQuota));
        }

        if (r.CpusetCpus is { Length: > 0 } cpus)
        {
            Write("cpuset", "cpuset.cpus", cpus, nameof(r.CpusetCpus));
        }

        if (r.CpusetMems is { Length: > 0 } mems)
        {
            Write("cpuset", "cpuset.mems", mems, nameof(r.CpusetMems));
        }

        ApplyMemory(r);

        if (r.PidsLimit is { } pids)
        {
            Write("pids", "pids.max", pids <= 0 ? "max" : Text(pids), nameof(r.PidsLimit));
        }

        foreach (var (size, bytes) in r.HugepageLimits ?? new Dictionary<string, ulong>())
        {
            Write("hugetlb", $"hugetlb.{size}.limit_in_bytes", Text(bytes), $"HugepageLimits[{size}]");
        }

        ApplyBlkio(r);

        foreach (var rule in r.Devices ?? [])
        {
            Write("devices", rule.Allow ? "devices.allow" : "devices.deny", rule.ToV1Line(), nameof(r.Devices));
        }
    }

    private void ApplyMemory(CgroupResources r)
    {
        var directory = Require("memory", nameof(r.MemoryLimit), r.MemoryLimit is { } ml && ml != 0 || r.MemorySwap is not null || r.MemoryReservation is not null ||
            r.MemorySwappiness is not null || r.DisableOomKiller is not null);
        if (directory is null)
        {
            return;
        }

        var limitFile = System.IO.Path.Combine(directory, "memory.limit_in_bytes");
        var swapFile = System.IO.Path.Combine(directory, "memory.memsw.limit_in_bytes");
        var limit = r.MemoryLimit is { } l and not 0 ? Text(l) : null;
        string? swap = null;
        if (r.MemorySwap is { } s and not 0)
        {
            if (File.Exists(swapFile))
            {
                swap = Text(s);
            }
            else if (s != -1 && s != r.MemoryLimit)
            {
                throw NacelleException.FailedPrecondition(
                    $"cgroup resources: MemorySwap needs {swapFile}, which is missing (swap accounting is off: swapaccount=1)");
            }
        }

        // memory.memsw must stay >= memory.limit at every moment: write limit first, and if the kernel refuses
        // (raising the limit above the old memsw), write memsw first.
        if (limit is not null && swap is not null)
        {
            if (CgroupCalls.WriteFile(limitFile, limit) != 0)
            {
                CgroupFiles.Write(swapFile, swap);
                CgroupFiles.Write(limitFile, limit);
            }
            else
            {
                CgroupFiles.Write(swapFile, swap);
            }
        }
        else if (limit is not null)
        {
            CgroupFiles.Write(limitFile, limit);
        }
        else if (swap is not null)
        {
            CgroupFiles.Write(swapFile, swap);
        }

        if (r.MemoryReservation is { } reservation and not 0)
        {
            CgroupFiles.WriteResource(directory, "memory.soft_limit_in_bytes", Text(reservation), nameof(r.MemoryReservation));
        }

        if (r.MemorySwappiness is { } swappiness)
        {
            CgroupFiles.WriteResource(directory, "memory.swappiness", Text(swappiness), nameof(r.MemorySwappiness));
        }

        if (r.DisableOomKiller is { } disable)
        {
            CgroupFiles.WriteResource(directory, "memory.oom_control", disable ? "1" : "0", nameof(r.DisableOomKiller));
        }
    }

    private void ApplyBlkio(CgroupResources r)
    {
        if (r.BlkioWeight is { } weight and > 0)
        {
            var directory = Require("blkio", nameof(r.BlkioWeight), true)!;
            var file = File.Exists(System.IO.Path.Combine(directory, "blkio.weight")) ? "blkio.weight" : "blkio.bfq.weight";
            CgroupFiles.WriteResource(directory, file, Text(weight), nameof(r.BlkioWeight));
        }

        void Throttle(IReadOnlyList<DeviceThrottle>? throttles, string file, string field)
        {
            foreach (var t in throttles ?? [])
            {
                Write("blkio", file, $"{t.Major}:{t.Minor} {Text(t.Rate)}", field);
            }
        }

        Throttle(r.ThrottleReadBps, "blkio.throttle.read_bps_device", nameof(r.ThrottleReadBps));
        Throttle(r.ThrottleWriteBps, "blkio.throttle.write_bps_device", nameof(r.ThrottleWriteBps));
        Throttle(r.ThrottleReadIops, "blkio.throttle.read_iops_device", nameof(r.ThrottleReadIops));
        Throttle(r.ThrottleWriteIops, "blkio.throttle.write_iops_device", nameof(r.ThrottleWriteIops));
    }

    private string? Require(string controller, string field, bool needed)
    {
        if (!needed)
        {
            return null;
        }

        return DirectoryOf(controller) ?? throw NacelleException.FailedPrecondition(
            $"cgroup resources: {field} needs the {controller} controller, which is not mounted");
    }

    private void Write(string controller, string file, string value, string field) =>
        CgroupFiles.WriteResource(Require(controller, field, true)!, file, value, field);

    public void AddProcess(int pid)
    {
        foreach (var directory in Directories)
        {
            CgroupFiles.Write(System.IO.Path.Combine(directory, "cgroup.procs"), Text(pid));
        }

        // The cgroup2 twin only groups processes (for cgroup.kill); a cgroup opened without Create may lack it.
        if (UnifiedDirectory is not null && System.IO.Directory.Exists(UnifiedDirectory))
        {
            CgroupFiles.Write(System.IO.Path.Combine(UnifiedDirectory, "cgroup.procs"), Text(pid));
        }
    }

    /// <summary>The union of cgroup.procs over every hierarchy, sorted.</summary>
    public IReadOnlyList<int> Processes() =>
        Directories.Append(UnifiedDirectory).OfType<string>()
            .SelectMany(d => CgroupFiles.ReadPids(System.IO.Path.Combine(d, "cgroup.procs")))
            .Distinct().Order().ToList();

    /// <summary>freezer.state as the kernel reports it (THAWED, FREEZING, FROZEN); null without a freezer hierarchy.</summary>
    public string? FreezerState() =>
        DirectoryOf("freezer") is { } d ? CgroupFiles.ReadOrNull(System.IO.Path.Combine(d, "freezer.state"))?.Trim() : null;

    public Task FreezeAsync(CancellationToken cancellationToken = default) => SetFreezerAsync("FROZEN", cancellationToken);

    public Task ThawAsync(CancellationToken cancellationToken = default) => SetFreezerAsync("THAWED", cancellationToken);

    private async Task SetFreezerAsync(string state, CancellationToken cancellationToken)
    {
        var file = System.IO.Path.Combine(Require("freezer", "Freeze", true)!, "freezer.state");
        CgroupFiles.Write(file, state);
        // While FREEZING the kernel retries tasks that were busy; writing FROZEN again nudges it.
        if (!await CgroupFiles.WaitUntilAsync(() => FreezerState() == state, cancellationToken, () => CgroupFiles.Write(file, state))
                .ConfigureAwait(false))
        {
            if (state == "FROZEN")
            {
                CgroupFiles.Write(file, "THAWED");
            }

            throw new NacelleException(ErrorKind.DeadlineExceeded,
                $"cgroup {file} did not reach {state} within {CgroupFiles.WaitBound.TotalSeconds} s (state {FreezerState()})");
        }
    }

    public async Task KillAsync(CancellationToken cancellationToken = default)
    {
        if (UnifiedDirectory is not null && File.Exists(System.IO.Path.Combine(UnifiedDirectory, "cgroup.kill")))
        {
            CgroupFiles.Write(System.IO.Path.Combine(UnifiedDirectory, "cgroup.kill"), "1");
        }

        // Freeze so nothing forks between reading cgroup.procs and the kills, kill each pid, thaw to deliver them.
        var frozen = false;
        if (DirectoryOf("freezer") is not null)
        {
            try
            {
                await FreezeAsync(cancellationToken).ConfigureAwait(false);
                frozen = true;
            }
            catch (NacelleException e) when (e.Kind == ErrorKind.DeadlineExceeded)
            {
                // a task stuck in the kernel: kill what can be killed anyway
            }
        }

        KillAll();
        if (frozen)
        {
            await ThawAsync(cancellationToken).ConfigureAwait(false);
        }

        await CgroupFiles.WaitUntilEmptyAsync(this, cancellationToken, KillAll).ConfigureAwait(false);
    }

    private void KillAll()
    {
        foreach (var pid in Processes())
        {
            Signals.Send(pid, Signals.SIGKILL);
        }
    }

    public CgroupStats Stats()
    {
        CgroupCpuStats? cpu = null;
        if (DirectoryOf("cpuacct") is { } acct && CgroupFiles.ReadNumber(System.IO.Path.Combine(acct, "cpuacct.usage")) is { } usage)
        {
            var user = CgroupFiles.ReadNumber(System.IO.Path.Combine(acct, "cpuacct.usage_user"));
            var system = CgroupFiles.ReadNumber(System.IO.Path.Combine(acct, "cpuacct.usage_sys"));
            if (user is null || system is null)
            {
                // cpuacct.stat counts USER_HZ (100 Hz) ticks.
                var ticks = CgroupFiles.ReadKeyed(System.IO.Path.Combine(acct, "cpuacct.stat"));
                user = ticks.GetValueOrDefault("user") * 10_000_000;
                system = ticks.GetValueOrDefault("system") * 10_000_000;
            }

            var throttling = DirectoryOf("cpu") is { } cpuDir
                ? CgroupFiles.ReadKeyed(System.IO.Path.Combine(cpuDir, "cpu.stat"))
                : new Dictionary<string, ulong>();
            cpu = new CgroupCpuStats(usage, user.Value, system.Value, throttling.GetValueOrDefault("nr_periods"),
                throttling.GetValueOrDefault("nr_throttled"), throttling.GetValueOrDefault("throttled_time"));
        }

        CgroupOomStatus? oom = null;
        var memory = DirectoryOf("memory") is { } mem ? ReadMemory(mem) : null;
        if (memory is not null)
        {
            oom = OomKills();
        }

        CgroupPidsStats? pids = null;
        if (DirectoryOf("pids") is { } pidsDir && CgroupFiles.ReadNumber(System.IO.Path.Combine(pidsDir, "pids.current")) is { } current)
        {
            pids = new CgroupPidsStats(current, CgroupFiles.ReadNumber(System.IO.Path.Combine(pidsDir, "pids.max")));
        }

        return new CgroupStats(cpu, memory, pids, oom);
    }

    /// <summary>Four files (five with the process count): cpuacct.usage, memory.usage_in_bytes, memory.stat, memory.limit_in_bytes, pids.current.</summary>
    public CgroupUsage Usage(bool withProcessCount)
    {
        var cpu = DirectoryOf("cpuacct") is { } acct ? CgroupFiles.ReadNumber(System.IO.Path.Combine(acct, "cpuacct.usage")) : null;
        var memory = DirectoryOf("memory") is { } mem ? ReadMemory(mem) : null;
        var processes = withProcessCount && DirectoryOf("pids") is { } pidsDir
            ? CgroupFiles.ReadNumber(System.IO.Path.Combine(pidsDir, "pids.current"))
            : null;
        return new CgroupUsage(cpu, memory, processes);
    }

    // The memory.stat keys ReadMemory uses, in the order of its values.
    private static readonly string[] MemoryStatKeys = ["total_inactive_file", "total_rss", "total_cache", "total_swap"];

    // Hierarchical (total_*) numbers: a pod's cgroup holds its containers' cgroups.
    private static CgroupMemoryStats? ReadMemory(string directory)
    {
        if (CgroupFiles.ReadNumber(System.IO.Path.Combine(directory, "memory.usage_in_bytes")) is not { } used)
        {
            return null;
        }

        Span<ulong> stat = stackalloc ulong[MemoryStatKeys.Length];
        CgroupFiles.ReadKeyed(System.IO.Path.Combine(directory, "memory.stat"), MemoryStatKeys, stat);
        var inactiveFile = stat[0];
        var limit = CgroupFiles.ReadNumber(System.IO.Path.Combine(directory, "memory.limit_in_bytes"));
        return new CgroupMemoryStats(
            Usage: used,
            WorkingSet: used > inactiveFile ? used - inactiveFile : 0,
            Rss: stat[1],
            Cache: stat[2],
            Swap: stat[3],
            Limit: limit is >= UnlimitedThreshold ? null : limit);
    }

    public CgroupOomStatus OomKills()
    {
        var control = CgroupFiles.ReadKeyed(System.IO.Path.Combine(Require("memory", "OomKills", true)!, "memory.oom_control"));
        return new CgroupOomStatus(OomEvents: null, control.GetValueOrDefault("oom_kill"), control.GetValueOrDefault("under_oom") != 0);
    }

    /// <summary>Where this cgroup may exist, for finding its children and removing it: every controller hierarchy, the
    /// cgroup2 mount, and the named hierarchies (name=systemd), where nacelle makes nothing but runc, as a RuntimeClass
    /// handler, makes its containers' cgroups and their parents, which would otherwise outlive the pod.</summary>
    private IEnumerable<string> AllDirectories =>
        Directories.Concat(_namedMounts.Select(mount => mount.TrimEnd('/') + Path)).Append(UnifiedDirectory).OfType<string>();

    public async Task RemoveAsync(CancellationToken cancellationToken = default)
    {
        foreach (var directory in AllDirectories)
        {
            await CgroupFiles.RemoveDirectoryAsync(directory, cancellationToken).ConfigureAwait(false);
        }
    }

    public IReadOnlyList<string> ChildPaths() =>
        CgroupFiles.ChildNames(AllDirectories).Select(name => Path.TrimEnd('/') + "/" + name).ToList();

    public SafeFileHandle OpenDirectory()
    {
        if (UnifiedDirectory is null)
        {
            throw NacelleException.FailedPrecondition(
                $"cgroup {Path}: a cgroup v1 node has no cgroup2 directory for CLONE_INTO_CGROUP; write the pid with AddProcess before the child runs");
        }

        try
        {
            return CgroupCalls.OpenDirectoryPath(UnifiedDirectory);
        }
        catch (IOException e)
        {
            throw e.HResult == CgroupCalls.ENOENT
                ? NacelleException.NotFound($"cgroup {UnifiedDirectory} does not exist")
                : NacelleException.Internal(e.Message, e);
        }
    }

    private static string Text(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Text(ulong value) => value.ToString(CultureInfo.InvariantCulture);
}
