using Nacelle.ContainerCore.Security;

namespace Nacelle.ContainerCore.Spec;

/// <summary>
/// What a container gets unless told otherwise, as the OCI runtimes agree on it: the standard mounts, masked and
/// read-only /proc and /sys paths, the default capabilities and the namespaces of an isolated container.
/// </summary>
public static class SpecDefaults
{
    /// <summary>Paths hidden from a non-privileged container (an empty tmpfs or /dev/null is mounted over them).</summary>
    public static IReadOnlyList<string> MaskedPaths { get; } =
    [
        "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
        "/sys/devices/virtual/powercap",
    ];

    /// <summary>Paths a non-privileged container sees read-only.</summary>
    public static IReadOnlyList<string> ReadonlyPaths { get; } =
        ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

    /// <summary>proc, a tmpfs /dev with devpts, shm and mqueue, read-only sysfs and cgroup file systems.</summary>
    public static List<SpecMount> Mounts() =>
    [
        new() { Destination = "/proc", Type = "proc", Source = "proc", Options = ["nosuid", "noexec", "nodev"] },
        new() { Destination = "/dev", Type = "tmpfs", Source = "tmpfs", Options = ["nosuid", "strictatime", "mode=755", "size=65536k"] },
        new() { Destination = "/dev/pts", Type = "devpts", Source = "devpts",
            Options = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
        new() { Destination = "/dev/shm", Type = "tmpfs", Source = "shm", Options = ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
        new() { Destination = "/dev/mqueue", Type = "mqueue", Source = "mqueue", Options = ["nosuid", "noexec", "nodev"] },
        new() { Destination = "/sys", Type = "sysfs", Source = "sysfs", Options = ["nosuid", "noexec", "nodev", "ro"] },
        new() { Destination = "/sys/fs/cgroup", Type = "cgroup", Source = "cgroup", Options = ["nosuid", "noexec", "nodev", "relatime", "ro"] },
    ];

    /// <summary>The namespaces of an isolated container (new pid, network, ipc, uts and mount namespaces).</summary>
    public static List<SpecNamespace> Namespaces() =>
        [new() { Type = "pid" }, new() { Type = "network" }, new() { Type = "ipc" }, new() { Type = "uts" }, new() { Type = "mount" }];

    /// <summary>The default capabilities in the bounding, effective and permitted sets.</summary>
    public static SpecCapabilities Capabilities() => new()
    {
        Bounding = [.. Security.Capabilities.DefaultNames],
        Effective = [.. Security.Capabilities.DefaultNames],
        Permitted = [.. Security.Capabilities.DefaultNames],
    };

    /// <summary>A complete spec for <paramref name="args"/> in <paramref name="rootfs"/>, as `runc spec` would start it.</summary>
    public static RuntimeSpec Container(string rootfs, IReadOnlyList<string> args) => new()
    {
        Process = new SpecProcess
        {
            Args = [.. args],
            Env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            Cwd = "/",
            Capabilities = Capabilities(),
            Rlimits = [new SpecRlimit { Type = "RLIMIT_NOFILE", Soft = 1024, Hard = 1024 }],
            NoNewPrivileges = true,
        },
        Root = new SpecRoot { Path = rootfs },
        Hostname = "nacelle",
        Mounts = Mounts(),
        Linux = new SpecLinux
        {
            Namespaces = Namespaces(),
            MaskedPaths = [.. MaskedPaths],
            ReadonlyPaths = [.. ReadonlyPaths],
        },
    };
}
