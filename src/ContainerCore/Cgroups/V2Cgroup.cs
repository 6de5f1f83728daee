using System.Globalization;
using Microsoft.Win32.SafeHandles;
using Nacelle.Common;
using Nacelle.ContainerCore.Interop;

namespace Nacelle.ContainerCore.Cgroups;

/// <summary>A cgroup in the unified (v2) hierarchy mounted at <see cref="MountPoint"/>.</summary>
public sealed class V2Cgroup : ICgroup
{
    internal V2Cgroup(string mountPoint, string path)
    {
        MountPoint = mountPoint;
        Path = path;
        Directory = mountPoint.TrimEnd('/') + path;
    }

    public string MountPoint { get; }

    public string Path { get; }

    /// <summary>The cgroup's directory in the file system.</summary>
    public string Directory { get; }

    public bool IsUnified => true;

    public IReadOnlyList<string> ProcsFiles => [FilePath("cgroup.procs")];

    public IReadOnlyList<string> ThreadFiles => [];

    public string? CloneIntoDirectory => Directory;

    public void Apply(CgroupResources resources)
    {
        CgroupResourceValidator.Validate(resources);
        var writes = Plan(resources);
        EnableControllers(writes.Select(w => w.Controller).OfType<string>().ToHashSet(StringComparer.Ordinal));
        foreach (var write in writes)
        {
            CgroupFiles.WriteResource(Directory, write.File, write.Value, write.Field);
        }

        if (resources.Devices is { Count: > 0 } devices)
        {
            // cgroup v2 has no device files: the rules become an eBPF program attached to the cgroup directory.
            var program = DeviceFilterProgram.Compile(devices);
            using var directory = OpenDirectory();
            try
            {
                CgroupCalls.AttachDeviceProgram(directory, program);
            }
            catch (IOException e)
            {
                throw NacelleException.Internal($"cgroup resources: Devices for {Directory}: {e.Message}", e);
            }
        }
    }

    private readonly record struct PlannedWrite(string File, string Value, string Field, string? Controller);

    private List<PlannedWrite> Plan(CgroupResources r)
    {
        var writes = new List<PlannedWrite>();
        if (r.CpuShares is { } shares and > 0)
        {
            writes.Add(new("cpu.weight", Text(CgroupConversions.SharesToWeight(shares)), nameof(r.CpuShares), "cpu"));
        }

        if (CgroupConversions.CpuMax(r.CpuQuota, r.CpuPeriod) is { } cpuMax)
        {
            writes.Add(new("cpu.max", cpuMax, nameof(r.CpuQuota), "cpu"));
        }

        if (r.CpusetCpus is { Length: > 0 } cpus)
        {
            writes.Add(new("cpuset.cpus", cpus, nameof(r.CpusetCpus), "cpuset"));
        }

        if (r.CpusetMems is { Length: > 0 } mems)
        {
            writes.Add(new("cpuset.mems", mems, nameof(r.CpusetMems), "cpuset"));
        }

        if (r.MemoryLimit is { } limit and not 0)
        {
            writes.Add(new("memory.max", CgroupConversions.MaxOr(limit), nameof(r.MemoryLimit), "memory"));
        }

        // No swap wanted ("0") needs no file: a kernel without swap accounting has no memory.swap.max.
        if (CgroupConversions.SwapMax(r.MemoryLimit, r.MemorySwap) is { } swapMax &&
            (swapMax != "0" || File.Exists(FilePath("memory.swap.max"))))
        {
            writes.Add(new("memory.swap.max", swapMax, nameof(r.MemorySwap), "memory"));
        }

        if (r.MemoryReservation is { } reservation and not 0)
        {
            writes.Add(new("memory.low", reservation < 0 ? "0" : Text(reservation), nameof(r.MemoryReservation), "memory"));
        }

        if (r.PidsLimit is { } pids)
        {
            writes.Add(new("pids.max", pids <= 0 ? "max" : Text(pids), nameof(r.PidsLimit), "pids"));
        }

        foreach (var (size, bytes) in r.HugepageLimits ?? new Dictionary<string, ulong>())
        {
            writes.Add(new($"hugetlb.{size}.max", Text(bytes), $"HugepageLimits[{size}]", "hugetlb"));
        }

        if (r.BlkioWeight is { } weight and > 0)
        {
            writes.Add(File.Exists(System.IO.Path.Combine(Directory, "io.weight")) || !File.Exists(System.IO.Path.Combine(Directory, "io.bfq.weight"))
                ? new("io.weight", $"default {Text(CgroupConversions.BlkioWeightToIoWeight(weight))}", nameof(r.BlkioWeight), "io")
                : new("io.bfq.weight", Text(weight), nameof(r.BlkioWeight), "io"));
        }

        foreach (var line in IoMaxLines(r))
        {
            writes.Add(new("io.max", line, "Throttle*", "io"));
        }

        foreach (var (key, value) in r.Unified ?? new Dictionary<string, string>())
        {
            var controller = key[..key.IndexOf('.', StringComparison.Ordinal)];
            writes.Add(new(key, value, $"Unified[\"{key}\"]", controller == "cgroup" ? null : controller));
        }

        return writes;
    }

