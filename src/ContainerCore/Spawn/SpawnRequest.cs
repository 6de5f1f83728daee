using Nacelle.ContainerCore.Cgroups;
using Nacelle.ContainerCore.Security;

namespace Nacelle.ContainerCore.Spawn;

/// <summary>One mount as the helper performs it: target inside the rootfs, created as a directory or file when missing.</summary>
/// <param name="Kind"><see cref="SpawnProtocol.MountFs"/>, <see cref="SpawnProtocol.MountBind"/> or <see cref="SpawnProtocol.MountBindRecursiveReadonly"/>,
/// with the modifiers <see cref="SpawnProtocol.MountDetached"/> (the helper copies the source before it joins any
/// namespace), <see cref="SpawnProtocol.MountIdmap"/>, <see cref="SpawnProtocol.MountIdmapRecursive"/> and
/// <see cref="SpawnProtocol.MountHostFallback"/>.</param>
/// <param name="Flags">MS_* flags (for binds: MS_REC, then the remount flags such as MS_RDONLY|MS_NOSUID).</param>
/// <param name="Propagation">MS_PRIVATE/MS_SLAVE/MS_SHARED/MS_UNBINDABLE (| MS_REC) applied after mounting; 0 for none.</param>
public sealed record SpawnMount(
    uint Kind, string Source, string Target, string FsType, ulong Flags, ulong Propagation, string Data, bool TargetIsFile);

/// <summary>A device node created inside the rootfs (Type is S_IFCHR, S_IFBLK or S_IFIFO).</summary>
public sealed record SpawnDevice(string Path, uint Type, uint Mode, uint Major, uint Minor, uint Uid, uint Gid);

/// <summary>A namespace to join: CLONE_NEW* type and the path of an nsfs file.</summary>
public sealed record SpawnJoin(ulong Type, string Path);

public sealed record SpawnRlimit(int Resource, ulong Soft, ulong Hard);

public sealed record SpawnUser(uint Uid, uint Gid, IReadOnlyList<uint> AdditionalGids);

public sealed record SpawnSeccomp(uint Flags, byte[] Filter);

/// <summary>
/// Everything the spawn helper does, computed in C# (from an OCI spec by <see cref="SpawnPlanner"/>): the message
/// of <c>native/spawn_protocol.h</c> in object form. Lists keep their order.
/// </summary>
public sealed class SpawnRequest
{
    public ulong CloneFlags { get; set; }
    public List<SpawnJoin> JoinNamespaces { get; } = [];
    /// <summary>cgroup v1 "tasks" files the helper writes "0" into (<see cref="ICgroup.ThreadFiles"/>).</summary>
    public List<string> CgroupThreadFiles { get; } = [];

    /// <summary>The cgroup2 directory the container process is cloned into (<see cref="ICgroup.CloneIntoDirectory"/>).</summary>
    public string? CgroupCloneInto { get; set; }

    /// <summary>The process joins <paramref name="cgroup"/> before any of its code runs.</summary>
    public void JoinCgroup(ICgroup cgroup)
    {
        ArgumentNullException.ThrowIfNull(cgroup);
        CgroupThreadFiles.AddRange(cgroup.ThreadFiles);
        CgroupCloneInto = cgroup.CloneIntoDirectory;
    }

    public string? UidMap { get; set; }
    public string? GidMap { get; set; }
    public int? OomScoreAdj { get; set; }
    public string? Rootfs { get; set; }

    /// <summary>The helper copies the rootfs (open_tree) before it joins any namespace, and the container process
    /// attaches the copy: it never walks the host path (a user-namespaced process may not be allowed to).</summary>
    public bool RootfsDetached { get; set; }
    public ulong PropagationBeforePivot { get; set; } = MountFlags.MS_REC | MountFlags.MS_SLAVE;
    public ulong PropagationAfterPivot { get; set; }
    public List<SpawnMount> Mounts { get; } = [];
    public List<SpawnDevice> Devices { get; } = [];
    public List<(string Target, string Link)> Symlinks { get; } = [];
    public List<string> MaskedPaths { get; } = [];
    public List<string> ReadonlyPaths { get; } = [];
    public bool RootReadonly { get; set; }
    public string? Hostname { get; set; }
    public string? Domainname { get; set; }
    public List<(string Path, string Value)> Sysctls { get; } = [];
    public List<SpawnRlimit> Rlimits { get; } = [];
    public SpawnUser? User { get; set; }
    public uint? Umask { get; set; }
    public bool NoNewPrivileges { get; set; }
    public CapabilitySets? Capabilities { get; set; }
    public int LastCapability { get; set; } = Security.Capabilities.LastKnown;
    public SpawnSeccomp? Seccomp { get; set; }

    /// <summary>The AppArmor profile the program runs under (written to attr/apparmor/exec just before execve).</summary>
    public string? AppArmorProfile { get; set; }

    /// <summary>The SELinux label the program runs under (written to attr/exec just before execve).</summary>
    public string? SelinuxLabel { get; set; }
    public string Cwd { get; set; } = "/";
    public List<string> Args { get; } = [];
    public List<string> Env { get; } = [];

    /// <summary>Stop before execve until started (create); otherwise run at once (exec).</summary>
    public bool Park { get; set; }

    /// <summary>setsid() in the container process.</summary>
    public bool NewSession { get; set; } = true;

    /// <summary>
    /// process.terminal: the helper allocates a pty from the container's own /dev/ptmx, makes the slave the process's
    /// stdio and controlling terminal, and sends the master back (<see cref="SpawnStdio.ConsoleReceived"/>); the stdio
    /// handles given to the spawn are then not used by the process.
    /// </summary>
    public SpawnTerminal? Terminal { get; set; }
}

/// <summary>A pty for the process; a size of 0 leaves the kernel's default (process.consoleSize).</summary>
public sealed record SpawnTerminal(uint Rows = 0, uint Columns = 0);
