using System.Globalization;
using System.Text;
using System.Text.Json;
using Nacelle.Common;
using Nacelle.ContainerCore.Cgroups;
using Nacelle.ContainerCore.Mounts;
using Nacelle.ContainerCore.Security;
using Nacelle.ContainerCore.Security.Seccomp;
using Nacelle.ContainerCore.Spec;

namespace Nacelle.ContainerCore.Spawn;

/// <summary>A spawn request and what had to be adjusted to fit this host (each one worth a log line).</summary>
public sealed record SpawnPlan(SpawnRequest Request, IReadOnlyList<string> Adjustments);

/// <summary>
/// Turns an OCI runtime spec into the helper's <see cref="SpawnRequest"/>: every decision (mount flags, default
/// devices, capability masks, the seccomp program, clamped limits) is made here, in C#, and unit-tested; the helper
/// only executes. Refuses (InvalidArgument, naming the field) what it cannot honour, before anything is created.
/// </summary>
public static class SpawnPlanner
{
    private const uint S_IFCHR = 0x2000;
    private const uint S_IFBLK = 0x6000;
    private const uint S_IFIFO = 0x1000;
    private const uint ReadWriteAll = 0b110_110_110; // 0666

    /// <summary>The devices every container with a tmpfs /dev gets (as runc and crun create them).</summary>
    public static IReadOnlyList<SpawnDevice> DefaultDevices { get; } =
    [
        new("/dev/null", S_IFCHR, ReadWriteAll, 1, 3, 0, 0),
        new("/dev/zero", S_IFCHR, ReadWriteAll, 1, 5, 0, 0),
        new("/dev/full", S_IFCHR, ReadWriteAll, 1, 7, 0, 0),
        new("/dev/random", S_IFCHR, ReadWriteAll, 1, 8, 0, 0),
        new("/dev/urandom", S_IFCHR, ReadWriteAll, 1, 9, 0, 0),
        new("/dev/tty", S_IFCHR, ReadWriteAll, 5, 0, 0, 0),
    ];

    /// <summary>The links of a tmpfs /dev: fd and std* into /proc/self/fd, ptmx into the devpts instance.</summary>
    public static IReadOnlyList<(string Target, string Link)> DefaultLinks { get; } =
    [
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
        ("/proc/kcore", "/dev/core"),
    ];

    /// <summary>Resource numbers of the RLIMIT_* names (asm-generic/resource.h; x86_64 and arm64 agree).</summary>
    public static IReadOnlyDictionary<string, int> RlimitNumbers { get; } = new Dictionary<string, int>(StringComparer.Ordinal)
    {
        ["RLIMIT_CPU"] = 0, ["RLIMIT_FSIZE"] = 1, ["RLIMIT_DATA"] = 2, ["RLIMIT_STACK"] = 3, ["RLIMIT_CORE"] = 4,
        ["RLIMIT_RSS"] = 5, ["RLIMIT_NPROC"] = 6, ["RLIMIT_NOFILE"] = 7, ["RLIMIT_MEMLOCK"] = 8, ["RLIMIT_AS"] = 9,
        ["RLIMIT_LOCKS"] = 10, ["RLIMIT_SIGPENDING"] = 11, ["RLIMIT_MSGQUEUE"] = 12, ["RLIMIT_NICE"] = 13,
        ["RLIMIT_RTPRIO"] = 14, ["RLIMIT_RTTIME"] = 15,
    };

    /// <summary>
    /// Plans the container's init process. <paramref name="bundle"/> resolves a relative root.path;
    /// <paramref name="cgroupMounts"/> is what a "cgroup" mount shows on a v1 node (controller mount directory name
    /// -> this container's directory in it); null on v2, where a cgroup2 file system is mounted instead.
    /// </summary>
    public static SpawnPlan PlanContainer(RuntimeSpec spec, string bundle, HostFacts host, IReadOnlyDictionary<string, string>? cgroupMounts)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(host);
        SpecValidator.Validate(spec);
        var adjustments = new List<string>();
        var request = new SpawnRequest { Park = true };
        var linux = spec.Linux ?? new SpecLinux();
        if (!string.IsNullOrEmpty(linux.MountLabel))
        {
            if (!host.Modules.SELinux)
            {
                throw NacelleException.FailedPrecondition($"linux.mountLabel: '{linux.MountLabel}' asked for, but this host does not enforce SELinux");
            }

            CheckLabel(linux.MountLabel, "linux.mountLabel");
        }