    /// <summary>One io.max line per device: "8:0 rbps=1048576 wiops=100".</summary>
    internal static IEnumerable<string> IoMaxLines(CgroupResources r)
    {
        var devices = new SortedDictionary<(long, long), List<string>>();
        void Add(IReadOnlyList<DeviceThrottle>? throttles, string key)
        {
            foreach (var t in throttles ?? [])
            {
                if (!devices.TryGetValue((t.Major, t.Minor), out var parts))
                {
                    devices[(t.Major, t.Minor)] = parts = [];
                }

                parts.Add($"{key}={Text(t.Rate)}");
            }
        }

        Add(r.ThrottleReadBps, "rbps");
        Add(r.ThrottleWriteBps, "wbps");
        Add(r.ThrottleReadIops, "riops");
        Add(r.ThrottleWriteIops, "wiops");
        return devices.Select(d => $"{d.Key.Item1}:{d.Key.Item2} {string.Join(' ', d.Value)}");
    }

    /// <summary>
    /// Enables the controllers in cgroup.subtree_control of every ancestor, from the mount root down to the parent,
    /// as far as each ancestor has them in cgroup.controllers (a missing controller surfaces when its file is written).
    /// </summary>
    private void EnableControllers(HashSet<string> needed)
    {
        if (needed.Count == 0)
        {
            return;
        }

        var ancestor = MountPoint.TrimEnd('/');
        var segments = Path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        for (var i = 0; i < segments.Length; i++)
        {
            var available = Words(CgroupFiles.ReadOrNull(System.IO.Path.Combine(ancestor, "cgroup.controllers")));
            var subtree = System.IO.Path.Combine(ancestor, "cgroup.subtree_control");
            var enabled = Words(CgroupFiles.ReadOrNull(subtree));
            var missing = needed.Where(c => available.Contains(c) && !enabled.Contains(c)).Order(StringComparer.Ordinal).ToList();
            if (missing.Count > 0)
            {
                CgroupFiles.Write(subtree, string.Join(' ', missing.Select(c => "+" + c)));
            }

            ancestor = ancestor + "/" + segments[i];
        }
    }

