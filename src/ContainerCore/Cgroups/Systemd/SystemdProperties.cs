using System.Globalization;
using Nacelle.Common;

namespace Nacelle.ContainerCore.Cgroups.Systemd;

/// <summary>
/// One unit property for StartTransientUnit/SetUnitProperties: its name, D-Bus signature and value (bool for "b",
/// ulong for "t", string for "s", uint[] for "au", (string, string)[] for "a(ss)").
/// </summary>
public sealed record SystemdProperty(string Name, string Signature, object Value)
{
    public static SystemdProperty Bool(string name, bool value) => new(name, "b", value);
    public static SystemdProperty UInt64(string name, ulong value) => new(name, "t", value);
    public static SystemdProperty String(string name, string value) => new(name, "s", value);
}

/// <summary>
/// A container's limits as unit properties (pure). systemd writes the cgroup files of a unit from its properties, and
/// writes its defaults (cpu.shares 1024, no memory or task limit, ...) for the ones not set, whenever it realizes the
/// unit: so every limit nacelle sets goes into the unit as well, under the names of the hierarchy in use (cgroup v1:
/// CPUShares, MemoryLimit, BlockIOWeight; v2: CPUWeight, MemoryMax, IOWeight). Device rules become DevicePolicy and
/// DeviceAllow; what systemd cannot express is left out of its list, so a reapplication by systemd is never looser
/// than the rules nacelle writes itself.
/// </summary>
public static class SystemdProperties
{
    /// <summary>systemd's "infinity" for limits and quotas.</summary>
    public const ulong Infinity = ulong.MaxValue;

    private static readonly (string Device, string Access)[] AllowEverything = [("char-*", "rwm"), ("block-*", "rwm")];

    /// <summary>The properties of a container scope holding <paramref name="pid"/>, with its limits.</summary>
    public static IReadOnlyList<SystemdProperty> ForScope(SystemdScope scope, string description, int pid, CgroupResources? resources, bool unified,
        Func<char, long, string?> deviceGroup)
    {
        ArgumentNullException.ThrowIfNull(scope);
        var properties = new List<SystemdProperty>
        {
            SystemdProperty.String("Description", description),
            SystemdProperty.String("Slice", scope.Slice),
            new("PIDs", "au", new[] { checked((uint)pid) }),
            // The container's processes are nacelle's: systemd does not reach into the subtree, and stops the scope
            // without ordering it against anything else.
            SystemdProperty.Bool("Delegate", true),
            SystemdProperty.Bool("DefaultDependencies", false),
            SystemdProperty.Bool("CPUAccounting", true),
            SystemdProperty.Bool("MemoryAccounting", true),
            SystemdProperty.Bool("TasksAccounting", true),
            SystemdProperty.Bool(unified ? "IOAccounting" : "BlockIOAccounting", true),
        };
        if (resources is not null)
        {
            properties.AddRange(Limits(resources, unified, deviceGroup));
        }

        // On cgroup v1 systemd keeps a unit's directory only in the hierarchies of controllers the unit needs, and
        // moves its processes to an ancestor (removing nacelle's directory) in the others. So the scope needs every
        // controller systemd manages: cpu (shares at the kernel's default when none are asked for) and devices (allow
        // everything, as a new v1 devices cgroup does, when there are no rules); the accounting flags above cover
        // cpuacct, memory, pids and blkio.
        if (!unified && resources?.CpuShares is not > 0)
        {
            properties.Add(SystemdProperty.UInt64("CPUShares", 1024));
        }

        if (resources?.Devices is not { Count: > 0 })
        {
            properties.Add(SystemdProperty.String("DevicePolicy", "auto"));
            properties.Add(new SystemdProperty("DeviceAllow", "a(ss)", AllowEverything.ToArray()));
        }

        return properties;
    }

