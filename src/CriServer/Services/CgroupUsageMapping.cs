using Nacelle.ContainerCore.Cgroups;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

/// <summary>A cgroup's accounting as CRI's cpu and memory usage, for pod and container stats alike; null where the
/// controller's numbers are unknown.</summary>
internal static class CgroupUsageMapping
{
    public static CpuUsage? Cpu(CgroupUsage? usage, long at) => usage?.CpuNanoseconds is { } cpu
        ? new CpuUsage { Timestamp = at, UsageCoreNanoSeconds = new UInt64Value { Value = cpu } }
        : null;

    /// <summary>Available is what the limit leaves of the working set (none when unlimited).</summary>
    public static MemoryUsage? Memory(CgroupUsage? usage, long at)
    {
        if (usage?.Memory is not { } memory)
        {
            return null;
        }

        var result = new MemoryUsage
        {
            Timestamp = at,
            WorkingSetBytes = new UInt64Value { Value = memory.WorkingSet },
            UsageBytes = new UInt64Value { Value = memory.Usage },
            RssBytes = new UInt64Value { Value = memory.Rss },
        };
        if (memory.Limit is { } limit)
        {
            result.AvailableBytes = new UInt64Value { Value = limit > memory.WorkingSet ? limit - memory.WorkingSet : 0 };
        }

        return result;
    }
}
