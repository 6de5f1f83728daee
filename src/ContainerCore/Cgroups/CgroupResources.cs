using System.Globalization;
using Nacelle.Common;

namespace Nacelle.ContainerCore.Cgroups;

/// <summary>One device cgroup rule: <paramref name="Type"/> 'a' (all), 'b' (block) or 'c' (char); -1 = any number.</summary>
/// <param name="Access">A non-empty subset of "rwm".</param>
public sealed record DeviceRule(bool Allow, char Type, long Major, long Minor, string Access)
{
    /// <summary>The v1 devices.allow/deny line, e.g. "c 1:3 rwm" or "a *:* rwm".</summary>
    public string ToV1Line() =>
        Type == 'a' ? $"a *:* {Access}" : $"{Type} {Number(Major)}:{Number(Minor)} {Access}";

    private static string Number(long value) => value < 0 ? "*" : value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>A per-block-device limit: bytes or operations per second (blkio throttle / io.max).</summary>
public sealed record DeviceThrottle(long Major, long Minor, ulong Rate);

/// <summary>
/// The resources of one cgroup, in OCI terms. Null means "leave as is". Unlimited values: -1 (and 0 where OCI says so).
/// </summary>
public sealed record CgroupResources
{
    /// <summary>v1 cpu.shares (2..262144); v2 cpu.weight is derived (<see cref="CgroupConversions.SharesToWeight"/>). 0 = unset.</summary>
    public ulong? CpuShares { get; init; }

    /// <summary>CFS quota in µs per <see cref="CpuPeriod"/>; -1 or 0 = unlimited.</summary>
    public long? CpuQuota { get; init; }

    /// <summary>CFS period in µs (1000..1000000); 0 = unset.</summary>
    public ulong? CpuPeriod { get; init; }

    public string? CpusetCpus { get; init; }
    public string? CpusetMems { get; init; }

    /// <summary>Memory limit in bytes; -1 = unlimited.</summary>
    public long? MemoryLimit { get; init; }

    /// <summary>Memory plus swap in bytes as in OCI (not swap alone); -1 = unlimited swap.</summary>
    public long? MemorySwap { get; init; }

    /// <summary>v1 memory.soft_limit_in_bytes, v2 memory.low; -1 = none.</summary>
    public long? MemoryReservation { get; init; }

    /// <summary>v1 memory.swappiness (0..100); cgroup v2 has no such knob and ignores it.</summary>
    public ulong? MemorySwappiness { get; init; }

    /// <summary>v1 memory.oom_control oom_kill_disable; cgroup v2 cannot disable the OOM killer and ignores it.</summary>
    public bool? DisableOomKiller { get; init; }

    /// <summary>Maximum number of tasks; 0 or -1 = unlimited.</summary>
    public long? PidsLimit { get; init; }

    /// <summary>Hugepage size ("2MB", "1GB") to limit in bytes.</summary>
    public IReadOnlyDictionary<string, ulong>? HugepageLimits { get; init; }

    /// <summary>v1 blkio weight (10..1000); v2 io.weight is derived.</summary>
    public ushort? BlkioWeight { get; init; }

    public IReadOnlyList<DeviceThrottle>? ThrottleReadBps { get; init; }
    public IReadOnlyList<DeviceThrottle>? ThrottleWriteBps { get; init; }
    public IReadOnlyList<DeviceThrottle>? ThrottleReadIops { get; init; }
    public IReadOnlyList<DeviceThrottle>? ThrottleWriteIops { get; init; }

    /// <summary>v2 file name to value, written verbatim. Refused on v1 when non-empty.</summary>
    public IReadOnlyDictionary<string, string>? Unified { get; init; }

    /// <summary>Device rules in order, later rules winning (v1 devices.allow / devices.deny; v2 an eBPF device filter, see <see cref="DeviceFilterProgram"/>).</summary>
    public IReadOnlyList<DeviceRule>? Devices { get; init; }
}

/// <summary>The v1 -> v2 value conversions (pure).</summary>
public static class CgroupConversions
{
    /// <summary>cpu.shares (2..262144) to cpu.weight (1..10000): 1 + ((shares - 2) * 9999) / 262142, clamped.</summary>
    public static ulong SharesToWeight(ulong shares)
    {
        if (shares == 0)
        {
            return 100; // unset: the kernel default weight
        }

        var clamped = Math.Clamp(shares, 2UL, 262144UL);
        return Math.Clamp(1 + ((clamped - 2) * 9999) / 262142, 1UL, 10000UL);
    }