    /// <summary>The limits alone (for SetUnitProperties on an update).</summary>
    public static IReadOnlyList<SystemdProperty> Limits(CgroupResources r, bool unified, Func<char, long, string?> deviceGroup)
    {
        ArgumentNullException.ThrowIfNull(r);
        var properties = new List<SystemdProperty>();
        if (r.CpuShares is { } shares and > 0)
        {
            properties.Add(unified
                ? SystemdProperty.UInt64("CPUWeight", CgroupConversions.SharesToWeight(shares))
                : SystemdProperty.UInt64("CPUShares", shares));
        }

        if (r.CpuQuota is { } quota)
        {
            var period = r.CpuPeriod is { } p and > 0 ? p : 100_000UL;
            properties.Add(SystemdProperty.UInt64("CPUQuotaPeriodUSec", period));
            properties.Add(SystemdProperty.UInt64("CPUQuotaPerSecUSec", quota > 0 ? QuotaPerSecond((ulong)quota, period) : Infinity));
        }

        if (r.MemoryLimit is { } memory and not 0)
        {
            properties.Add(SystemdProperty.UInt64(unified ? "MemoryMax" : "MemoryLimit", memory > 0 ? (ulong)memory : Infinity));
        }

        if (r.PidsLimit is { } pids)
        {
            properties.Add(SystemdProperty.UInt64("TasksMax", pids > 0 ? (ulong)pids : Infinity));
        }

        if (r.BlkioWeight is { } weight and > 0)
        {
            properties.Add(unified
                ? SystemdProperty.UInt64("IOWeight", CgroupConversions.BlkioWeightToIoWeight(weight))
                : SystemdProperty.UInt64("BlockIOWeight", weight));
        }

        if (r.Devices is { Count: > 0 } devices)
        {
            var (policy, allow) = Devices(devices, deviceGroup);
            properties.Add(SystemdProperty.String("DevicePolicy", policy));
            // DeviceAllow adds to a unit's list; an empty one first clears what an earlier start or update set.
            properties.Add(new SystemdProperty("DeviceAllow", "a(ss)", Array.Empty<(string, string)>()));
            properties.Add(new SystemdProperty("DeviceAllow", "a(ss)", allow.ToArray()));
        }

        return properties;
    }

    /// <summary>
    /// The quota per second of CPU time for a CFS quota per period, rounded up to systemd's 10 ms granularity (so the
    /// quota systemd writes is never below the one asked for).
    /// </summary>
    public static ulong QuotaPerSecond(ulong quota, ulong period)
    {
        var perSecond = (quota * 1_000_000UL + period - 1) / period;
        return (perSecond + 9_999UL) / 10_000UL * 10_000UL;
    }

