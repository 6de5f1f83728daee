namespace Nacelle.ContainerCore.Security.Seccomp;

/// <summary>
/// nacelle's RuntimeDefault seccomp profile: everything is allowed except the system calls a container has no business
/// making (kernel modules and kexec, the kernel keyring, clock setting, swap, reboot, accounting, tracing other
/// processes, new mounts and namespaces, BPF and perf, NUMA policy, userfaultfd, handle-based opens, obsolete calls),
/// which fail with EPERM. It is a deny list rather than containerd's allow list: a smaller filter, the same
/// protection against the calls that matter, and no surprise for programs using newer system calls. Privileged
/// containers get no seccomp at all (CRI). Names this node's table does not know are skipped by the compiler.
/// </summary>
public static class DefaultSeccompProfile
{
    /// <summary>The denied system calls.</summary>
    public static IReadOnlyList<string> Denied { get; } =
    [
        // kernel code and boot
        "init_module", "finit_module", "delete_module", "create_module", "query_module", "get_kernel_syms",
        "kexec_load", "kexec_file_load", "reboot",
        // keyring (not namespaced)
        "add_key", "request_key", "keyctl",
        // clocks, swap, accounting, quotas
        "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "stime", "swapon", "swapoff", "acct", "quotactl",
        "quotactl_fd",
        // other processes' memory and tracing
        "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "perf_event_open", "bpf", "lookup_dcookie",
        // mounts and namespaces
        "mount", "umount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
        "open_tree", "mount_setattr", "unshare", "setns",
        // NUMA policy, userfaultfd, handles
        "mbind", "set_mempolicy", "get_mempolicy", "move_pages", "userfaultfd", "name_to_handle_at", "open_by_handle_at",
        // hardware ports and obsolete calls
        "ioperm", "iopl", "vm86", "vm86old", "uselib", "ustat", "sysfs", "_sysctl", "nfsservctl",
    ];

    /// <summary>The profile as OCI linux.seccomp JSON.</summary>
    public static string Json { get; } =
        "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[\"SCMP_ARCH_X86_64\",\"SCMP_ARCH_AARCH64\"]," +
        "\"syscalls\":[{\"names\":[" + string.Join(',', Denied.Select(n => "\"" + n + "\"")) + "],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":1}]}";
}
