using System.Collections.Frozen;

namespace Nacelle.ContainerCore.Security.Seccomp;

/// <summary>Syscall name -> number for the architectures nacelle compiles filters for (x86_64 and aarch64, whose
/// table is the asm-generic one). Numbers are kernel ABI facts; since 424 both share one numbering.</summary>
public static class SyscallTable
{
    // x86_64: arch/x86/entry/syscalls/syscall_64.tbl, numbers 0..335 in order.
    private static readonly string[] X86_64Low =
    [
        "read", "write", "open", "close", "stat", "fstat", "lstat", "poll", "lseek", "mmap", // 0-9
        "mprotect", "munmap", "brk", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "ioctl", "pread64", "pwrite64", "readv", // 10-19
        "writev", "access", "pipe", "select", "sched_yield", "mremap", "msync", "mincore", "madvise", "shmget", // 20-29
        "shmat", "shmctl", "dup", "dup2", "pause", "nanosleep", "getitimer", "alarm", "setitimer", "getpid", // 30-39
        "sendfile", "socket", "connect", "accept", "sendto", "recvfrom", "sendmsg", "recvmsg", "shutdown", "bind", // 40-49
        "listen", "getsockname", "getpeername", "socketpair", "setsockopt", "getsockopt", "clone", "fork", "vfork", "execve", // 50-59
        "exit", "wait4", "kill", "uname", "semget", "semop", "semctl", "shmdt", "msgget", "msgsnd", // 60-69
        "msgrcv", "msgctl", "fcntl", "flock", "fsync", "fdatasync", "truncate", "ftruncate", "getdents", "getcwd", // 70-79
        "chdir", "fchdir", "rename", "mkdir", "rmdir", "creat", "link", "unlink", "symlink", "readlink", // 80-89
        "chmod", "fchmod", "chown", "fchown", "lchown", "umask", "gettimeofday", "getrlimit", "getrusage", "sysinfo", // 90-99
        "times", "ptrace", "getuid", "syslog", "getgid", "setuid", "setgid", "geteuid", "getegid", "setpgid", // 100-109
        "getppid", "getpgrp", "setsid", "setreuid", "setregid", "getgroups", "setgroups", "setresuid", "getresuid", "setresgid", // 110-119
        "getresgid", "getpgid", "setfsuid", "setfsgid", "getsid", "capget", "capset", "rt_sigpending", "rt_sigtimedwait", "rt_sigqueueinfo", // 120-129
        "rt_sigsuspend", "sigaltstack", "utime", "mknod", "uselib", "personality", "ustat", "statfs", "fstatfs", "sysfs", // 130-139
        "getpriority", "setpriority", "sched_setparam", "sched_getparam", "sched_setscheduler", "sched_getscheduler", "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval", "mlock", // 140-149
        "munlock", "mlockall", "munlockall", "vhangup", "modify_ldt", "pivot_root", "_sysctl", "prctl", "arch_prctl", "adjtimex", // 150-159
        "setrlimit", "chroot", "sync", "acct", "settimeofday", "mount", "umount2", "swapon", "swapoff", "reboot", // 160-169
        "sethostname", "setdomainname", "iopl", "ioperm", "create_module", "init_module", "delete_module", "get_kernel_syms", "query_module", "quotactl", // 170-179
        "nfsservctl", "getpmsg", "putpmsg", "afs_syscall", "tuxcall", "security", "gettid", "readahead", "setxattr", "lsetxattr", // 180-189
        "fsetxattr", "getxattr", "lgetxattr", "fgetxattr", "listxattr", "llistxattr", "flistxattr", "removexattr", "lremovexattr", "fremovexattr", // 190-199
        "tkill", "time", "futex", "sched_setaffinity", "sched_getaffinity", "set_thread_area", "io_setup", "io_destroy", "io_getevents", "io_submit", // 200-209
        "io_cancel", "get_thread_area", "lookup_dcookie", "epoll_create", "epoll_ctl_old", "epoll_wait_old", "remap_file_pages", "getdents64", "set_tid_address", "restart_syscall", // 210-219
        "semtimedop", "fadvise64", "timer_create", "timer_settime", "timer_gettime", "timer_getoverrun", "timer_delete", "clock_settime", "clock_gettime", "clock_getres", // 220-229
        "clock_nanosleep", "exit_group", "epoll_wait", "epoll_ctl", "tgkill", "utimes", "vserver", "mbind", "set_mempolicy", "get_mempolicy", // 230-239
        "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr", "kexec_load", "waitid", "add_key", "request_key", // 240-249
        "keyctl", "ioprio_set", "ioprio_get", "inotify_init", "inotify_add_watch", "inotify_rm_watch", "migrate_pages", "openat", "mkdirat", "mknodat", // 250-259
        "fchownat", "futimesat", "newfstatat", "unlinkat", "renameat", "linkat", "symlinkat", "readlinkat", "fchmodat", "faccessat", // 260-269
        "pselect6", "ppoll", "unshare", "set_robust_list", "get_robust_list", "splice", "tee", "sync_file_range", "vmsplice", "move_pages", // 270-279
        "utimensat", "epoll_pwait", "signalfd", "timerfd_create", "eventfd", "fallocate", "timerfd_settime", "timerfd_gettime", "accept4", "signalfd4", // 280-289
        "eventfd2", "epoll_create1", "dup3", "pipe2", "inotify_init1", "preadv", "pwritev", "rt_tgsigqueueinfo", "perf_event_open", "recvmmsg", // 290-299
        "fanotify_init", "fanotify_mark", "prlimit64", "name_to_handle_at", "open_by_handle_at", "clock_adjtime", "syncfs", "sendmmsg", "setns", "getcpu", // 300-309
        "process_vm_readv", "process_vm_writev", "kcmp", "finit_module", "sched_setattr", "sched_getattr", "renameat2", "seccomp", "getrandom", "memfd_create", // 310-319
        "kexec_file_load", "bpf", "execveat", "userfaultfd", "membarrier", "mlock2", "copy_file_range", "preadv2", "pwritev2", "pkey_mprotect", // 320-329
        "pkey_alloc", "pkey_free", "statx", "io_pgetevents", "rseq", "uretprobe", // 330-335
    ];

