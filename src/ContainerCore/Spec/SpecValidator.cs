using Nacelle.Common;

namespace Nacelle.ContainerCore.Spec;

/// <summary>
/// Refuses a spec that asks for something nacelle does not support or that contradicts itself, before anything
/// is created. Each message names the field ("linux.namespaces[2].type: ...").
/// </summary>
public static class SpecValidator
{
    public static readonly IReadOnlySet<string> NamespaceTypes =
        new HashSet<string>(StringComparer.Ordinal) { "pid", "network", "ipc", "uts", "mount", "cgroup", "user", "time" };

    public static readonly IReadOnlySet<string> RlimitTypes = new HashSet<string>(StringComparer.Ordinal)
    {
        "RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_LOCKS", "RLIMIT_MEMLOCK",
        "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_RSS", "RLIMIT_RTPRIO",
        "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK",
    };

    public static readonly IReadOnlySet<string> MountTypes =
        new HashSet<string>(StringComparer.Ordinal) { "bind", "proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2" };

    private static readonly HashSet<string> Propagations = new(StringComparer.Ordinal)
        { "", "private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable" };

    public static void Validate(RuntimeSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (!spec.OciVersion.StartsWith("1.", StringComparison.Ordinal))
        {
            Refuse("ociVersion", $"'{spec.OciVersion}' is not a 1.x runtime spec");
        }

        ValidateProcess(spec.Process ?? throw Refusal("process", "is required"), "process");
        if (string.IsNullOrEmpty(spec.Root?.Path))
        {
            Refuse("root.path", "is required");
        }

        var linux = spec.Linux ?? new SpecLinux();
        var namespaces = ValidateNamespaces(linux);

        if (!string.IsNullOrEmpty(spec.Hostname) && !namespaces.NewOrJoined("uts"))
        {
            Refuse("hostname", "needs a uts namespace (linux.namespaces has none)");
        }

        if (!string.IsNullOrEmpty(spec.Domainname) && !namespaces.NewOrJoined("uts"))
        {
            Refuse("domainname", "needs a uts namespace (linux.namespaces has none)");
        }

        for (var i = 0; i < spec.Mounts.Count; i++)
        {
            ValidateMount(spec.Mounts[i], $"mounts[{i}]");
        }

        ValidateLinux(linux, namespaces);
    }

    /// <summary>How many argv (and, separately, env) strings the spawn helper passes to execve.</summary>
    public const int MaxExecStrings = 131072;

    /// <summary>The kernel's MAX_ARG_STRLEN: one argv or env string, with its NUL, may take at most 32 pages.</summary>
    public const int MaxExecStringBytes = 32 * 4096;

    /// <summary>
    /// Refuses a process the kernel could not execve — too many argv/env strings for the spawn helper, a string over
    /// MAX_ARG_STRLEN, or argv+env (strings, NULs and pointers, as the kernel counts them) over its limit of a quarter of
    /// the stack rlimit (at least 128 KiB, at most 6 MiB) — and the other malformed fields; every refusal names the field
    /// and the limit. Nothing is ever cut short silently.
    /// </summary>
    public static void ValidateProcess(SpecProcess process, string field = "process")
    {
        ArgumentNullException.ThrowIfNull(process);
        if (process.Args.Count == 0 || string.IsNullOrEmpty(process.Args[0]))
        {
            Refuse($"{field}.args", "must name the program to run");
        }

        ValidateExecSize(process, field);

        if (!process.Cwd.StartsWith('/'))
        {
            Refuse($"{field}.cwd", $"'{process.Cwd}' is not an absolute path");
        }

        for (var i = 0; i < process.Env.Count; i++)
        {
            if (!process.Env[i].Contains('=') || process.Env[i].StartsWith('='))
            {
                Refuse($"{field}.env[{i}]", $"'{process.Env[i]}' is not NAME=value");
            }
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < process.Rlimits.Count; i++)
        {
            var limit = process.Rlimits[i];
            var at = $"{field}.rlimits[{i}]";
            if (!RlimitTypes.Contains(limit.Type))
            {
                Refuse($"{at}.type", $"'{limit.Type}' is not a resource limit");
            }

            if (!seen.Add(limit.Type))
            {
                Refuse($"{at}.type", $"{limit.Type} is given more than once");
            }

            if (limit.Soft > limit.Hard)
            {
                Refuse(at, $"soft limit {limit.Soft} exceeds hard limit {limit.Hard}");
            }
        }

        if (process.OomScoreAdj is < -1000 or > 1000)
        {
            Refuse($"{field}.oomScoreAdj", $"{process.OomScoreAdj} is outside -1000..1000");
        }

        if (process.ConsoleSize is not null && !process.Terminal)
        {
            Refuse($"{field}.consoleSize", "is only meaningful with terminal: true");
        }
    }

