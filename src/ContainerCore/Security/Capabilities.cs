using System.Globalization;
using Nacelle.Common;
using Nacelle.ContainerCore.Spec;

namespace Nacelle.ContainerCore.Security;

/// <summary>The five capability sets as 64-bit masks (bit n = capability n), as the spawn helper applies them.</summary>
public readonly record struct CapabilitySets(ulong Bounding, ulong Effective, ulong Inheritable, ulong Permitted, ulong Ambient);

/// <summary>Linux capabilities: the name table (linux/capability.h), parsing, masks and the CRI add/drop rules.</summary>
public static class Capabilities
{
    /// <summary>The highest capability nacelle knows (CAP_CHECKPOINT_RESTORE).</summary>
    public const int LastKnown = 40;

    /// <summary>Where the kernel publishes its highest capability.</summary>
    public const string CapLastCapPath = "/proc/sys/kernel/cap_last_cap";

    /// <summary>Capability names indexed by number.</summary>
    public static IReadOnlyList<string> Names { get; } =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", // 0-4
        "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", // 5-9
        "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", // 10-14
        "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", // 15-19
        "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", // 20-24
        "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", // 25-29
        "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", // 30-34
        "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", // 35-39
        "CAP_CHECKPOINT_RESTORE", // 40
    ];

    /// <summary>What container runtimes give a non-privileged container by default.</summary>
    public static IReadOnlyList<string> DefaultNames { get; } =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ];

    private static readonly Dictionary<string, int> ByName = BuildIndex();

    /// <summary>The number of a capability named with or without the "CAP_" prefix, in any case; null when unknown.</summary>
    public static int? TryParse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var upper = name.Trim().ToUpperInvariant();
        if (!upper.StartsWith("CAP_", StringComparison.Ordinal))
        {
            upper = "CAP_" + upper;
        }

        return ByName.TryGetValue(upper, out var n) ? n : null;
    }

    /// <summary>The number of a capability; unknown names are refused naming them (and <paramref name="field"/>).</summary>
    public static int Parse(string name, string field = "capabilities")
        => TryParse(name) ?? throw new NacelleException(ErrorKind.InvalidArgument, $"{field}: unknown capability \"{name}\"");

    /// <summary>The canonical name ("CAP_X") of a capability name given with or without prefix.</summary>
    public static string Canonical(string name, string field = "capabilities") => Names[Parse(name, field)];

    /// <summary>The mask of <paramref name="names"/>, restricted to capabilities 0..<paramref name="lastCap"/>.
    /// Unknown names are refused, all of them named.</summary>
    public static ulong ToMask(IEnumerable<string> names, int lastCap = LastKnown, string field = "capabilities")
    {
        ArgumentNullException.ThrowIfNull(names);
        ulong mask = 0;
        List<string>? unknown = null;
        foreach (var name in names)
        {
            if (TryParse(name) is { } n)
            {
                mask |= 1UL << n;
            }
            else
            {
                (unknown ??= []).Add(name);
            }
        }

        if (unknown is not null)
        {
            throw new NacelleException(
                ErrorKind.InvalidArgument,
                $"{field}: unknown capabilit{(unknown.Count == 1 ? "y" : "ies")} {string.Join(", ", unknown.Select(u => $"\"{u}\""))}");
        }

        return mask & MaskUpTo(lastCap);
    }

    /// <summary>The names of the capabilities set in <paramref name="mask"/>, in number order.</summary>
    public static IReadOnlyList<string> ToNames(ulong mask)
    {
        var names = new List<string>();
        for (var i = 0; i <= LastKnown; i++)
        {
            if ((mask & (1UL << i)) != 0)
            {
                names.Add(Names[i]);
            }
        }

        return names;
    }

    /// <summary>Every capability 0..<paramref name="lastCap"/> (clamped to 0..63).</summary>
    public static ulong MaskUpTo(int lastCap) => lastCap switch
    {
        < 0 => 0,
        >= 63 => ulong.MaxValue,
        _ => (1UL << (lastCap + 1)) - 1,
    };

    /// <summary>
    /// The capability list of a container as CRI asks for it: start from <paramref name="defaults"/> (the runtime's default
    /// list when null); "ALL" in add means every capability the kernel has, "ALL" in drop empties the list; then the named
    /// additions are added and the named drops removed (so add ALL + drop X is everything but X, and drop ALL + add Y is Y).
    /// </summary>
    public static ulong ResolveCri(
        IEnumerable<string>? add, IEnumerable<string>? drop, int lastCap = LastKnown, IEnumerable<string>? defaults = null)
    {
        var addList = (add ?? []).ToList();
        var dropList = (drop ?? []).ToList();
        static bool IsAll(string s) => string.Equals(s.Trim(), "ALL", StringComparison.OrdinalIgnoreCase);

        var mask = ToMask(defaults ?? DefaultNames, lastCap, "default capabilities");
        if (addList.Any(IsAll))
        {
            mask = MaskUpTo(lastCap);
        }

        if (dropList.Any(IsAll))
        {
            mask = 0;
        }

        mask |= ToMask(addList.Where(s => !IsAll(s)), lastCap, "add_capabilities");
        mask &= ~ToMask(dropList.Where(s => !IsAll(s)), lastCap, "drop_capabilities");
        return mask & MaskUpTo(lastCap);
    }

    /// <summary>
    /// The capabilities this process holds and may pass on (permitted and bounding, from /proc/self/status). A root
    /// daemon on a hardened node or inside another container lacks some (CAP_SYS_RESOURCE here): "ALL" and privileged
    /// containers get what the runtime has, as containerd does, since the kernel refuses to grant more.
    /// </summary>
    public static ulong? OfThisProcess(string statusPath = "/proc/self/status")
    {
        ulong? permitted = null, bounding = null;
        foreach (var line in File.ReadLines(statusPath))
        {
            if (line.StartsWith("CapPrm:", StringComparison.Ordinal))
            {
                permitted = ulong.Parse(line.AsSpan(7).Trim(), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
            }
            else if (line.StartsWith("CapBnd:", StringComparison.Ordinal))
            {
                bounding = ulong.Parse(line.AsSpan(7).Trim(), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return permitted is { } p && bounding is { } b ? p & b : null;
    }

    /// <summary>The sets for a container from one capability mask, as CRI runtimes set them: bounding, effective and
    /// permitted get the mask; inheritable and ambient stay empty.</summary>
    public static CapabilitySets ForContainer(ulong mask) => new(mask, mask, 0, mask, 0);

    /// <summary>The sets of an OCI spec's <c>process.capabilities</c>, each clamped to the host's capabilities.</summary>
    public static CapabilitySets FromSpec(SpecCapabilities? spec, int lastCap)
    {
        if (spec is null)
        {
            return default;
        }

        return new CapabilitySets(
            ToMask(spec.Bounding, lastCap, "process.capabilities.bounding"),
            ToMask(spec.Effective, lastCap, "process.capabilities.effective"),
            ToMask(spec.Inheritable, lastCap, "process.capabilities.inheritable"),
            ToMask(spec.Permitted, lastCap, "process.capabilities.permitted"),
            ToMask(spec.Ambient, lastCap, "process.capabilities.ambient"));
    }

    /// <summary>The host's highest capability from <paramref name="path"/> (cap_last_cap); <see cref="LastKnown"/> when
    /// the file does not exist (kernels before 3.2).</summary>
    public static int ReadHostLastCap(string path = CapLastCapPath)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return LastKnown;
        }

        return ParseLastCap(text, path);
    }

    /// <summary>Parses the content of cap_last_cap (a decimal number and a newline).</summary>
    public static int ParseLastCap(string text, string source = CapLastCapPath)
    {
        if (!int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var last) || last > 63)
        {
            throw new NacelleException(ErrorKind.Internal, $"{source}: unexpected content \"{text.Trim()}\"");
        }

        return last;
    }

    private static Dictionary<string, int> BuildIndex()
    {
        var map = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < Names.Count; i++)
        {
            map.Add(Names[i], i);
        }

        return map;
    }
}