    private static HashSet<string> Words(string? text) =>
        new((text ?? string.Empty).Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries), StringComparer.Ordinal);

    public void AddProcess(int pid) => CgroupFiles.Write(FilePath("cgroup.procs"), Text(pid));

    public IReadOnlyList<int> Processes() => CgroupFiles.ReadPids(FilePath("cgroup.procs"));

    public Task FreezeAsync(CancellationToken cancellationToken = default) => SetFrozenAsync(true, cancellationToken);

    public Task ThawAsync(CancellationToken cancellationToken = default) => SetFrozenAsync(false, cancellationToken);

    /// <summary>Whether cgroup.events reports "frozen 1".</summary>
    public bool IsFrozen() => CgroupFiles.ReadKeyed(FilePath("cgroup.events")).GetValueOrDefault("frozen") == 1;

    private async Task SetFrozenAsync(bool frozen, CancellationToken cancellationToken)
    {
        CgroupFiles.Write(FilePath("cgroup.freeze"), frozen ? "1" : "0");
        if (!await CgroupFiles.WaitUntilAsync(() => IsFrozen() == frozen, cancellationToken).ConfigureAwait(false))
        {
            throw new NacelleException(ErrorKind.DeadlineExceeded,
                $"cgroup {Directory} did not become {(frozen ? "frozen" : "thawed")} within {CgroupFiles.WaitBound.TotalSeconds} s");
        }
    }

    public async Task KillAsync(CancellationToken cancellationToken = default)
    {
        var kill = FilePath("cgroup.kill");
        if (File.Exists(kill))
        {
            CgroupFiles.Write(kill, "1");
            await CgroupFiles.WaitUntilEmptyAsync(this, cancellationToken, null).ConfigureAwait(false);
            return;
        }

        // Before Linux 5.14: freeze so nothing forks, kill every pid, thaw so the kills are delivered.
        await FreezeAsync(cancellationToken).ConfigureAwait(false);
        foreach (var pid in Processes())
        {
            Signals.Send(pid, Signals.SIGKILL);
        }

        await ThawAsync(cancellationToken).ConfigureAwait(false);
        await CgroupFiles.WaitUntilEmptyAsync(this, cancellationToken,
            () => { foreach (var pid in Processes()) { Signals.Send(pid, Signals.SIGKILL); } }).ConfigureAwait(false);
    }

    public CgroupStats Stats()
    {
        var cpu = CgroupFiles.ReadKeyed(FilePath("cpu.stat"));
        var cpuStats = cpu.Count == 0 ? null : new CgroupCpuStats(
            UsageNanoseconds: cpu.GetValueOrDefault("usage_usec") * 1000,
            UserNanoseconds: cpu.GetValueOrDefault("user_usec") * 1000,
            SystemNanoseconds: cpu.GetValueOrDefault("system_usec") * 1000,
            Periods: cpu.GetValueOrDefault("nr_periods"),
            ThrottledPeriods: cpu.GetValueOrDefault("nr_throttled"),
            ThrottledNanoseconds: cpu.GetValueOrDefault("throttled_usec") * 1000);

        var memoryStats = ReadMemory();
        CgroupPidsStats? pidsStats = CgroupFiles.ReadNumber(FilePath("pids.current")) is { } current
            ? new CgroupPidsStats(current, CgroupFiles.ReadNumber(FilePath("pids.max")))
            : null;

        return new CgroupStats(cpuStats, memoryStats, pidsStats, File.Exists(FilePath("memory.events")) ? OomKills() : null);
    }

    /// <summary>Five files (six with the process count): cpu.stat, memory.current, memory.stat, memory.swap.current, memory.max, pids.current.</summary>
    public CgroupUsage Usage(bool withProcessCount)
    {
        Span<ulong> usage = stackalloc ulong[1];
        ulong? cpu = CgroupFiles.ReadKeyed(FilePath("cpu.stat"), CpuUsageKey, usage) > 0 ? usage[0] * 1000 : null;
        var processes = withProcessCount ? CgroupFiles.ReadNumber(FilePath("pids.current")) : null;
        return new CgroupUsage(cpu, ReadMemory(), processes);
    }

    private static readonly string[] CpuUsageKey = ["usage_usec"];

    // The memory.stat keys ReadMemory uses, in the order of its values.
    private static readonly string[] MemoryStatKeys = ["inactive_file", "anon", "file"];

    private CgroupMemoryStats? ReadMemory()
    {
        if (CgroupFiles.ReadNumber(FilePath("memory.current")) is not { } usage)
        {
            return null;
        }

        Span<ulong> stat = stackalloc ulong[MemoryStatKeys.Length];
        CgroupFiles.ReadKeyed(FilePath("memory.stat"), MemoryStatKeys, stat);
        var inactiveFile = stat[0];
        return new CgroupMemoryStats(
            Usage: usage,
            WorkingSet: usage > inactiveFile ? usage - inactiveFile : 0,
            Rss: stat[1],
            Cache: stat[2],
            Swap: CgroupFiles.ReadNumber(FilePath("memory.swap.current")) ?? 0,
            Limit: CgroupFiles.ReadNumber(FilePath("memory.max")));
    }

    public CgroupOomStatus OomKills()
    {
        var events = CgroupFiles.ReadKeyed(FilePath("memory.events"));
        return new CgroupOomStatus(events.GetValueOrDefault("oom"), events.GetValueOrDefault("oom_kill"), UnderOom: false);
    }

    public Task RemoveAsync(CancellationToken cancellationToken = default) =>
        CgroupFiles.RemoveDirectoryAsync(Directory, cancellationToken);

    public IReadOnlyList<string> ChildPaths() =>
        CgroupFiles.ChildNames([Directory]).Select(name => Path.TrimEnd('/') + "/" + name).ToList();

    public SafeFileHandle OpenDirectory()
    {
        try
        {
            return CgroupCalls.OpenDirectoryPath(Directory);
        }
        catch (IOException e)
        {
            throw e.HResult == CgroupCalls.ENOENT
                ? NacelleException.NotFound($"cgroup {Directory} does not exist")
                : NacelleException.Internal(e.Message, e);
        }
    }

    private string FilePath(string name) => System.IO.Path.Combine(Directory, name);

    private static string Text(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Text(ulong value) => value.ToString(CultureInfo.InvariantCulture);
}