    /// <summary>blkio.weight (10..1000) to io.weight (1..10000): 1 + ((weight - 10) * 9999) / 990, clamped.</summary>
    public static ulong BlkioWeightToIoWeight(ushort weight)
    {
        var clamped = Math.Clamp((ulong)weight, 10UL, 1000UL);
        return Math.Clamp(1 + ((clamped - 10) * 9999) / 990, 1UL, 10000UL);
    }

    /// <summary>The cpu.max line: "max 100000" for no quota, "50000 100000" otherwise. Null when nothing to write.</summary>
    public static string? CpuMax(long? quota, ulong? period)
    {
        var hasQuota = quota is > 0;
        var hasPeriod = period is > 0;
        if (!hasQuota && !hasPeriod && quota is null)
        {
            return null;
        }

        var periodText = (hasPeriod ? period!.Value : 100000UL).ToString(CultureInfo.InvariantCulture);
        return hasQuota ? $"{quota!.Value.ToString(CultureInfo.InvariantCulture)} {periodText}" : $"max {periodText}";
    }

    /// <summary>
    /// memory.swap.max from OCI's limit+swap: "max" when swap is -1, swap - limit otherwise (0 = no swap). Null when
    /// swap is not given.
    /// </summary>
    public static string? SwapMax(long? memoryLimit, long? memorySwap) => memorySwap switch
    {
        null or 0 => null,
        -1 => "max",
        _ when memoryLimit is > 0 => (memorySwap.Value - memoryLimit.Value).ToString(CultureInfo.InvariantCulture),
        _ => null,
    };

    /// <summary>A byte value for memory.max / memory.low / pids.max: "max" when unlimited (negative).</summary>
    public static string MaxOr(long value) => value < 0 ? "max" : value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>Refuses inconsistent resources before any file is touched, naming the field.</summary>
public static class CgroupResourceValidator
{
    // Files a Unified key may never name: they move processes or change the hierarchy, not a resource.
    private static readonly HashSet<string> ForbiddenUnifiedKeys = new(StringComparer.Ordinal)
    {
        "cgroup.procs", "cgroup.threads", "cgroup.kill", "cgroup.freeze", "cgroup.subtree_control", "cgroup.type",
        "cgroup.events", "cgroup.controllers",
    };