        PlanNamespaces(linux, request);
        if ((request.CloneFlags & MountFlags.CLONE_NEWNS) == 0)
        {
            throw NacelleException.InvalidArgument("linux.namespaces: a new mount namespace is required (nacelle never changes the host's mounts)");
        }

        var userNamespace = UserNamespaceOf(linux);
        // In a user namespace the container process may not walk the host paths of its rootfs and volumes (their
        // directories need not be open to the ids it maps): the helper copies them before it joins any namespace.
        request.RootfsDetached = userNamespace != UserNamespace.None;

        var root = spec.Root!.Path;
        request.Rootfs = Path.GetFullPath(Path.IsPathRooted(root) ? root : Path.Combine(bundle, root));
        if (!Directory.Exists(request.Rootfs))
        {
            throw NacelleException.InvalidArgument($"root.path: '{request.Rootfs}' is not a directory");
        }

        request.RootReadonly = spec.Root.Readonly;
        var propagation = MountFlags.Propagation(linux.RootfsPropagation);
        // pivot_root refuses a shared parent: shared propagation is applied once the new root is in place.
        if ((propagation & MountFlags.MS_SHARED) != 0)
        {
            request.PropagationAfterPivot = propagation;
        }
        else if (propagation != 0)
        {
            request.PropagationBeforePivot = propagation;
        }

        var tmpfsDev = false;
        var devpts = false;
        for (var i = 0; i < spec.Mounts.Count; i++)
        {
            var mount = spec.Mounts[i];
            var destination = CleanPath(mount.Destination);
            tmpfsDev |= destination == "/dev" && mount.Type == "tmpfs";
            devpts |= destination == "/dev/pts" && mount.Type == "devpts";
            if (mount.Type is "cgroup" or "cgroup2")
            {
                PlanCgroupMount(mount, destination, cgroupMounts, request, i);
                continue;
            }

            request.Mounts.Add(WithMountLabel(PlanMount(mount, destination, $"mounts[{i}]", linux, userNamespace, host), linux.MountLabel));
        }

        if (userNamespace != UserNamespace.None)
        {
            for (var i = 0; i < request.Mounts.Count; i++)
            {
                if ((request.Mounts[i].Kind & SpawnProtocol.MountKindMask) != SpawnProtocol.MountFs)
                {
                    request.Mounts[i] = request.Mounts[i] with { Kind = request.Mounts[i].Kind | SpawnProtocol.MountDetached };
                }
            }
        }

        // A mount at a device's path takes its place (as runc, which leaves a node that exists alone): creating the node
        // over the mount point failed with EEXIST half way through the setup.
        var mounted = new HashSet<string>(request.Mounts.Select(m => m.Target), StringComparer.Ordinal);
        if (tmpfsDev)
        {
            var explicitPaths = new HashSet<string>(linux.Devices.Select(d => CleanPath(d.Path)), StringComparer.Ordinal);
            request.Devices.AddRange(DefaultDevices.Where(d => !explicitPaths.Contains(d.Path) && !mounted.Contains(d.Path)));
            request.Symlinks.AddRange(DefaultLinks);
            if (devpts)
            {
                request.Symlinks.Add(("pts/ptmx", "/dev/ptmx"));
            }
        }

        for (var i = 0; i < linux.Devices.Count; i++)
        {
            var device = PlanDevice(linux.Devices[i], $"linux.devices[{i}]");
            if (!mounted.Contains(device.Path))
            {
                request.Devices.Add(device);
            }
        }