    /// <summary>
    /// OCI device rules (in order, later ones winning) as systemd's DevicePolicy ("auto": everything allowed; "strict":
    /// only the DeviceAllow entries) and DeviceAllow entries ("/dev/char/1:3" for one device, "char-pts" for every minor
    /// of a major whose name in /proc/devices is its own, "char-*"/"block-*" for all). An allowance systemd cannot express
    /// exactly is left out (stricter); a deny under an allow-everything policy cannot be expressed at all and is refused.
    /// </summary>
    public static (string Policy, IReadOnlyList<(string Device, string Access)> Allow) Devices(
        IReadOnlyList<DeviceRule> rules, Func<char, long, string?> deviceGroup)
    {
        ArgumentNullException.ThrowIfNull(rules);
        var allowAll = true;
        var allow = new List<(string Device, string Access)>();
        foreach (var rule in rules)
        {
            var access = Normalize(rule.Access);
            if (rule.Type == 'a')
            {
                if (rule.Allow && access == "rwm")
                {
                    allowAll = true;
                    allow.Clear();
                }
                else if (rule.Allow)
                {
                    allowAll = false;
                    allow.RemoveAll(e => e.Device is "char-*" or "block-*");
                    allow.Add(("char-*", access));
                    allow.Add(("block-*", access));
                }
                else if (access == "rwm" || allowAll)
                {
                    // Denying part of everything while all is allowed: the strict list of what remains, for every device.
                    var remaining = allowAll ? Subtract("rwm", access) : string.Empty;
                    allowAll = false;
                    allow.Clear();
                    if (remaining.Length > 0)
                    {
                        allow.Add(("char-*", remaining));
                        allow.Add(("block-*", remaining));
                    }
                }
                else
                {
                    for (var i = 0; i < allow.Count; i++)
                    {
                        allow[i] = (allow[i].Device, Subtract(allow[i].Access, access));
                    }

                    allow.RemoveAll(e => e.Access.Length == 0);
                }

                continue;
            }

            if (rule.Type is not ('c' or 'b'))
            {
                throw NacelleException.InvalidArgument($"device rule type '{rule.Type}' is not a, b or c");
            }

            var device = DeviceName(rule, deviceGroup);
            if (rule.Allow)
            {
                if (!allowAll && device is not null)
                {
                    allow.Add((device, access));
                }

                continue;
            }

            if (allowAll)
            {
                throw NacelleException.FailedPrecondition(
                    $"device rule \"{rule.ToV1Line()}\" denies one device while every other is allowed, which systemd's DevicePolicy cannot express; use the cgroupfs driver for such a container");
            }

            if (device is not null)
            {
                for (var i = 0; i < allow.Count; i++)
                {
                    if (allow[i].Device == device)
                    {
                        allow[i] = (device, Subtract(allow[i].Access, access));
                    }
                }

                allow.RemoveAll(e => e.Access.Length == 0);
            }
        }

        // Everything allowed is said with entries too: a unit with DevicePolicy=auto and no DeviceAllow would not get
        // a devices cgroup at all on v1 (see ForScope).
        return allowAll ? ("auto", AllowEverything) : ("strict", allow);
    }

    // One device ("/dev/char/1:3"), every minor of a major named by itself alone ("char-pts"), or every device of a
    // type ("char-*"); null when systemd has no exact name for it.
    private static string? DeviceName(DeviceRule rule, Func<char, long, string?> deviceGroup)
    {
        var kind = rule.Type == 'c' ? "char" : "block";
        if (rule.Major < 0)
        {
            return rule.Minor < 0 ? $"{kind}-*" : null;
        }

        if (rule.Minor >= 0)
        {
            return string.Create(CultureInfo.InvariantCulture, $"/dev/{kind}/{rule.Major}:{rule.Minor}");
        }

        return deviceGroup(rule.Type, rule.Major) is { } group ? $"{kind}-{group}" : null;
    }

    private static string Normalize(string access) =>
        string.Concat("rwm".Where(access.Contains));

    private static string Subtract(string access, string removed) =>
        string.Concat(access.Where(c => !removed.Contains(c)));

    /// <summary>
    /// The /proc/devices name of a major number when that name belongs to it alone (so "char-&lt;name&gt;" means exactly
    /// that major); null otherwise. <paramref name="procDevices"/> is the file's text.
    /// </summary>
    public static string? UniqueGroup(string procDevices, char type, long major)
    {
        ArgumentNullException.ThrowIfNull(procDevices);
        var section = type == 'c' ? "Character devices:" : "Block devices:";
        var entries = new List<(long Major, string Name)>();
        var inSection = false;
        foreach (var line in procDevices.Split('\n'))
        {
            var trimmed = line.Trim();
            if (trimmed.EndsWith("devices:", StringComparison.Ordinal))
            {
                inSection = trimmed == section;
                continue;
            }

            var space = trimmed.IndexOf(' ', StringComparison.Ordinal);
            if (inSection && space > 0 && long.TryParse(trimmed[..space], NumberStyles.None, CultureInfo.InvariantCulture, out var number))
            {
                entries.Add((number, trimmed[(space + 1)..].Trim()));
            }
        }

        var names = entries.Where(e => e.Major == major).Select(e => e.Name).Distinct(StringComparer.Ordinal).ToList();
        return names.Count == 1 && entries.Count(e => e.Name == names[0]) == 1 && !names[0].Contains('/') && !names[0].Contains('*')
            ? names[0]
            : null;
    }
}
