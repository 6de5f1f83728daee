using Nacelle.Common;
using Nacelle.ContainerCore.Spec;

namespace Nacelle.ContainerCore.Cgroups;

/// <summary>OCI runtime-spec linux.resources -> <see cref="CgroupResources"/>.</summary>
public static class CgroupSpecMapping
{
    /// <summary>Maps the spec's resources; null fields stay null ("leave as is"). Device types must be one letter.</summary>
    public static CgroupResources FromSpec(SpecResources spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var devices = new List<DeviceRule>(spec.Devices.Count);
        for (var i = 0; i < spec.Devices.Count; i++)
        {
            var rule = spec.Devices[i];
            var type = rule.Type ?? "a";
            if (type.Length != 1)
            {
                throw NacelleException.InvalidArgument($"cgroup resources: Devices[{i}] type \"{type}\" is not a, b or c");
            }

            devices.Add(new DeviceRule(rule.Allow, type[0], rule.Major ?? -1, rule.Minor ?? -1, rule.Access ?? "rwm"));
        }

        static List<DeviceThrottle>? Throttles(List<SpecThrottleDevice>? list) =>
            list is { Count: > 0 } ? list.Select(t => new DeviceThrottle(t.Major, t.Minor, t.Rate)).ToList() : null;

        return new CgroupResources
        {
            CpuShares = spec.Cpu?.Shares,
            CpuQuota = spec.Cpu?.Quota,
            CpuPeriod = spec.Cpu?.Period,
            CpusetCpus = spec.Cpu?.Cpus,
            CpusetMems = spec.Cpu?.Mems,
            MemoryLimit = spec.Memory?.Limit,
            MemorySwap = spec.Memory?.Swap,
            MemoryReservation = spec.Memory?.Reservation,
            MemorySwappiness = spec.Memory?.Swappiness,
            DisableOomKiller = spec.Memory?.DisableOomKiller,
            PidsLimit = spec.Pids?.Limit,
            HugepageLimits = spec.HugepageLimits.Count > 0
                ? spec.HugepageLimits.ToDictionary(h => h.PageSize, h => h.Limit, StringComparer.Ordinal)
                : null,
            BlkioWeight = spec.BlockIo?.Weight,
            ThrottleReadBps = Throttles(spec.BlockIo?.ThrottleReadBpsDevice),
            ThrottleWriteBps = Throttles(spec.BlockIo?.ThrottleWriteBpsDevice),
            ThrottleReadIops = Throttles(spec.BlockIo?.ThrottleReadIopsDevice),
            ThrottleWriteIops = Throttles(spec.BlockIo?.ThrottleWriteIopsDevice),
            Unified = spec.Unified.Count > 0 ? new Dictionary<string, string>(spec.Unified, StringComparer.Ordinal) : null,
            Devices = devices.Count > 0 ? devices : null,
        };
    }
}