    // asm-generic (aarch64): include/uapi/asm-generic/unistd.h, numbers 0..243 in order.
    private static readonly string[] GenericLow =
    [
        "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "setxattr", "lsetxattr", "fsetxattr", "getxattr", "lgetxattr", // 0-9
        "fgetxattr", "listxattr", "llistxattr", "flistxattr", "removexattr", "lremovexattr", "fremovexattr", "getcwd", "lookup_dcookie", "eventfd2", // 10-19
        "epoll_create1", "epoll_ctl", "epoll_pwait", "dup", "dup3", "fcntl", "inotify_init1", "inotify_add_watch", "inotify_rm_watch", "ioctl", // 20-29
        "ioprio_set", "ioprio_get", "flock", "mknodat", "mkdirat", "unlinkat", "symlinkat", "linkat", "renameat", "umount2", // 30-39
        "mount", "pivot_root", "nfsservctl", "statfs", "fstatfs", "truncate", "ftruncate", "fallocate", "faccessat", "chdir", // 40-49
        "fchdir", "chroot", "fchmod", "fchmodat", "fchownat", "fchown", "openat", "close", "vhangup", "pipe2", // 50-59
        "quotactl", "getdents64", "lseek", "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", // 60-69
        "pwritev", "sendfile", "pselect6", "ppoll", "signalfd4", "vmsplice", "splice", "tee", "readlinkat", "newfstatat", // 70-79
        "fstat", "sync", "fsync", "fdatasync", "sync_file_range", "timerfd_create", "timerfd_settime", "timerfd_gettime", "utimensat", "acct", // 80-89
        "capget", "capset", "personality", "exit", "exit_group", "waitid", "set_tid_address", "unshare", "futex", "set_robust_list", // 90-99
        "get_robust_list", "nanosleep", "getitimer", "setitimer", "kexec_load", "init_module", "delete_module", "timer_create", "timer_gettime", "timer_getoverrun", // 100-109
        "timer_settime", "timer_delete", "clock_settime", "clock_gettime", "clock_getres", "clock_nanosleep", "syslog", "ptrace", "sched_setparam", "sched_setscheduler", // 110-119
        "sched_getscheduler", "sched_getparam", "sched_setaffinity", "sched_getaffinity", "sched_yield", "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval", "restart_syscall", "kill", // 120-129
        "tkill", "tgkill", "sigaltstack", "rt_sigsuspend", "rt_sigaction", "rt_sigprocmask", "rt_sigpending", "rt_sigtimedwait", "rt_sigqueueinfo", "rt_sigreturn", // 130-139
        "setpriority", "getpriority", "reboot", "setregid", "setgid", "setreuid", "setuid", "setresuid", "getresuid", "setresgid", // 140-149
        "getresgid", "setfsuid", "setfsgid", "times", "setpgid", "getpgid", "getsid", "setsid", "getgroups", "setgroups", // 150-159
        "uname", "sethostname", "setdomainname", "getrlimit", "setrlimit", "getrusage", "umask", "prctl", "getcpu", "gettimeofday", // 160-169
        "settimeofday", "adjtimex", "getpid", "getppid", "getuid", "geteuid", "getgid", "getegid", "gettid", "sysinfo", // 170-179
        "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr", "msgget", "msgctl", "msgrcv", "msgsnd", // 180-189
        "semget", "semctl", "semtimedop", "semop", "shmget", "shmctl", "shmat", "shmdt", "socket", "socketpair", // 190-199
        "bind", "listen", "accept", "connect", "getsockname", "getpeername", "sendto", "recvfrom", "setsockopt", "getsockopt", // 200-209
        "shutdown", "sendmsg", "recvmsg", "readahead", "brk", "munmap", "mremap", "add_key", "request_key", "keyctl", // 210-219
        "clone", "execve", "mmap", "fadvise64", "swapon", "swapoff", "mprotect", "msync", "mlock", "munlock", // 220-229
        "mlockall", "munlockall", "mincore", "madvise", "remap_file_pages", "mbind", "get_mempolicy", "set_mempolicy", "migrate_pages", "move_pages", // 230-239
        "rt_tgsigqueueinfo", "perf_event_open", "accept4", "recvmmsg", // 240-243
    ];

