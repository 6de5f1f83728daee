namespace Nacelle.ContainerCore.Spawn;

/// <summary>mount(2) flags (linux/mount.h) and CLONE_NEW* namespace flags (linux/sched.h).</summary>
public static class MountFlags
{
    public const ulong MS_RDONLY = 0x1;
    public const ulong MS_NOSUID = 0x2;
    public const ulong MS_NODEV = 0x4;
    public const ulong MS_NOEXEC = 0x8;
    public const ulong MS_SYNCHRONOUS = 0x10;
    public const ulong MS_REMOUNT = 0x20;
    public const ulong MS_MANDLOCK = 0x40;
    public const ulong MS_DIRSYNC = 0x80;
    public const ulong MS_NOSYMFOLLOW = 0x100;
    public const ulong MS_NOATIME = 0x400;
    public const ulong MS_NODIRATIME = 0x800;
    public const ulong MS_BIND = 0x1000;
    public const ulong MS_REC = 0x4000;
    public const ulong MS_UNBINDABLE = 0x20000;
    public const ulong MS_PRIVATE = 0x40000;
    public const ulong MS_SLAVE = 0x80000;
    public const ulong MS_SHARED = 0x100000;
    public const ulong MS_RELATIME = 0x200000;
    public const ulong MS_STRICTATIME = 0x1000000;
    public const ulong MS_LAZYTIME = 0x2000000;

    public const ulong CLONE_NEWNS = 0x00020000;
    public const ulong CLONE_NEWCGROUP = 0x02000000;
    public const ulong CLONE_NEWUTS = 0x04000000;
    public const ulong CLONE_NEWIPC = 0x08000000;
    public const ulong CLONE_NEWUSER = 0x10000000;
    public const ulong CLONE_NEWPID = 0x20000000;
    public const ulong CLONE_NEWNET = 0x40000000;

    /// <summary>The CLONE_NEW* flag of an OCI namespace type; null for types nacelle cannot create ("time").</summary>
    public static ulong? NamespaceFlag(string type) => type switch
    {
        "pid" => CLONE_NEWPID,
        "network" => CLONE_NEWNET,
        "ipc" => CLONE_NEWIPC,
        "uts" => CLONE_NEWUTS,
        "mount" => CLONE_NEWNS,
        "cgroup" => CLONE_NEWCGROUP,
        "user" => CLONE_NEWUSER,
        _ => null,
    };

    /// <summary>The /proc/PID/ns/ file name of an OCI namespace type.</summary>
    public static string ProcName(string type) => type switch
    {
        "network" => "net",
        "mount" => "mnt",
        _ => type,
    };

    /// <summary>What an OCI mount option does: set flags, clear flags, or a propagation; null for a data option.</summary>
    public static (ulong Set, ulong Clear, ulong Propagation, bool Recursive)? Option(string option) => option switch
    {
        "ro" => (MS_RDONLY, 0, 0, false),
        "rw" => (0, MS_RDONLY, 0, false),
        "nosuid" => (MS_NOSUID, 0, 0, false),
        "suid" => (0, MS_NOSUID, 0, false),
        "nodev" => (MS_NODEV, 0, 0, false),
        "dev" => (0, MS_NODEV, 0, false),
        "noexec" => (MS_NOEXEC, 0, 0, false),
        "exec" => (0, MS_NOEXEC, 0, false),
        "sync" => (MS_SYNCHRONOUS, 0, 0, false),
        "async" => (0, MS_SYNCHRONOUS, 0, false),
        "dirsync" => (MS_DIRSYNC, 0, 0, false),
        "mand" => (MS_MANDLOCK, 0, 0, false),
        "nomand" => (0, MS_MANDLOCK, 0, false),
        "atime" => (0, MS_NOATIME, 0, false),
        "noatime" => (MS_NOATIME, 0, 0, false),
        "diratime" => (0, MS_NODIRATIME, 0, false),
        "nodiratime" => (MS_NODIRATIME, 0, 0, false),
        "relatime" => (MS_RELATIME, 0, 0, false),
        "norelatime" => (0, MS_RELATIME, 0, false),
        "strictatime" => (MS_STRICTATIME, 0, 0, false),
        "nostrictatime" => (0, MS_STRICTATIME, 0, false),
        "lazytime" => (MS_LAZYTIME, 0, 0, false),
        "nosymfollow" => (MS_NOSYMFOLLOW, 0, 0, false),
        "bind" => (MS_BIND, 0, 0, false),
        "rbind" => (MS_BIND | MS_REC, 0, 0, false),
        "private" => (0, 0, MS_PRIVATE, false),
        "rprivate" => (0, 0, MS_PRIVATE | MS_REC, false),
        "slave" => (0, 0, MS_SLAVE, false),
        "rslave" => (0, 0, MS_SLAVE | MS_REC, false),
        "shared" => (0, 0, MS_SHARED, false),
        "rshared" => (0, 0, MS_SHARED | MS_REC, false),
        "unbindable" => (0, 0, MS_UNBINDABLE, false),
        "runbindable" => (0, 0, MS_UNBINDABLE | MS_REC, false),
        _ => null,
    };

    /// <summary>The flags of a propagation mode name ("" or null: none).</summary>
    public static ulong Propagation(string? mode) => string.IsNullOrEmpty(mode) ? 0 : Option(mode) is { Propagation: var p and not 0 } ? p : 0;
}
