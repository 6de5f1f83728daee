namespace Nacelle.ContainerCore.Cgroups;

/// <summary>How the kernel's cgroup hierarchies are mounted on this node.</summary>
public enum CgroupMode
{
    /// <summary>No cgroup filesystem is mounted at all.</summary>
    None,
    /// <summary>cgroup v1 controllers only.</summary>
    Legacy,
    /// <summary>cgroup v1 controllers, plus a cgroup2 mount (usually /sys/fs/cgroup/unified) without them.</summary>
    Hybrid,
    /// <summary>cgroup v2 only: one unified hierarchy at /sys/fs/cgroup.</summary>
    Unified,
}

/// <summary>
/// The cgroup mounts of this node as read from a mountinfo file: which mode, where each v1 controller
/// is mounted, and where the cgroup2 hierarchy is. Parsing is pure so it can be tested against fixtures.
/// </summary>
public sealed class CgroupLayout
{
    private CgroupLayout(CgroupMode mode, IReadOnlyDictionary<string, string> v1Controllers, string? unifiedMount, IReadOnlyList<string> v1Named)
    {
        Mode = mode;
        V1Controllers = v1Controllers;
        UnifiedMount = unifiedMount;
        V1NamedHierarchies = v1Named;
    }

    public CgroupMode Mode { get; }

    /// <summary>v1 controller name (cpu, memory, pids, ...) to its mount point.</summary>
    public IReadOnlyDictionary<string, string> V1Controllers { get; }

    /// <summary>Mount point of the cgroup2 hierarchy, if one is mounted.</summary>
    public string? UnifiedMount { get; }

    /// <summary>Mount points of v1 hierarchies without controllers (name=systemd): nacelle makes no cgroup there, but
    /// another runtime under it (runc as a RuntimeClass handler) does, so removing a cgroup tree removes it there too.</summary>
    public IReadOnlyList<string> V1NamedHierarchies { get; }

    /// <summary>Reads the calling process's mountinfo.</summary>
    public static CgroupLayout Detect(string mountinfoPath = "/proc/self/mountinfo") =>
        Parse(File.ReadAllText(mountinfoPath));

    // v1 super options that are mount flags, not controller names.
    private static readonly HashSet<string> NonControllerOptions = new(StringComparer.Ordinal)
    {
        "rw", "ro", "nosuid", "nodev", "noexec", "relatime", "noatime", "clone_children", "xattr", "nsdelegate",
        "memory_recursiveprot", "favordynmods", "memory_localevents",
    };

    /// <summary>
    /// Parses mountinfo text (proc(5): "id parent maj:min root mountpoint opts [optional...] - fstype source superopts").
    /// </summary>
    public static CgroupLayout Parse(string mountinfo)
    {
        var controllers = new Dictionary<string, string>(StringComparer.Ordinal);
        var named = new List<string>();
        string? unified = null;
        foreach (var rawLine in mountinfo.Split('\n'))
        {
            var fields = rawLine.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var dash = Array.IndexOf(fields, "-");
            if (dash < 5 || dash + 3 > fields.Length)
            {
                continue;
            }

            var mountPoint = Unescape(fields[4]);
            var fsType = fields[dash + 1];
            if (fsType == "cgroup2")
            {
                // Prefer the canonical location when more than one cgroup2 mount exists.
                if (unified is null || mountPoint == "/sys/fs/cgroup")
                {
                    unified = mountPoint;
                }
            }
            else if (fsType == "cgroup")
            {
                var superOptions = fields.Length > dash + 3 ? fields[dash + 3] : string.Empty;
                var hasController = false;
                var hasName = false;
                foreach (var option in superOptions.Split(','))
                {
                    if (option.Length == 0 || NonControllerOptions.Contains(option) || option.Contains('='))
                    {
                        // name=systemd and friends are named hierarchies, not controllers
                        hasName |= option.StartsWith("name=", StringComparison.Ordinal);
                        continue;
                    }

                    hasController = true;
                    controllers.TryAdd(option, mountPoint);
                }

                if (!hasController && hasName && !named.Contains(mountPoint))
                {
                    named.Add(mountPoint);
                }
            }
        }

        var mode = (controllers.Count, unified) switch
        {
            (0, null) => CgroupMode.None,
            (0, _) => CgroupMode.Unified,
            (_, null) => CgroupMode.Legacy,
            _ => CgroupMode.Hybrid,
        };
        return new CgroupLayout(mode, controllers, unified, named);
    }

    // mountinfo escapes space, tab, newline and backslash as \ooo octal.
    private static string Unescape(string value)
    {
        if (!value.Contains('\\'))
        {
            return value;
        }

        var builder = new System.Text.StringBuilder(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            if (value[i] == '\\' && IsOctal(value, i + 1))
            {
                builder.Append((char)Convert.ToInt32(value.Substring(i + 1, 3), 8));
                i += 3;
            }
            else
            {
                builder.Append(value[i]);
            }
        }

        return builder.ToString();
    }

    private static bool IsOctal(string value, int start)
    {
        if (start + 3 > value.Length)
        {
            return false;
        }

        for (var i = start; i < start + 3; i++)
        {
            if (value[i] < '0' || value[i] > '7')
            {
                return false;
            }
        }

        return true;
    }
}
