using Nacelle.ContainerCore.Spec;

namespace Nacelle.Sandbox.Containers.Spec;

/// <summary>
/// What every container gets unless it asks otherwise: runc's and containerd's defaults for mounts, devices,
/// masked and read-only paths, and the environment.
/// </summary>
public static class LinuxDefaults
{
    /// <summary>PATH when neither the image nor the config sets one.</summary>
    public const string Path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// <summary>Paths hidden from a non-privileged container when kubelet sends no masked_paths (runc's list).</summary>
    public static IReadOnlyList<string> MaskedPaths => SpecDefaults.MaskedPaths;

    /// <summary>Paths made read-only in a non-privileged container when kubelet sends no readonly_paths (runc's list).</summary>
    public static IReadOnlyList<string> ReadonlyPaths => SpecDefaults.ReadonlyPaths;

    /// <summary>The device nodes created in every container's /dev (mode 0666, root-owned).</summary>
    public static IReadOnlyList<HostDevice> Devices { get; } =
    [
        new("/dev/null", 'c', 1, 3, 0x1B6, 0, 0),
        new("/dev/zero", 'c', 1, 5, 0x1B6, 0, 0),
        new("/dev/full", 'c', 1, 7, 0x1B6, 0, 0),
        new("/dev/random", 'c', 1, 8, 0x1B6, 0, 0),
        new("/dev/urandom", 'c', 1, 9, 0x1B6, 0, 0),
        new("/dev/tty", 'c', 5, 0, 0x1B6, 0, 0),
    ];

    /// <summary>The device cgroup rules of a non-privileged container: deny everything, then allow the default nodes,
    /// /dev/console, /dev/ptmx, the pty slaves (/dev/pts/*) and mknod of any node (creating is not opening), as runc does.</summary>
    public static IReadOnlyList<SpecDeviceRule> CreateDeviceRules() =>
    [
        new() { Allow = false, Access = "rwm" },
        new() { Allow = true, Type = "c", Major = null, Minor = null, Access = "m" },
        new() { Allow = true, Type = "b", Major = null, Minor = null, Access = "m" },
        Allow('c', 1, 3), // /dev/null
        Allow('c', 1, 5), // /dev/zero
        Allow('c', 1, 7), // /dev/full
        Allow('c', 1, 8), // /dev/random
        Allow('c', 1, 9), // /dev/urandom
        Allow('c', 5, 0), // /dev/tty
        Allow('c', 5, 1), // /dev/console
        Allow('c', 5, 2), // /dev/ptmx
        Allow('c', 136, null), // /dev/pts/*
    ];

    /// <summary>The kernel file systems of every container, in mount order. /sys and /sys/fs/cgroup are read-only
    /// unless <paramref name="privileged"/>; /sys/fs/cgroup is cgroup2 on a unified node.</summary>
    public static List<SpecMount> CreateMounts(bool privileged, bool cgroupV2)
    {
        var ro = privileged ? "rw" : "ro";
        return
        [
            new() { Destination = "/proc", Type = "proc", Source = "proc", Options = ["nosuid", "noexec", "nodev"] },
            new() { Destination = "/dev", Type = "tmpfs", Source = "tmpfs", Options = ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            new()
            {
                Destination = "/dev/pts", Type = "devpts", Source = "devpts",
                Options = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
            },
            new() { Destination = "/dev/mqueue", Type = "mqueue", Source = "mqueue", Options = ["nosuid", "noexec", "nodev"] },
            new() { Destination = "/sys", Type = "sysfs", Source = "sysfs", Options = ["nosuid", "noexec", "nodev", ro] },
            new()
            {
                Destination = "/sys/fs/cgroup", Type = cgroupV2 ? "cgroup2" : "cgroup", Source = "cgroup",
                Options = ["nosuid", "noexec", "nodev", "relatime", ro],
            },
        ];
    }

    /// <summary>A private /dev/shm for a container with its own ipc namespace.</summary>
    public static SpecMount CreateShmTmpfs() => new()
    {
        Destination = "/dev/shm", Type = "tmpfs", Source = "shm", Options = ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    };

    private static SpecDeviceRule Allow(char type, long major, long? minor) =>
        new() { Allow = true, Type = type.ToString(), Major = major, Minor = minor, Access = "rwm" };
}