    private static void ValidateExecSize(SpecProcess process, string field)
    {
        long total = 0;
        foreach (var (list, name) in new[] { (process.Args, "args"), (process.Env, "env") })
        {
            if (list.Count > MaxExecStrings)
            {
                Refuse($"{field}.{name}", $"has {list.Count} entries, more than the {MaxExecStrings} nacelle passes to execve");
            }

            for (var i = 0; i < list.Count; i++)
            {
                var bytes = System.Text.Encoding.UTF8.GetByteCount(list[i] ?? "") + 1;
                if (bytes > MaxExecStringBytes)
                {
                    Refuse($"{field}.{name}[{i}]", $"is {bytes} bytes, over the kernel's limit of {MaxExecStringBytes} bytes for one execve string (MAX_ARG_STRLEN)");
                }

                total += bytes + IntPtr.Size;
            }
        }

        var limit = ExecveLimit(process);
        if (total > limit)
        {
            Refuse($"{field}.args and {field}.env",
                $"take {total} bytes (strings and pointers), over the kernel's execve limit of {limit} bytes (a quarter of the stack rlimit)");
        }
    }

    /// <summary>The kernel's bound on argv+env for an execve: a quarter of RLIMIT_STACK's soft limit (the process's own when
    /// the spec sets one, else the usual 8 MiB), at least ARG_MAX (128 KiB), at most three quarters of _STK_LIM (6 MiB).</summary>
    public static long ExecveLimit(SpecProcess process)
    {
        ArgumentNullException.ThrowIfNull(process);
        var stack = process.Rlimits.FirstOrDefault(r => r.Type == "RLIMIT_STACK")?.Soft ?? 8UL << 20;
        var quarter = (long)Math.Min(stack / 4, long.MaxValue);
        return Math.Clamp(quarter, 128L << 10, 6L << 20);
    }

    private sealed class Namespaces(Dictionary<string, SpecNamespace> byType)
    {
        public bool NewOrJoined(string type) => byType.ContainsKey(type);

        public bool New(string type) => byType.TryGetValue(type, out var ns) && string.IsNullOrEmpty(ns.Path);
    }

    private static Namespaces ValidateNamespaces(SpecLinux linux)
    {
        var byType = new Dictionary<string, SpecNamespace>(StringComparer.Ordinal);
        for (var i = 0; i < linux.Namespaces.Count; i++)
        {
            var ns = linux.Namespaces[i];
            var at = $"linux.namespaces[{i}]";
            if (!NamespaceTypes.Contains(ns.Type))
            {
                Refuse($"{at}.type", $"'{ns.Type}' is not a namespace type ({string.Join(", ", NamespaceTypes)})");
            }

            if (!byType.TryAdd(ns.Type, ns))
            {
                Refuse($"{at}.type", $"the {ns.Type} namespace is listed twice");
            }

            if (!string.IsNullOrEmpty(ns.Path) && !ns.Path.StartsWith('/'))
            {
                Refuse($"{at}.path", $"'{ns.Path}' is not an absolute path");
            }
        }

        // Mappings are written for a new user namespace; with a joined one they describe it (containerd sends both, as
        // runc checks them), and nacelle idmaps mounts only with a joined namespace's mappings.
        var hasMappings = linux.UidMappings.Count > 0 || linux.GidMappings.Count > 0;
        var hasUserNs = byType.TryGetValue("user", out var user);
        var newUserNs = hasUserNs && string.IsNullOrEmpty(user!.Path);
        if (hasMappings && !hasUserNs)
        {
            Refuse("linux.uidMappings", "id mappings need a user namespace (linux.namespaces has none)");
        }

        if (newUserNs && (linux.UidMappings.Count == 0 || linux.GidMappings.Count == 0))
        {
            Refuse("linux.uidMappings", "a new user namespace needs uid and gid mappings");
        }

        IdMappings.Validate(linux.UidMappings, "linux.uidMappings");
        IdMappings.Validate(linux.GidMappings, "linux.gidMappings");

        return new Namespaces(byType);
    }

    private static void ValidateMount(SpecMount mount, string at)
    {
        if (!mount.Destination.StartsWith('/'))
        {
            Refuse($"{at}.destination", $"'{mount.Destination}' is not an absolute path");
        }

        if (mount.Destination.Split('/').Contains(".."))
        {
            Refuse($"{at}.destination", $"'{mount.Destination}' climbs with '..'");
        }

        var isBind = mount.Type == "bind" || mount.Options.Contains("bind") || mount.Options.Contains("rbind");
        var type = isBind ? "bind" : mount.Type ?? string.Empty;
        if (!MountTypes.Contains(type))
        {
            Refuse($"{at}.type", $"'{mount.Type}' is not a supported mount type ({string.Join(", ", MountTypes)})");
        }

        if (isBind && string.IsNullOrEmpty(mount.Source))
        {
            Refuse($"{at}.source", "a bind mount needs a source");
        }

        var uids = mount.UidMappings ?? [];
        var gids = mount.GidMappings ?? [];
        if (uids.Count > 0 || gids.Count > 0)
        {
            if (!isBind)
            {
                Refuse($"{at}.uidMappings", "only a bind mount can be idmapped");
            }

            if (uids.Count == 0 || gids.Count == 0)
            {
                Refuse($"{at}.uidMappings", "an idmapped mount needs both uidMappings and gidMappings");
            }

            IdMappings.Validate(uids, $"{at}.uidMappings");
            IdMappings.Validate(gids, $"{at}.gidMappings");
        }
    }