    // asm-generic (aarch64) 260..294 in order (244-259 are reserved for per-arch calls; arm64 uses none).
    private static readonly string[] GenericMid =
    [
        "wait4", "prlimit64", "fanotify_init", "fanotify_mark", "name_to_handle_at", "open_by_handle_at", "clock_adjtime", "syncfs", "setns", "sendmmsg", // 260-269
        "process_vm_readv", "process_vm_writev", "kcmp", "finit_module", "sched_setattr", "sched_getattr", "renameat2", "seccomp", "getrandom", "memfd_create", // 270-279
        "bpf", "execveat", "userfaultfd", "membarrier", "mlock2", "copy_file_range", "preadv2", "pwritev2", "pkey_mprotect", "pkey_alloc", // 280-289
        "pkey_free", "statx", "io_pgetevents", "rseq", "kexec_file_load", // 290-294
    ];

    // Shared by every architecture since 5.1: 424..469 in order.
    private static readonly string[] Unified =
    [
        "pidfd_send_signal", "io_uring_setup", "io_uring_enter", "io_uring_register", "open_tree", "move_mount", // 424-429
        "fsopen", "fsconfig", "fsmount", "fspick", "pidfd_open", "clone3", "close_range", "openat2", "pidfd_getfd", "faccessat2", // 430-439
        "process_madvise", "epoll_pwait2", "mount_setattr", "quotactl_fd", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self", "memfd_secret", "process_mrelease", "futex_waitv", // 440-449
        "set_mempolicy_home_node", "cachestat", "fchmodat2", "map_shadow_stack", "futex_wake", "futex_wait", "futex_requeue", "statmount", "listmount", "lsm_get_self_attr", // 450-459
        "lsm_set_self_attr", "lsm_list_modules", "mseal", "setxattrat", "getxattrat", "listxattrat", "removexattrat", "open_tree_attr", "file_getattr", "file_setattr", // 460-469
    ];

    private const int UnifiedBase = 424;

    private static readonly FrozenDictionary<string, int> X86_64 = Build((X86_64Low, 0), (Unified, UnifiedBase));
    private static readonly FrozenDictionary<string, int> Aarch64 = Build((GenericLow, 0), (GenericMid, 260), (Unified, UnifiedBase));

    /// <summary>The table for <paramref name="arch"/>, or null when nacelle has none (i386, x32-only and arm numbers).</summary>
    public static IReadOnlyDictionary<string, int>? For(SeccompArch arch) => arch switch
    {
        SeccompArch.X86_64 => X86_64,
        SeccompArch.Aarch64 => Aarch64,
        _ => null,
    };

    /// <summary>The number of <paramref name="name"/> on <paramref name="arch"/>, or null when unknown there.</summary>
    public static int? Lookup(SeccompArch arch, string name)
        => For(arch) is { } table && table.TryGetValue(name, out var nr) ? nr : null;

    private static FrozenDictionary<string, int> Build(params (string[] Names, int First)[] blocks)
    {
        var map = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (names, first) in blocks)
        {
            for (var i = 0; i < names.Length; i++)
            {
                map.Add(names[i], first + i);
            }
        }

        return map.ToFrozenDictionary(StringComparer.Ordinal);
    }
}
