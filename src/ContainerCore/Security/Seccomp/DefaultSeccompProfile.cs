namespace Nacelle.ContainerCore.Security.Seccomp;

/// <summary>
/// nacelle's RuntimeDefault seccomp profile: an allow-list, written for nacelle. Unlisted calls fail with EPERM, calls
/// newer than the profile with ENOSYS (the compiler's prologue: numbers above the highest the profile names), so
/// libraries fall back to older calls. Every ABI the CPU can enter is filtered with its own numbers (x86_64 and i386 on
/// amd64, aarch64 and arm on arm64); x32 is not named, so an x32 call kills the process. Calls that need a capability
/// the container was not granted are refused even where the kernel would check the capability itself: the filter is
/// the second wall. Privileged containers and Unconfined get no filter at all (CRI).
/// <para>
/// Known limit, shared with runc and containerd: on i386 the socket calls can also come through socketcall(2), whose
/// arguments live in memory seccomp cannot read, so the AF_VSOCK rule binds the direct socket(2) call only there.
/// </para>
/// </summary>
public static class DefaultSeccompProfile
{
    private const ulong CloneNewNs = 0x00020000;
    private const ulong CloneNewCgroup = 0x02000000;
    private const ulong CloneNewUts = 0x04000000;
    private const ulong CloneNewIpc = 0x08000000;
    private const ulong CloneNewUser = 0x10000000;
    private const ulong CloneNewPid = 0x20000000;
    private const ulong CloneNewNet = 0x40000000;

    /// <summary>The clone(2) flags that make new namespaces (CLONE_NEWTIME only exists for clone3 and unshare).</summary>
    public const ulong NamespaceFlags = CloneNewNs | CloneNewCgroup | CloneNewUts | CloneNewIpc | CloneNewUser | CloneNewPid | CloneNewNet;

    /// <summary>AF_VSOCK: sockets to the hypervisor or host, which a container has no business reaching.</summary>
    public const ulong AfVsock = 40;

    /// <summary>The personality(2) values a container may set: PER_LINUX, PER_LINUX32, UNAME26 with either, and the
    /// query 0xffffffff. READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE and the rest stay refused.</summary>
    public static IReadOnlyList<ulong> Personalities { get; } = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

    // ---- allowed for every container -------------------------------------------------------------------------