        request.MaskedPaths.AddRange(linux.MaskedPaths.Select(CleanPath));
        request.ReadonlyPaths.AddRange(linux.ReadonlyPaths.Select(CleanPath));
        request.Hostname = spec.Hostname;
        request.Domainname = spec.Domainname;
        foreach (var (key, value) in linux.Sysctl.OrderBy(pair => pair.Key, StringComparer.Ordinal))
        {
            request.Sysctls.Add((SysctlPath(key), value));
        }

        // Written only for a namespace this spawn creates; a joined one has its maps already (the kernel allows one write).
        if (userNamespace == UserNamespace.New)
        {
            request.UidMap = IdMappings.ToText(linux.UidMappings);
            request.GidMap = IdMappings.ToText(linux.GidMappings);
        }

        PlanProcess(spec.Process!, "process", request, host, adjustments, userNamespace != UserNamespace.None);
        if (SeccompSection(linux) is { } seccomp)
        {
            request.Seccomp = CompileSeccomp(seccomp, adjustments);
        }

        return new SpawnPlan(request, adjustments);
    }

    /// <summary>
    /// What an exec in a container of <paramref name="spec"/> needs of it, to keep instead of the spec. With
    /// <paramref name="compileSeccomp"/> the profile is compiled now (a create, which has just compiled the same profile
    /// for the init, finds it in the cache); without, on the first exec (a container recovered from its state, whose
    /// profile may never be needed).
    /// </summary>
    public static ExecTemplate ExecTemplateFor(RuntimeSpec spec, bool compileSeccomp)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var linux = spec.Linux ?? new SpecLinux();
        var template = new ExecTemplate([.. linux.Namespaces.Select(ns => ns.Type)], UserNamespaceOf(linux) != UserNamespace.None,
            SeccompSection(linux) is { } seccomp ? seccomp.Clone() : null);
        if (compileSeccomp)
        {
            template.Seccomp([]);
        }

        return template;
    }

    /// <summary>
    /// Plans an extra process in the running container whose init is <paramref name="initPid"/>: it joins every
    /// namespace the container has and its cgroup, and gets the container's seccomp profile (as runc exec does).
    /// </summary>
    public static SpawnPlan PlanExec(ExecTemplate container, SpecProcess process, int initPid, ICgroup cgroup, HostFacts host)
    {
        ArgumentNullException.ThrowIfNull(container);
        ArgumentNullException.ThrowIfNull(process);
        ArgumentNullException.ThrowIfNull(cgroup);
        var adjustments = new List<string>();
        var request = new SpawnRequest { Park = false };
        foreach (var type in container.NamespaceTypes)
        {
            var flag = MountFlags.NamespaceFlag(type)
                ?? throw NacelleException.InvalidArgument($"linux.namespaces: the {type} namespace is not supported");
            request.JoinNamespaces.Add(new SpawnJoin(flag, $"/proc/{initPid}/ns/{MountFlags.ProcName(type)}"));
        }

        request.JoinCgroup(cgroup);
        PlanProcess(process, "process", request, host, adjustments, container.InUserNamespace);
        request.Seccomp = container.Seccomp(adjustments);
        return new SpawnPlan(request, adjustments);
    }

    private static void PlanNamespaces(SpecLinux linux, SpawnRequest request)
    {
        for (var i = 0; i < linux.Namespaces.Count; i++)
        {
            var ns = linux.Namespaces[i];
            var flag = MountFlags.NamespaceFlag(ns.Type)
                ?? throw NacelleException.InvalidArgument($"linux.namespaces[{i}].type: the {ns.Type} namespace is not supported by nacelle");
            if (string.IsNullOrEmpty(ns.Path))
            {
                request.CloneFlags |= flag;
            }
            else
            {
                if (!File.Exists(ns.Path))
                {
                    throw NacelleException.InvalidArgument($"linux.namespaces[{i}].path: '{ns.Path}' does not exist");
                }

                request.JoinNamespaces.Add(new SpawnJoin(flag, ns.Path));
            }
        }
    }

    /// <summary>
    /// AppArmor and SELinux: applied by the helper where the host enforces the module, refused (FailedPrecondition,
    /// naming the field) where it does not. A container is never started without a confinement it asked for.
    /// </summary>
    private static void PlanSecurityModules(SpecProcess process, string field, SpawnRequest request, HostFacts host)
    {
        if (!string.IsNullOrEmpty(process.ApparmorProfile))
        {
            if (!host.Modules.AppArmor)
            {
                throw NacelleException.FailedPrecondition(
                    $"{field}.apparmorProfile: '{process.ApparmorProfile}' asked for, but this host does not enforce AppArmor");
            }

            CheckLabel(process.ApparmorProfile, $"{field}.apparmorProfile");
            request.AppArmorProfile = process.ApparmorProfile;
        }

        if (!string.IsNullOrEmpty(process.SelinuxLabel))
        {
            if (!host.Modules.SELinux)
            {
                throw NacelleException.FailedPrecondition(
                    $"{field}.selinuxLabel: '{process.SelinuxLabel}' asked for, but this host does not enforce SELinux");
            }

            CheckLabel(process.SelinuxLabel, $"{field}.selinuxLabel");
            request.SelinuxLabel = process.SelinuxLabel;
        }
    }

    /// <summary>A label is written whole into a /proc attribute file: no NUL or newline may cut it or add a second command.</summary>
    private static void CheckLabel(string label, string field)
    {
        if (label.Length > 4095 || label.Any(c => c is '\0' or '\n'))
        {
            throw NacelleException.InvalidArgument($"{field}: not a valid label (too long, or a NUL or newline in it)");
        }
    }

    /// <summary>Whether the container gets a user namespace, and whether this spawn creates it or joins one by path.</summary>
    private enum UserNamespace
    {
        None,
        New,
        Joined,
    }

    private static UserNamespace UserNamespaceOf(SpecLinux linux) =>
        linux.Namespaces.FirstOrDefault(n => n.Type == "user") is not { } user ? UserNamespace.None
        : string.IsNullOrEmpty(user.Path) ? UserNamespace.New : UserNamespace.Joined;

    private static void PlanProcess(SpecProcess process, string field, SpawnRequest request, HostFacts host, List<string> adjustments,
        bool inUserNamespace)
    {
        request.Cwd = process.Cwd;
        request.Args.AddRange(process.Args);
        request.Env.AddRange(process.Env);
        request.NoNewPrivileges = process.NoNewPrivileges;
        PlanSecurityModules(process, field, request, host);
        if (process.Terminal)
        {
            request.Terminal = new SpawnTerminal(process.ConsoleSize?.Height ?? 0, process.ConsoleSize?.Width ?? 0);
        }
        request.Umask = process.User.Umask;
        request.User = new SpawnUser(process.User.Uid, process.User.Gid, process.User.AdditionalGids);
        request.LastCapability = host.LastCapability;
        if (process.Capabilities is { } caps)
        {
            ulong Mask(List<string> names, string set) => Capabilities.ToMask(names, host.LastCapability, $"{field}.capabilities.{set}");
            request.Capabilities = new CapabilitySets(
                Mask(caps.Bounding, "bounding"), Mask(caps.Effective, "effective"), Mask(caps.Inheritable, "inheritable"),
                Mask(caps.Permitted, "permitted"), Mask(caps.Ambient, "ambient"));
        }

        foreach (var limit in process.Rlimits)
        {
            var number = RlimitNumbers[limit.Type];
            ulong soft = limit.Soft, hard = limit.Hard;
            if ((!host.HasSysResource || inUserNamespace) && hard > host.HardLimit(number))
            {
                // Raising a hard limit needs CAP_SYS_RESOURCE in the host's user namespace (which a user-namespaced
                // container process never has): give the most this node allows instead of failing.
                var allowed = host.HardLimit(number);
                var why = inUserNamespace ? "set inside a user namespace" : "no CAP_SYS_RESOURCE";
                adjustments.Add($"{field}.rlimits {limit.Type}: hard limit {hard} clamped to {allowed} ({why})");
                hard = allowed;
                soft = Math.Min(soft, hard);
            }

            request.Rlimits.Add(new SpawnRlimit(number, soft, hard));
        }

        if (process.OomScoreAdj is { } oom)
        {
            if (!host.HasSysResource && oom < host.OwnOomScoreAdj)
            {
                // As containerd's restrict_oom_score_adj: below our own value needs CAP_SYS_RESOURCE.
                adjustments.Add($"{field}.oomScoreAdj {oom} clamped to {host.OwnOomScoreAdj} (no CAP_SYS_RESOURCE)");
                oom = host.OwnOomScoreAdj;
            }

            request.OomScoreAdj = oom;
        }
    }

    /// <summary>linux.mountLabel: the SELinux context of the file systems the helper creates (tmpfs, devpts, mqueue), as a
    /// context= option; refused where the host does not enforce SELinux (checked once in <see cref="PlanContainer"/>).</summary>
    private static SpawnMount WithMountLabel(SpawnMount mount, string? label)
    {
        if (string.IsNullOrEmpty(label) || (mount.Kind & SpawnProtocol.MountKindMask) != SpawnProtocol.MountFs || mount.FsType is not ("tmpfs" or "devpts" or "mqueue"))
        {
            return mount;
        }

        var context = $"context=\"{label}\"";
        return mount with { Data = mount.Data.Length == 0 ? context : mount.Data + "," + context };
    }

    private static SpawnMount PlanMount(SpecMount mount, string destination, string field, SpecLinux linux, UserNamespace userNamespace,
        HostFacts host)
    {
        var isBind = mount.Type == "bind" || mount.Options.Contains("bind") || mount.Options.Contains("rbind");
        ulong flags = 0, propagation = 0;
        var data = new List<string>();
        var recursiveReadonly = false;
        bool idmapOption = false, recursiveIdmap = false;
        foreach (var option in mount.Options)
        {
            if (option == "rro")
            {
                recursiveReadonly = true;
                flags |= MountFlags.MS_RDONLY | MountFlags.MS_REC;
                continue;
            }

            if (option is "idmap" or "ridmap")
            {
                idmapOption = true;
                recursiveIdmap |= option == "ridmap";
                continue;
            }

            if (MountFlags.Option(option) is { } effect)
            {
                flags = (flags | effect.Set) & ~effect.Clear;
                propagation = effect.Propagation != 0 ? effect.Propagation : propagation;
            }
            else if (isBind)
            {
                throw NacelleException.InvalidArgument($"{field}.options: '{option}' is not a bind mount option");
            }
            else
            {
                data.Add(option);
            }
        }

        if (!isBind)
        {
            if (idmapOption)
            {
                throw NacelleException.InvalidArgument($"{field}.options: only a bind mount can be idmapped");
            }

            // sysfs shows the network namespace's devices: inside a user namespace that does not own it the kernel
            // refuses it, and the helper binds the host's /sys read-only instead (as runc does).
            var kind = SpawnProtocol.MountFs | (mount.Type == "sysfs" && userNamespace != UserNamespace.None ? SpawnProtocol.MountHostFallback : 0);
            return new SpawnMount(kind, mount.Source ?? mount.Type!, destination, mount.Type!, flags, propagation,
                string.Join(',', data), TargetIsFile: false);
        }

        var source = mount.Source!;
        if (!Path.IsPathRooted(source))
        {
            throw NacelleException.InvalidArgument($"{field}.source: '{source}' is not an absolute path");
        }

        var isDirectory = Directory.Exists(source);
        if (!isDirectory && !File.Exists(source))
        {
            throw NacelleException.InvalidArgument($"{field}.source: '{source}' does not exist");
        }

        var modifiers = IdmapModifiers(mount, field, linux, userNamespace, idmapOption, recursiveIdmap);
        if ((propagation & MountFlags.MS_SHARED) != 0)
        {
            CheckSharedSource(source, field, userNamespace, host);
            // The helper copies a shared source before the container cuts its tree off (rslave): the copy stays a peer.
            modifiers |= SpawnProtocol.MountDetached;
        }

        var kindOfBind = recursiveReadonly ? SpawnProtocol.MountBindRecursiveReadonly : SpawnProtocol.MountBind;
        return new SpawnMount(kindOfBind | modifiers, source, destination, string.Empty, flags | MountFlags.MS_BIND, propagation, string.Empty,
            TargetIsFile: !isDirectory);
    }

    /// <summary>
    /// An idmapped bind (mappings in the mount, "idmap"/"ridmap"): the helper maps it with the user namespace the
    /// container joins, so the mount's mappings must be that namespace's (linux.uidMappings/gidMappings), which is
    /// what kubelet sends: a pod's volumes are idmapped with the pod's own mappings.
    /// </summary>
    private static uint IdmapModifiers(SpecMount mount, string field, SpecLinux linux, UserNamespace userNamespace, bool idmapOption,
        bool recursiveIdmap)
    {
        var mapped = mount.UidMappings is { Count: > 0 } || mount.GidMappings is { Count: > 0 };
        if (!mapped)
        {
            if (idmapOption)
            {
                throw NacelleException.InvalidArgument($"{field}.options: 'idmap' and 'ridmap' need uidMappings and gidMappings");
            }

            return 0;
        }

        if (userNamespace != UserNamespace.Joined)
        {
            throw NacelleException.InvalidArgument(
                $"{field}.uidMappings: nacelle idmaps a mount with the user namespace the container joins, and this container joins none");
        }

        if (!IdMappings.Same(mount.UidMappings, linux.UidMappings) || !IdMappings.Same(mount.GidMappings, linux.GidMappings))
        {
            throw NacelleException.InvalidArgument(
                $"{field}.uidMappings: differ from linux.uidMappings/gidMappings; nacelle idmaps a mount with the container's own user namespace");
        }

        return SpawnProtocol.MountDetached | SpawnProtocol.MountIdmap | (recursiveIdmap ? SpawnProtocol.MountIdmapRecursive : 0);
    }

    /// <summary>Shared propagation is only what it says when the source is on a shared mount: refused otherwise, never
    /// downgraded to a private peer group of the container's own.</summary>
    private static void CheckSharedSource(string source, string field, UserNamespace userNamespace, HostFacts host)
    {
        if (userNamespace != UserNamespace.None)
        {
            throw NacelleException.InvalidArgument(
                $"{field}.options: shared propagation is not possible in a user namespace (mounts made there must not reach the host)");
        }

        var mount = host.MountOf(source);
        if (mount is not { Shared: true })
        {
            var on = mount?.MountPoint;
            throw NacelleException.FailedPrecondition(
                $"{field}: '{source}' is on {(on is null ? "an unknown mount" : $"the mount at '{on}'")}, which is not shared; shared (rshared) " +
                "propagation needs the host path on a shared mount (mount --make-shared, or --make-rshared on its parent)");
        }
    }

    /// <summary>
    /// v2: a cgroup2 file system (the container's own cgroup when it has a cgroup namespace). v1: a tmpfs with each
    /// hierarchy's directory of this container bound below it, read-only unless the options say rw.
    /// </summary>
    private static void PlanCgroupMount(SpecMount mount, string destination, IReadOnlyDictionary<string, string>? cgroupMounts,
        SpawnRequest request, int index)
    {
        var readOnly = !mount.Options.Contains("rw");
        const ulong Locked = MountFlags.MS_NOSUID | MountFlags.MS_NODEV | MountFlags.MS_NOEXEC;
        var ro = readOnly ? MountFlags.MS_RDONLY : 0;
        if (cgroupMounts is null)
        {
            request.Mounts.Add(new SpawnMount(SpawnProtocol.MountFs, "cgroup2", destination, "cgroup2", Locked | ro, 0, string.Empty, false));
            return;
        }

        request.Mounts.Add(new SpawnMount(SpawnProtocol.MountFs, "tmpfs", destination, "tmpfs", Locked, 0, "mode=755", false));
        foreach (var (name, directory) in cgroupMounts.OrderBy(pair => pair.Key, StringComparer.Ordinal))
        {
            if (name.Contains('/') || name is "." or "..")
            {
                throw NacelleException.Internal($"mounts[{index}]: bad cgroup hierarchy name '{name}'");
            }

            request.Mounts.Add(new SpawnMount(SpawnProtocol.MountBind, directory, $"{destination}/{name}", string.Empty,
                MountFlags.MS_BIND | Locked | ro, 0, string.Empty, false));
        }
    }

    private static SpawnDevice PlanDevice(SpecDevice device, string field)
    {
        var type = device.Type switch
        {
            "c" or "u" => S_IFCHR,
            "b" => S_IFBLK,
            "p" => S_IFIFO,
            _ => throw NacelleException.InvalidArgument($"{field}.type: '{device.Type}' is not c, u, b or p"),
        };
        if (device.Major is < 0 or > uint.MaxValue || device.Minor is < 0 or > uint.MaxValue)
        {
            throw NacelleException.InvalidArgument($"{field}: major/minor {device.Major}:{device.Minor} out of range");
        }

        return new SpawnDevice(CleanPath(device.Path), type, device.FileMode ?? ReadWriteAll, (uint)device.Major, (uint)device.Minor,
            device.Uid ?? 0, device.Gid ?? 0);
    }

    private static JsonElement? SeccompSection(SpecLinux linux) => linux.Seccomp switch
    {
        null or { ValueKind: JsonValueKind.Null or JsonValueKind.Undefined } => null,
        { ValueKind: JsonValueKind.Object } element => element,
        { } other => throw NacelleException.InvalidArgument($"linux.seccomp: a profile is a JSON object, not {other.ValueKind}"),
    };

    // The last few compiled profiles by their JSON text: the containers of a pod mostly share a profile, and libseccomp
    // takes some milliseconds for RuntimeDefault. (An exec takes its container's compiled filter from its ExecTemplate.)
    private static readonly Dictionary<string, SeccompProgram> CompiledProfiles = new(StringComparer.Ordinal);
    private const int CompiledProfilesKept = 8;

    /// <summary>
    /// Forgets the compiled profiles kept for the next create (each keyed by its JSON text: a 26 kB string for
    /// RuntimeDefault). A pod's monitor calls this when it settles: its containers keep their filters in their exec
    /// templates, and a later create compiles again.
    /// </summary>
    public static void ForgetCompiledProfiles()
    {
        lock (CompiledProfiles)
        {
            CompiledProfiles.Clear();
        }
    }

    internal static SpawnSeccomp CompileSeccomp(JsonElement section, List<string> adjustments)
    {
        var arch = SeccompCompiler.NativeArch()
            ?? throw NacelleException.InvalidArgument("linux.seccomp: this machine's architecture has no seccomp support in nacelle");
        var text = section.GetRawText();
        SeccompProgram? program;
        lock (CompiledProfiles)
        {
            CompiledProfiles.TryGetValue(text, out program);
        }

        if (program is null)
        {
            program = SeccompCompiler.CompileProgram(SeccompProfile.FromJson(section), arch);
            lock (CompiledProfiles)
            {
                if (CompiledProfiles.Count >= CompiledProfilesKept)
                {
                    CompiledProfiles.Clear();
                }

                CompiledProfiles[text] = program;
            }
        }

        adjustments.AddRange(program.Warnings);
        return new SpawnSeccomp(program.Flags, program.Filter);
    }

    /// <summary>"net.ipv4.ip_forward" -> "net/ipv4/ip_forward"; a key already written with slashes is kept.</summary>
    public static string SysctlPath(string key)
    {
        var path = key.Contains('/') ? key : key.Replace('.', '/');
        if (path.Split('/').Any(part => part is "" or "." or ".."))
        {
            throw NacelleException.InvalidArgument($"linux.sysctl.{key}: not a sysctl name");
        }

        return path;
    }

    /// <summary>An absolute path without empty or "." segments (the validator has refused "..").</summary>
    public static string CleanPath(string path)
    {
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".");
        return "/" + string.Join('/', parts);
    }
}