    public static void Validate(CgroupResources resources)
    {
        ArgumentNullException.ThrowIfNull(resources);
        if (resources.CpuShares is { } shares && shares != 0 && (shares < 2 || shares > 262144))
        {
            throw Invalid($"CpuShares {shares} is outside 2..262144");
        }

        if (resources.CpuPeriod is { } period && period != 0 && (period < 1000 || period > 1000000))
        {
            throw Invalid($"CpuPeriod {period} is outside 1000..1000000 µs");
        }

        if (resources.CpuQuota is { } quota)
        {
            if (quota < -1)
            {
                throw Invalid($"CpuQuota {quota} is negative (use -1 for unlimited)");
            }

            if (quota > 0 && resources.CpuPeriod is null or 0)
            {
                throw Invalid($"CpuQuota {quota} is set without CpuPeriod");
            }

            if (quota is > 0 and < 1000)
            {
                throw Invalid($"CpuQuota {quota} is below the kernel's minimum of 1000 µs");
            }
        }

        CheckCpuList(resources.CpusetCpus, nameof(CgroupResources.CpusetCpus));
        CheckCpuList(resources.CpusetMems, nameof(CgroupResources.CpusetMems));

        CheckBytes(resources.MemoryLimit, nameof(CgroupResources.MemoryLimit));
        CheckBytes(resources.MemorySwap, nameof(CgroupResources.MemorySwap));
        CheckBytes(resources.MemoryReservation, nameof(CgroupResources.MemoryReservation));
        if (resources.MemorySwap is { } swap and > 0)
        {
            if (resources.MemoryLimit is not > 0)
            {
                throw Invalid($"MemorySwap {swap} is set without a MemoryLimit");
            }

            if (swap < resources.MemoryLimit.Value)
            {
                throw Invalid($"MemorySwap {swap} is less than MemoryLimit {resources.MemoryLimit.Value} (it is memory plus swap)");
            }
        }

        if (resources.MemoryReservation is { } reservation and > 0 && resources.MemoryLimit is { } limit and > 0 && reservation > limit)
        {
            throw Invalid($"MemoryReservation {reservation} is greater than MemoryLimit {limit}");
        }

        if (resources.MemorySwappiness is > 100)
        {
            throw Invalid($"MemorySwappiness {resources.MemorySwappiness} is outside 0..100");
        }

        if (resources.PidsLimit is < -1)
        {
            throw Invalid($"PidsLimit {resources.PidsLimit} is negative (use -1 or 0 for unlimited)");
        }

        foreach (var size in resources.HugepageLimits?.Keys ?? Enumerable.Empty<string>())
        {
            if (!IsPageSize(size))
            {
                throw Invalid($"HugepageLimits page size \"{size}\" is not a size like 2MB or 1GB");
            }
        }

        if (resources.BlkioWeight is { } weight && weight != 0 && (weight < 10 || weight > 1000))
        {
            throw Invalid($"BlkioWeight {weight} is outside 10..1000");
        }

        CheckThrottles(resources.ThrottleReadBps, nameof(CgroupResources.ThrottleReadBps));
        CheckThrottles(resources.ThrottleWriteBps, nameof(CgroupResources.ThrottleWriteBps));
        CheckThrottles(resources.ThrottleReadIops, nameof(CgroupResources.ThrottleReadIops));
        CheckThrottles(resources.ThrottleWriteIops, nameof(CgroupResources.ThrottleWriteIops));

        foreach (var (key, value) in resources.Unified ?? new Dictionary<string, string>())
        {
            CheckUnifiedKey(key);
            if (value is null || value.Contains('\0'))
            {
                throw Invalid($"Unified[\"{key}\"] has no value or contains a NUL");
            }
        }

        var index = 0;
        foreach (var rule in resources.Devices ?? [])
        {
            var field = $"Devices[{index}]";
            if (rule.Type is not ('a' or 'b' or 'c'))
            {
                throw Invalid($"{field} type '{rule.Type}' is not a, b or c");
            }

            if (rule.Major < -1 || rule.Minor < -1)
            {
                throw Invalid($"{field} major/minor {rule.Major}:{rule.Minor} is negative (use -1 for any)");
            }

            if (string.IsNullOrEmpty(rule.Access) || rule.Access.Any(c => c is not ('r' or 'w' or 'm')) ||
                rule.Access.Distinct().Count() != rule.Access.Length)
            {
                throw Invalid($"{field} access \"{rule.Access}\" is not a subset of rwm");
            }

            index++;
        }
    }

    /// <summary>Refuses a Unified key that is not a plain "controller.file" name of this cgroup.</summary>
    internal static void CheckUnifiedKey(string key)
    {
        if (string.IsNullOrEmpty(key) || key.Contains('/') || key.Contains("..", StringComparison.Ordinal) ||
            key.Contains('\0') || key.StartsWith('.') || !key.Contains('.'))
        {
            throw Invalid($"Unified key \"{key}\" is not a cgroup file name like memory.high");
        }

        if (ForbiddenUnifiedKeys.Contains(key))
        {
            throw Invalid($"Unified key \"{key}\" controls the hierarchy, not a resource");
        }
    }

    private static bool IsPageSize(string size)
    {
        var unit = size.Length > 2 ? size[^2..] : string.Empty;
        return unit is "KB" or "MB" or "GB" && size[..^2].Length > 0 && size[..^2].All(char.IsAsciiDigit);
    }

    private static void CheckCpuList(string? value, string field)
    {
        if (value is not null && value.Any(c => !char.IsAsciiDigit(c) && c is not (',' or '-')))
        {
            throw Invalid($"{field} \"{value}\" is not a list like 0-3,5");
        }
    }

    private static void CheckBytes(long? value, string field)
    {
        if (value is < -1)
        {
            throw Invalid($"{field} {value} is negative (use -1 for unlimited)");
        }
    }

    private static void CheckThrottles(IReadOnlyList<DeviceThrottle>? throttles, string field)
    {
        for (var i = 0; i < (throttles?.Count ?? 0); i++)
        {
            var throttle = throttles![i];
            if (throttle.Major < 0 || throttle.Minor < 0)
            {
                throw Invalid($"{field}[{i}] device {throttle.Major}:{throttle.Minor} is not a device number");
            }
        }
    }

    private static NacelleException Invalid(string message) => NacelleException.InvalidArgument($"cgroup resources: {message}");
}