    private static void ValidateLinux(SpecLinux linux, Namespaces namespaces)
    {
        foreach (var key in linux.Sysctl.Keys)
        {
            var needs = SysctlNamespace(key);
            if (needs is null)
            {
                Refuse($"linux.sysctl.{key}", "is not namespaced: it would change the whole node");
            }

            if (!namespaces.New(needs!))
            {
                Refuse($"linux.sysctl.{key}", $"needs a new {needs} namespace");
            }
        }

        if (!Propagations.Contains(linux.RootfsPropagation ?? string.Empty))
        {
            Refuse("linux.rootfsPropagation", $"'{linux.RootfsPropagation}' is not a propagation mode");
        }

        CheckPaths(linux.MaskedPaths, "linux.maskedPaths");
        CheckPaths(linux.ReadonlyPaths, "linux.readonlyPaths");

        for (var i = 0; i < linux.Devices.Count; i++)
        {
            var device = linux.Devices[i];
            if (device.Type is not ("c" or "b" or "u" or "p"))
            {
                Refuse($"linux.devices[{i}].type", $"'{device.Type}' is not c, b, u or p");
            }

            if (!device.Path.StartsWith("/dev/", StringComparison.Ordinal) || device.Path.Split('/').Contains(".."))
            {
                Refuse($"linux.devices[{i}].path", $"'{device.Path}' is not a path under /dev");
            }
        }

        if (linux.Resources is { } resources)
        {
            ValidateResources(resources);
        }
    }

    private static void ValidateResources(SpecResources resources)
    {
        for (var i = 0; i < resources.Devices.Count; i++)
        {
            var rule = resources.Devices[i];
            if (rule.Type is not (null or "a" or "b" or "c"))
            {
                Refuse($"linux.resources.devices[{i}].type", $"'{rule.Type}' is not a, b or c");
            }

            if (rule.Access is not null && (rule.Access.Length == 0 || rule.Access.Any(c => c is not ('r' or 'w' or 'm'))))
            {
                Refuse($"linux.resources.devices[{i}].access", $"'{rule.Access}' is not a combination of r, w and m");
            }
        }

        if (resources.Memory is { Limit: > 0 } memory && memory.Swap is > 0 && memory.Swap < memory.Limit)
        {
            Refuse("linux.resources.memory.swap", $"{memory.Swap} is less than the memory limit {memory.Limit} (swap counts memory + swap)");
        }

        if (resources.Cpu is { } cpu)
        {
            if (cpu.Shares is { } shares && shares < 2)
            {
                Refuse("linux.resources.cpu.shares", $"{cpu.Shares} is below the minimum of 2");
            }

            if (cpu.Period is { } period && period != 0 && period is < 1000 or > 1_000_000)
            {
                Refuse("linux.resources.cpu.period", $"{cpu.Period} µs is outside 1000..1000000");
            }
        }

        if (resources.Pids is { Limit: 0 or < -1 })
        {
            Refuse("linux.resources.pids.limit", $"{resources.Pids.Limit} is neither a positive limit nor -1 (unlimited)");
        }

        foreach (var key in resources.Unified.Keys)
        {
            if (key.Contains('/') || key.Contains("..", StringComparison.Ordinal) || !key.Contains('.'))
            {
                Refuse($"linux.resources.unified.{key}", "is not a cgroup v2 interface file name");
            }
        }
    }

    /// <summary>The namespace that makes a sysctl per-container, or null when it is node-wide. Keys may be written with
    /// dots or slashes ("net/ipv4/conf/eth0.100/forwarding").</summary>
    public static string? SysctlNamespace(string key) => Classify(key.Contains('/') ? key.Replace('/', '.') : key);

    private static string? Classify(string key) => key switch
    {
        _ when key.StartsWith("net.", StringComparison.Ordinal) => "network",
        "kernel.msgmax" or "kernel.msgmnb" or "kernel.msgmni" or "kernel.sem" or "kernel.shmall" or "kernel.shmmax"
            or "kernel.shmmni" or "kernel.shm_rmid_forced" => "ipc",
        _ when key.StartsWith("fs.mqueue.", StringComparison.Ordinal) => "ipc",
        "kernel.hostname" or "kernel.domainname" => "uts",
        _ => null,
    };

    private static void CheckPaths(List<string> paths, string field)
    {
        for (var i = 0; i < paths.Count; i++)
        {
            if (!paths[i].StartsWith('/'))
            {
                Refuse($"{field}[{i}]", $"'{paths[i]}' is not an absolute path");
            }
        }
    }

    private static NacelleException Refusal(string field, string why) => NacelleException.InvalidArgument($"{field}: {why}");

    private static void Refuse(string field, string why) => throw Refusal(field, why);
}
