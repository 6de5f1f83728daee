using System.Collections.Frozen;

namespace Nacelle.ContainerCore.Security.Seccomp;

/// <summary>
/// Syscall name -> number, as the kernel numbers them (ABI facts from its syscall tables): x86_64, i386 and aarch64
/// (the asm-generic table) in full; x32 and 32-bit arm only for the numbers every architecture shares since 424 (x32
/// with its 0x40000000 bit). libseccomp knows these too; nacelle's own tables serve the names a library older than the
/// kernel does not know yet, and the tests that hold both to the same numbers.
/// </summary>
public static class SyscallTable
{
    // x86_64: arch/x86/entry/syscalls/syscall_64.tbl, numbers 0..336 in order.
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
        "pkey_alloc", "pkey_free", "statx", "io_pgetevents", "rseq", "uretprobe", "uprobe", // 330-336
    ];

    // i386: arch/x86/entry/syscalls/syscall_32.tbl, numbers 0..423 in order ("": unassigned).
    private static readonly string[] I386Low =
    [
        "restart_syscall", "exit", "fork", "read", "write", "open", "close", "waitpid", "creat", "link", // 0-9
        "unlink", "execve", "chdir", "time", "mknod", "chmod", "lchown", "break", "oldstat", "lseek", // 10-19
        "getpid", "mount", "umount", "setuid", "getuid", "stime", "ptrace", "alarm", "oldfstat", "pause", // 20-29
        "utime", "stty", "gtty", "access", "nice", "ftime", "sync", "kill", "rename", "mkdir", // 30-39
        "rmdir", "dup", "pipe", "times", "prof", "brk", "setgid", "getgid", "signal", "geteuid", // 40-49
        "getegid", "acct", "umount2", "lock", "ioctl", "fcntl", "mpx", "setpgid", "ulimit", "oldolduname", // 50-59
        "umask", "chroot", "ustat", "dup2", "getppid", "getpgrp", "setsid", "sigaction", "sgetmask", "ssetmask", // 60-69
        "setreuid", "setregid", "sigsuspend", "sigpending", "sethostname", "setrlimit", "getrlimit", "getrusage", "gettimeofday", "settimeofday", // 70-79
        "getgroups", "setgroups", "select", "symlink", "oldlstat", "readlink", "uselib", "swapon", "reboot", "readdir", // 80-89
        "mmap", "munmap", "truncate", "ftruncate", "fchmod", "fchown", "getpriority", "setpriority", "profil", "statfs", // 90-99
        "fstatfs", "ioperm", "socketcall", "syslog", "setitimer", "getitimer", "stat", "lstat", "fstat", "olduname", // 100-109
        "iopl", "vhangup", "idle", "vm86old", "wait4", "swapoff", "sysinfo", "ipc", "fsync", "sigreturn", // 110-119
        "clone", "setdomainname", "uname", "modify_ldt", "adjtimex", "mprotect", "sigprocmask", "create_module", "init_module", "delete_module", // 120-129
        "get_kernel_syms", "quotactl", "getpgid", "fchdir", "bdflush", "sysfs", "personality", "afs_syscall", "setfsuid", "setfsgid", // 130-139
        "_llseek", "getdents", "_newselect", "flock", "msync", "readv", "writev", "getsid", "fdatasync", "_sysctl", // 140-149
        "mlock", "munlock", "mlockall", "munlockall", "sched_setparam", "sched_getparam", "sched_setscheduler", "sched_getscheduler", "sched_yield", "sched_get_priority_max", // 150-159
        "sched_get_priority_min", "sched_rr_get_interval", "nanosleep", "mremap", "setresuid", "getresuid", "vm86", "query_module", "poll", "nfsservctl", // 160-169
        "setresgid", "getresgid", "prctl", "rt_sigreturn", "rt_sigaction", "rt_sigprocmask", "rt_sigpending", "rt_sigtimedwait", "rt_sigqueueinfo", "rt_sigsuspend", // 170-179
        "pread64", "pwrite64", "chown", "getcwd", "capget", "capset", "sigaltstack", "sendfile", "getpmsg", "putpmsg", // 180-189
        "vfork", "ugetrlimit", "mmap2", "truncate64", "ftruncate64", "stat64", "lstat64", "fstat64", "lchown32", "getuid32", // 190-199
        "getgid32", "geteuid32", "getegid32", "setreuid32", "setregid32", "getgroups32", "setgroups32", "fchown32", "setresuid32", "getresuid32", // 200-209
        "setresgid32", "getresgid32", "chown32", "setuid32", "setgid32", "setfsuid32", "setfsgid32", "pivot_root", "mincore", "madvise", // 210-219
        "getdents64", "fcntl64", "", "", "gettid", "readahead", "setxattr", "lsetxattr", "fsetxattr", "getxattr", // 220-229
        "lgetxattr", "fgetxattr", "listxattr", "llistxattr", "flistxattr", "removexattr", "lremovexattr", "fremovexattr", "tkill", "sendfile64", // 230-239
        "futex", "sched_setaffinity", "sched_getaffinity", "set_thread_area", "get_thread_area", "io_setup", "io_destroy", "io_getevents", "io_submit", "io_cancel", // 240-249
        "fadvise64", "", "exit_group", "lookup_dcookie", "epoll_create", "epoll_ctl", "epoll_wait", "remap_file_pages", "set_tid_address", "timer_create", // 250-259
        "timer_settime", "timer_gettime", "timer_getoverrun", "timer_delete", "clock_settime", "clock_gettime", "clock_getres", "clock_nanosleep", "statfs64", "fstatfs64", // 260-269
        "tgkill", "utimes", "fadvise64_64", "vserver", "mbind", "get_mempolicy", "set_mempolicy", "mq_open", "mq_unlink", "mq_timedsend", // 270-279
        "mq_timedreceive", "mq_notify", "mq_getsetattr", "kexec_load", "waitid", "", "add_key", "request_key", "keyctl", "ioprio_set", // 280-289
        "ioprio_get", "inotify_init", "inotify_add_watch", "inotify_rm_watch", "migrate_pages", "openat", "mkdirat", "mknodat", "fchownat", "futimesat", // 290-299
        "fstatat64", "unlinkat", "renameat", "linkat", "symlinkat", "readlinkat", "fchmodat", "faccessat", "pselect6", "ppoll", // 300-309
        "unshare", "set_robust_list", "get_robust_list", "splice", "sync_file_range", "tee", "vmsplice", "move_pages", "getcpu", "epoll_pwait", // 310-319
        "utimensat", "signalfd", "timerfd_create", "eventfd", "fallocate", "timerfd_settime", "timerfd_gettime", "signalfd4", "eventfd2", "epoll_create1", // 320-329
        "dup3", "pipe2", "inotify_init1", "preadv", "pwritev", "rt_tgsigqueueinfo", "perf_event_open", "recvmmsg", "fanotify_init", "fanotify_mark", // 330-339
        "prlimit64", "name_to_handle_at", "open_by_handle_at", "clock_adjtime", "syncfs", "sendmmsg", "setns", "process_vm_readv", "process_vm_writev", "kcmp", // 340-349
        "finit_module", "sched_setattr", "sched_getattr", "renameat2", "seccomp", "getrandom", "memfd_create", "bpf", "execveat", "socket", // 350-359
        "socketpair", "bind", "connect", "listen", "accept4", "getsockopt", "setsockopt", "getsockname", "getpeername", "sendto", // 360-369
        "sendmsg", "recvfrom", "recvmsg", "shutdown", "userfaultfd", "membarrier", "mlock2", "copy_file_range", "preadv2", "pwritev2", // 370-379
        "pkey_mprotect", "pkey_alloc", "pkey_free", "statx", "arch_prctl", "io_pgetevents", "rseq", "", "", "", // 380-389
        "", "", "", "semget", "semctl", "shmget", "shmctl", "shmat", "shmdt", "msgget", // 390-399
        "msgsnd", "msgrcv", "msgctl", "clock_gettime64", "clock_settime64", "clock_adjtime64", "clock_getres_time64", "clock_nanosleep_time64", "timer_gettime64", "timer_settime64", // 400-409
        "timerfd_gettime64", "timerfd_settime64", "utimensat_time64", "pselect6_time64", "ppoll_time64", "", "io_pgetevents_time64", "recvmmsg_time64", "mq_timedsend_time64", "mq_timedreceive_time64", // 410-419
        "semtimedop_time64", "rt_sigtimedwait_time64", "futex_time64", "sched_rr_get_interval_time64", // 420-423
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
    private static readonly FrozenDictionary<string, int> I386 = Build((I386Low, 0), (Unified, UnifiedBase));
    private static readonly FrozenDictionary<string, int> Aarch64 = Build((GenericLow, 0), (GenericMid, 260), (Unified, UnifiedBase));
    private static readonly FrozenDictionary<string, int> Shared = Build((Unified, UnifiedBase));

    // The shared block's exceptions: map_shadow_stack is x86_64's alone among the x86 ABIs, memfd_secret is not wired
    // up on 32-bit arm.
    private static readonly FrozenDictionary<string, int> X32 = Shared.Where(e => e.Key != "map_shadow_stack")
        .ToFrozenDictionary(e => e.Key, e => e.Value | (int)SeccompConstants.X32SyscallBit, StringComparer.Ordinal);
    private static readonly FrozenDictionary<string, int> Arm = Shared.Where(e => e.Key != "memfd_secret").ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>The names nacelle knows on <paramref name="arch"/> with their numbers (x32 numbers carry the x32 bit).</summary>
    public static IEnumerable<KeyValuePair<string, int>> Entries(SeccompArch arch) => arch switch
    {
        SeccompArch.X86_64 => X86_64,
        SeccompArch.X86 => I386,
        SeccompArch.Aarch64 => Aarch64,
        SeccompArch.X32 => X32,
        SeccompArch.Arm => Arm,
        _ => [],
    };

    /// <summary>The number of <paramref name="name"/> on <paramref name="arch"/>, or null when nacelle's tables do not
    /// know it there (x32 and arm: only the shared block from 424 on).</summary>
    public static int? Lookup(SeccompArch arch, string name)
    {
        var table = arch switch
        {
            SeccompArch.X86_64 => X86_64,
            SeccompArch.X86 => I386,
            SeccompArch.Aarch64 => Aarch64,
            SeccompArch.X32 => X32,
            SeccompArch.Arm => Arm,
            _ => null,
        };
        return table is not null && table.TryGetValue(name, out var nr) ? nr : null;
    }

    private static FrozenDictionary<string, int> Build(params (string[] Names, int First)[] blocks)
    {
        var map = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (names, first) in blocks)
        {
            for (var i = 0; i < names.Length; i++)
            {
                if (names[i].Length > 0)
                {
                    map.Add(names[i], first + i);
                }
            }
        }

        return map.ToFrozenDictionary(StringComparer.Ordinal);
    }
}