    private static readonly string[][] Allowed =
    [
        // process lifetime and what a process may know about itself
        ["exit", "exit_group", "getpid", "getppid", "gettid", "getpgid", "getpgrp", "getsid", "setsid", "setpgid",
         "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups", "capget", "uname", "sysinfo",
         "times", "getrusage", "getrlimit", "ugetrlimit", "setrlimit", "prlimit64", "getcpu", "getrandom", "prctl",
         "restart_syscall", "set_tid_address", "set_robust_list", "get_robust_list", "rseq",
         "getuid32", "geteuid32", "getgid32", "getegid32", "getresuid32", "getresgid32", "getgroups32"],
        // credential changes: su, nginx workers, the spawn helper itself; the kernel checks CAP_SETUID/SETGID/SETPCAP
        ["setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid", "setfsgid", "setgroups", "capset",
         "setuid32", "setgid32", "setreuid32", "setregid32", "setresuid32", "setresgid32", "setfsuid32", "setfsgid32", "setgroups32"],
        // scheduling and priorities of its own threads; raising them needs CAP_SYS_NICE, checked by the kernel
        ["sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_setparam", "sched_getscheduler",
         "sched_setscheduler", "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval",
         "sched_rr_get_interval_time64", "sched_getattr", "sched_setattr", "getpriority", "setpriority", "ioprio_get", "ioprio_set"],
        // memory of its own address space (mseal and map_shadow_stack only restrict it further), and the memory of a
        // process it has killed (process_mrelease, through a pidfd)
        ["brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync", "mlock", "mlock2", "munlock",
         "mlockall", "munlockall", "remap_file_pages", "membarrier", "pkey_alloc", "pkey_free", "pkey_mprotect",
         "memfd_create", "memfd_secret", "mseal", "map_shadow_stack", "cachestat", "process_mrelease"],
        // threads and processes: plain fork/vfork/execve; clone has its own rule below
        ["fork", "vfork", "execve", "execveat", "wait4", "waitid", "waitpid"],
        // futexes (glibc, musl and Go threads, Java monitors)
        ["futex", "futex_time64", "futex_waitv", "futex_wake", "futex_wait", "futex_requeue"],
        // signals, to itself and to processes it may signal (the kernel checks who)
        ["rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait", "rt_sigtimedwait_time64",
         "rt_sigqueueinfo", "rt_tgsigqueueinfo", "rt_sigsuspend", "sigaltstack", "sigreturn", "sigprocmask", "kill", "tkill",
         "tgkill", "signalfd", "signalfd4", "pause", "pidfd_open", "pidfd_send_signal"],
        // clocks and timers (reading time; adjtimex/clock_adjtime only read without CAP_SYS_TIME, the kernel checks)
        ["clock_gettime", "clock_gettime64", "clock_getres", "clock_getres_time64", "clock_nanosleep", "clock_nanosleep_time64",
         "gettimeofday", "time", "nanosleep", "alarm", "getitimer", "setitimer", "timer_create", "timer_settime",
         "timer_settime64", "timer_gettime", "timer_gettime64", "timer_getoverrun", "timer_delete", "timerfd_create",
         "timerfd_settime", "timerfd_settime64", "timerfd_gettime", "timerfd_gettime64", "adjtimex", "clock_adjtime",
         "clock_adjtime64"],
        // file descriptors and plain I/O
        ["read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2", "lseek",
         "_llseek", "close", "close_range", "dup", "dup2", "dup3", "fcntl", "fcntl64", "ioctl", "flock", "sendfile",
         "sendfile64", "copy_file_range", "splice", "tee", "vmsplice", "pipe", "pipe2", "eventfd", "eventfd2",
         "fsync", "fdatasync", "sync", "syncfs", "sync_file_range", "arm_sync_file_range", "fallocate",
         "fadvise64", "fadvise64_64", "arm_fadvise64_64", "readahead"],
        // readiness and asynchronous I/O: poll/select/epoll and Linux AIO (io_uring is not here: see below)
        ["poll", "ppoll", "ppoll_time64", "select", "_newselect", "pselect6", "pselect6_time64", "epoll_create",
         "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "io_setup", "io_destroy", "io_submit",
         "io_cancel", "io_getevents", "io_pgetevents", "io_pgetevents_time64"],
        // paths and metadata inside its own mount namespace (the kernel checks permissions; mknod needs CAP_MKNOD and
        // the device cgroup)
        ["open", "openat", "openat2", "creat", "stat", "fstat", "lstat", "stat64", "fstat64", "lstat64", "newfstatat",
         "fstatat64", "statx", "statfs", "fstatfs", "statfs64", "fstatfs64", "access", "faccessat", "faccessat2", "getcwd",
         "chdir", "fchdir", "mkdir", "mkdirat", "mknod", "mknodat", "rmdir", "rename", "renameat", "renameat2", "link",
         "linkat", "unlink", "unlinkat", "symlink", "symlinkat", "readlink", "readlinkat", "chmod", "fchmod", "fchmodat",
         "fchmodat2", "chown", "fchown", "lchown", "fchownat", "chown32", "fchown32", "lchown32", "umask", "truncate",
         "ftruncate", "truncate64", "ftruncate64", "utime", "utimes", "utimensat", "utimensat_time64", "futimesat",
         "getdents", "getdents64", "file_getattr", "file_setattr"],
        // extended attributes (security.* and trusted.* need capabilities, checked by the kernel)
        ["setxattr", "lsetxattr", "fsetxattr", "getxattr", "lgetxattr", "fgetxattr", "listxattr", "llistxattr",
         "flistxattr", "removexattr", "lremovexattr", "fremovexattr", "setxattrat", "getxattrat", "listxattrat",
         "removexattrat"],
        // file change notification (fanotify_init needs CAP_SYS_ADMIN; fanotify_mark only works on its groups)
        ["inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch", "fanotify_mark"],
        // sockets other than socket(2) itself (its rule is below); on i386 libseccomp also allows each of these
        // through socketcall(2) with its call number, and nothing else through it
        ["socketpair", "bind", "connect", "listen", "accept", "accept4", "getsockname", "getpeername", "getsockopt",
         "setsockopt", "sendto", "send", "recvfrom", "recv", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
         "recvmmsg_time64", "shutdown"],
        // System V IPC and POSIX message queues, in the container's own IPC namespace (on i386 also through ipc(2))
        ["semget", "semop", "semctl", "semtimedop", "semtimedop_time64", "msgget", "msgsnd", "msgrcv", "msgctl", "shmget",
         "shmat", "shmdt", "shmctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedsend_time64", "mq_timedreceive",
         "mq_timedreceive_time64", "mq_notify", "mq_getsetattr"],
        // confining itself further: nested seccomp filters and Landlock
        ["seccomp", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self"],
        // read its own mount table (as /proc/self/mountinfo does); other namespaces need CAP_SYS_ADMIN there
        ["statmount", "listmount"],
        // entered only from the trampolines the kernel plants for host-side uprobes; refusing them would crash the
        // traced program (recent kernels let them past seccomp anyway)
        ["uretprobe", "uprobe"],
    ];

    // Thread-local storage and the cache/TLS calls every program of that CPU family makes.
    private static readonly string[] AllowedTls = ["arch_prctl", "set_thread_area", "get_thread_area", "set_tls", "cacheflush", "breakpoint"];

    // Names that exist only on the x86 ABIs or only on the arm ABIs; the other family's profile leaves them out, so
    // that every name of a profile is a call of one of its ABIs (the compiler reports the others).
    private static readonly HashSet<string> X86Only = new(StringComparer.Ordinal)
    {
        "arch_prctl", "set_thread_area", "get_thread_area", "alarm", "time", "select", "utime", "waitpid", "fadvise64_64",
        "uretprobe", "uprobe", "stime", "umount", "ioperm", "iopl", "modify_ldt", "vm86", "vm86old", "afs_syscall", "break",
        "create_module", "epoll_ctl_old", "epoll_wait_old", "ftime", "get_kernel_syms", "getpmsg", "putpmsg", "gtty", "stty",
        "idle", "lock", "mpx", "oldfstat", "oldlstat", "oldolduname", "oldstat", "olduname", "prof", "profil",
        "query_module", "readdir", "security", "sgetmask", "ssetmask", "signal", "tuxcall", "ulimit",
    };

    private static readonly HashSet<string> ArmOnly = new(StringComparer.Ordinal)
    {
        "set_tls", "cacheflush", "breakpoint", "arm_fadvise64_64", "arm_sync_file_range",
    };

    // ---- allowed only with a capability ------------------------------------------------------------------------

    private static readonly (string Capability, string[] Names)[] WithCapability =
    [
        // mounts, namespaces, handles, host-wide kernel interfaces: what CAP_SYS_ADMIN stands for
        ("CAP_SYS_ADMIN", ["mount", "umount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount", "fspick",
            "move_mount", "open_tree", "open_tree_attr", "mount_setattr", "unshare", "setns", "sethostname", "setdomainname",
            "quotactl", "quotactl_fd", "fanotify_init", "name_to_handle_at", "lookup_dcookie", "bpf", "perf_event_open", "syslog"]),
        // reading and changing other processes
        ("CAP_SYS_PTRACE", ["ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "process_madvise", "userfaultfd"]),
        ("CAP_SYS_MODULE", ["init_module", "finit_module", "delete_module"]),
        ("CAP_SYS_BOOT", ["reboot"]),
        ("CAP_SYS_TIME", ["settimeofday", "stime", "clock_settime", "clock_settime64"]),
        // NUMA placement of memory: host-wide resources
        ("CAP_SYS_NICE", ["mbind", "set_mempolicy", "get_mempolicy", "set_mempolicy_home_node", "migrate_pages", "move_pages"]),
        ("CAP_SYS_PACCT", ["acct"]),
        ("CAP_SYS_RAWIO", ["iopl", "ioperm"]),
        ("CAP_SYS_CHROOT", ["chroot"]),
        ("CAP_SYS_TTY_CONFIG", ["vhangup"]),
        ("CAP_SYSLOG", ["syslog"]),
        ("CAP_BPF", ["bpf"]),
        ("CAP_PERFMON", ["perf_event_open"]),
        // open_by_handle_at walks around mount boundaries (the "shocker" escape)
        ("CAP_DAC_READ_SEARCH", ["open_by_handle_at"]),
    ];

    // CAP_SYS_RESOURCE gates no call: setrlimit/prlimit64 are allowed and the kernel checks raising a hard limit.

    // ---- refused for every container (named so they count as known: EPERM, not ENOSYS) --------------------------

    private static readonly string[][] Refused =
    [
        // the kernel keyring is not namespaced: keys would leak between containers and the host
        ["add_key", "request_key", "keyctl"],
        // replacing the running kernel
        ["kexec_load", "kexec_file_load"],
        // host memory and the swap
        ["swapon", "swapoff"],
        // io_uring: a large kernel surface with a record of escapes, whose operations never pass through this
        // filter; libuv, Tokio and liburing users fall back to epoll when it is refused
        ["io_uring_setup", "io_uring_enter", "io_uring_register"],
        // the LDT and vm86: 16-bit and Wine code only, and a history of kernel bugs
        ["modify_ldt", "vm86", "vm86old"],
        // Linux security module attributes: read through /proc/self/attr when needed
        ["lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules"],
        // obsolete or never implemented
        ["uselib", "ustat", "sysfs", "_sysctl", "nfsservctl", "create_module", "get_kernel_syms", "query_module", "bdflush",
         "tuxcall", "security", "afs_syscall", "getpmsg", "putpmsg", "vserver", "epoll_ctl_old", "epoll_wait_old", "idle",
         "nice", "oldstat", "oldfstat", "oldlstat", "olduname", "oldolduname", "readdir", "signal", "sigaction",
         "sigsuspend", "sigpending", "sgetmask", "ssetmask", "break", "stty", "gtty", "ftime", "prof", "profil", "lock",
         "mpx", "ulimit"],
    ];

    /// <summary>
    /// The RuntimeDefault profile for a container granted <paramref name="grantedCapabilities"/> (its bounding set,
    /// names with or without "CAP_", any case) on a host of architecture <paramref name="nativeArch"/>.
    /// </summary>
    public static SeccompProfile For(IReadOnlyCollection<string> grantedCapabilities, SeccompArch nativeArch)
    {
        ArgumentNullException.ThrowIfNull(grantedCapabilities);
        var granted = new HashSet<string>(grantedCapabilities.Select(Normalise), StringComparer.Ordinal);
        var admin = granted.Contains("CAP_SYS_ADMIN");
        var x86 = nativeArch is SeccompArch.X86_64 or SeccompArch.X86 or SeccompArch.X32;

        var allowed = Allowed.SelectMany(g => g).Concat(AllowedTls).ToList();
        var refused = Refused.SelectMany(g => g).ToList();
        foreach (var (capability, names) in WithCapability)
        {
            (granted.Contains(capability) ? allowed : refused).AddRange(names);
        }

        // A call a capability allows is allowed even where another capability's group also names it (bpf, syslog...).
        refused.RemoveAll(allowed.Contains);
        var otherFamily = x86 ? ArmOnly : X86Only;
        allowed.RemoveAll(otherFamily.Contains);
        refused.RemoveAll(otherFamily.Contains);
        var rules = new List<SeccompSyscallRule> { Rule(allowed.Distinct(), Allow) };
        if (admin)
        {
            rules.Add(Rule(["clone", "clone3"], Allow));
        }
        else
        {
            // New namespaces would hand the container a fresh CAP_SYS_ADMIN (and nf_tables, mounts...) in them.
            rules.Add(Rule(["clone"], Allow, Arg(0, "SCMP_CMP_MASKED_EQ", NamespaceFlags, 0)));
            // clone3 passes its flags in memory, out of the filter's sight: ENOSYS makes glibc fall back to clone.
            rules.Add(Rule(["clone3"], "SCMP_ACT_ERRNO", errnoRet: SeccompConstants.ENOSYS));
        }

        // personality: only the harmless values (no READ_IMPLIES_EXEC, no ADDR_NO_RANDOMIZE).
        rules.AddRange(Personalities.Select(p => Rule(["personality"], Allow, Arg(0, "SCMP_CMP_EQ", p))));

        // socket: every family but AF_VSOCK. The kernel reads the family as a 32-bit int, so a rule "!= 40" could be
        // walked around with 0x1_00000028; these ranges compare all 64 bits and leave only families 0-39 and 41-63
        // (the kernel knows 46) with the upper half zero.
        rules.Add(Rule(["socket"], Allow, Arg(0, "SCMP_CMP_LT", AfVsock)));
        foreach (var (mask, value) in new (ulong, ulong)[] { (~0UL, 41), (~1UL, 42), (~3UL, 44), (~15UL, 48) })
        {
            rules.Add(Rule(["socket"], Allow, Arg(0, "SCMP_CMP_MASKED_EQ", mask, value)));
        }

        rules.Add(Rule(refused.Distinct(), "SCMP_ACT_ERRNO", errnoRet: SeccompConstants.EPERM));
        return new SeccompProfile
        {
            DefaultAction = "SCMP_ACT_ERRNO",
            DefaultErrnoRet = SeccompConstants.EPERM,
            Architectures = x86
                ? [SeccompCompiler.ArchName(SeccompArch.X86_64), SeccompCompiler.ArchName(SeccompArch.X86)]
                : [SeccompCompiler.ArchName(SeccompArch.Aarch64), SeccompCompiler.ArchName(SeccompArch.Arm)],
            Syscalls = rules,
        };
    }

    /// <summary><see cref="For(IReadOnlyCollection{string}, SeccompArch)"/> on this host's architecture.</summary>
    public static SeccompProfile For(IReadOnlyCollection<string> grantedCapabilities) =>
        For(grantedCapabilities, SeccompCompiler.NativeArch() ?? SeccompArch.X86_64);

    /// <summary>The profile for the default capability set (<see cref="Capabilities.DefaultNames"/>) as OCI JSON. A
    /// container granted more (CAP_SYS_ADMIN, CAP_SYS_PTRACE...) needs <see cref="For(IReadOnlyCollection{string})"/>
    /// with its own set; with this one those calls stay refused.</summary>
    public static string Json => DefaultJson.Value;

    private static readonly Lazy<string> DefaultJson = new(() => For([.. Capabilities.DefaultNames]).ToJson());

    private const string Allow = "SCMP_ACT_ALLOW";

    private static string Normalise(string capability)
    {
        var upper = capability.Trim().ToUpperInvariant();
        return upper.StartsWith("CAP_", StringComparison.Ordinal) ? upper : "CAP_" + upper;
    }

    private static SeccompSyscallRule Rule(IEnumerable<string> names, string action, SeccompArg? arg = null, uint? errnoRet = null) => new()
    {
        Names = [.. names],
        Action = action,
        ErrnoRet = errnoRet,
        Args = arg is null ? [] : [arg],
    };

    private static SeccompArg Arg(uint index, string op, ulong value, ulong valueTwo = 0) =>
        new() { Index = index, Op = op, Value = value, ValueTwo = valueTwo };
}
