using System.Globalization;
using Nacelle.ContainerCore.Spec;

namespace Nacelle.Sandbox.Containers.Spec;

/// <summary>The spec's linux.resources, at create time and for UpdateContainerResources: cpu, memory and swap, hugepages, unified, oom_score_adj.</summary>
public sealed partial class ContainerSpecBuilder
{
    /// <summary>UpdateContainerResources' resources: the same checks and mapping as at create time.</summary>
    public static SpecResources BuildResources(ResourceRequest resources)
    {
        ArgumentNullException.ThrowIfNull(resources);
        var result = new SpecResources();
        Resources(resources, result, new SpecProcess());
        return result;
    }

    /// <summary>
    /// UpdateContainerResources of a container not spawned yet: <paramref name="update"/> (from
    /// <see cref="BuildResources"/>) goes into the resources of its spec as the monitor applies it to a cgroup, each
    /// value it sets replacing the spec's and what it leaves unset staying (as containerd updates a created container's
    /// spec).
    /// </summary>
    public static void UpdateResources(SpecResources resources, SpecResources update)
    {
        ArgumentNullException.ThrowIfNull(resources);
        ArgumentNullException.ThrowIfNull(update);
        if (update.Cpu is { } cpu)
        {
            var into = resources.Cpu ??= new SpecCpu();
            into.Shares = cpu.Shares ?? into.Shares;
            into.Quota = cpu.Quota ?? into.Quota;
            into.Period = cpu.Period ?? into.Period;
            into.Cpus = cpu.Cpus ?? into.Cpus;
            into.Mems = cpu.Mems ?? into.Mems;
        }

        if (update.Memory is { } memory)
        {
            var into = resources.Memory ??= new SpecMemory();
            into.Limit = memory.Limit ?? into.Limit;
            into.Reservation = memory.Reservation ?? into.Reservation;
            into.Swap = memory.Swap ?? into.Swap;
            into.Swappiness = memory.Swappiness ?? into.Swappiness;
            into.DisableOomKiller = memory.DisableOomKiller ?? into.DisableOomKiller;
        }

        resources.Pids = update.Pids ?? resources.Pids;
        resources.BlockIo = update.BlockIo ?? resources.BlockIo;
        foreach (var limit in update.HugepageLimits)
        {
            resources.HugepageLimits.RemoveAll(l => l.PageSize == limit.PageSize);
            resources.HugepageLimits.Add(limit);
        }

        foreach (var (key, value) in update.Unified)
        {
            resources.Unified[key] = value;
        }
    }

    private static void Resources(ResourceRequest? r, SpecResources resources, SpecProcess process)
    {
        if (r is null)
        {
            return;
        }

        var cpu = new SpecCpu();
        if (r.CpuPeriod != 0)
        {
            if (r.CpuPeriod is < 1000 or > 1_000_000)
            {
                throw Invalid($"{Res}.cpu_period", $"{r.CpuPeriod} µs is outside 1000..1000000");
            }

            cpu.Period = (ulong)r.CpuPeriod;
        }

        if (r.CpuQuota != 0)
        {
            if (r.CpuQuota < -1)
            {
                throw Invalid($"{Res}.cpu_quota", $"{r.CpuQuota} is neither a quota nor -1 (unlimited)");
            }

            cpu.Quota = r.CpuQuota;
        }

        if (r.CpuShares != 0)
        {
            if (r.CpuShares is < 2 or > 262_144)
            {
                throw Invalid($"{Res}.cpu_shares", $"{r.CpuShares} is outside 2..262144");
            }

            cpu.Shares = (ulong)r.CpuShares;
        }

        if (!string.IsNullOrEmpty(r.CpusetCpus))
        {
            cpu.Cpus = CpuList(r.CpusetCpus, $"{Res}.cpuset_cpus");
        }

        if (!string.IsNullOrEmpty(r.CpusetMems))
        {
            cpu.Mems = CpuList(r.CpusetMems, $"{Res}.cpuset_mems");
        }

        if (cpu.Period is not null || cpu.Quota is not null || cpu.Shares is not null || cpu.Cpus is not null || cpu.Mems is not null)
        {
            resources.Cpu = cpu;
        }

        if (r.MemoryLimitInBytes < 0)
        {
            throw Invalid($"{Res}.memory_limit_in_bytes", $"{r.MemoryLimitInBytes} is negative");
        }

        if (r.MemorySwapLimitInBytes < -1)
        {
            throw Invalid($"{Res}.memory_swap_limit_in_bytes", $"{r.MemorySwapLimitInBytes} is neither a limit nor -1 (unlimited)");
        }

        if (r.MemoryLimitInBytes > 0 || r.MemorySwapLimitInBytes != 0)
        {
            var memory = new SpecMemory();
            if (r.MemoryLimitInBytes > 0)
            {
                memory.Limit = r.MemoryLimitInBytes;
                memory.Swap = r.MemoryLimitInBytes; // containerd: no swap unless a swap limit is given
            }

            if (r.MemorySwapLimitInBytes != 0)
            {
                if (r.MemorySwapLimitInBytes > 0 && r.MemorySwapLimitInBytes < r.MemoryLimitInBytes)
                {
                    throw Invalid($"{Res}.memory_swap_limit_in_bytes",
                        $"{r.MemorySwapLimitInBytes} is less than memory_limit_in_bytes {r.MemoryLimitInBytes} (it counts memory + swap)");
                }

                memory.Swap = r.MemorySwapLimitInBytes;
            }

            resources.Memory = memory;
        }

        var pageSizes = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < r.HugepageLimits.Count; i++)
        {
            var limit = r.HugepageLimits[i];
            if (!IsPageSize(limit.PageSize))
            {
                throw Invalid($"{Res}.hugepage_limits[{i}].page_size", $"'{limit.PageSize}' is not a page size such as 2MB or 1GB");
            }

            if (!pageSizes.Add(limit.PageSize))
            {
                throw Invalid($"{Res}.hugepage_limits[{i}].page_size", $"{limit.PageSize} is given twice");
            }

            resources.HugepageLimits.Add(new SpecHugepageLimit { PageSize = limit.PageSize, Limit = limit.Limit });
        }

        foreach (var (key, value) in r.Unified)
        {
            if (key.Length == 0 || key.Contains('/', StringComparison.Ordinal) || key.Contains("..", StringComparison.Ordinal) || !key.Contains('.', StringComparison.Ordinal))
            {
                throw Invalid($"{Res}.unified[\"{key}\"]", "is not a cgroup v2 interface file name");
            }

            resources.Unified[key] = value;
        }

        if (r.OomScoreAdj is < -1000 or > 1000)
        {
            throw Invalid($"{Res}.oom_score_adj", $"{r.OomScoreAdj} is outside -1000..1000");
        }

        process.OomScoreAdj = (int)r.OomScoreAdj;
    }

    private static string CpuList(string list, string field)
    {
        foreach (var part in list.Split(','))
        {
            var range = part.Trim().Split('-');
            if (range.Length is < 1 or > 2 || range.Any(n => n.Length == 0 || !n.All(char.IsAsciiDigit))
                || (range.Length == 2 && long.Parse(range[0], CultureInfo.InvariantCulture) > long.Parse(range[1], CultureInfo.InvariantCulture)))
            {
                throw Invalid(field, $"'{list}' is not a list such as 0-3,6");
            }
        }

        return list;
    }

    private static bool IsPageSize(string size)
    {
        var digits = size.TakeWhile(char.IsAsciiDigit).Count();
        return digits > 0 && size[digits..] is "B" or "KB" or "MB" or "GB" or "TB" or "PB";
    }
}
