/*
 * syscall-probe: what a container's seccomp filter (and the kernel) answer, call by call and ABI by ABI.
 * Built by the kernel tests with `gcc -static`; runs inside the containers they make.
 *
 *   syscall-probe table            every probe through every entry point, one line each:
 *                                  "<entry> <probe> <result>"  entry: native | i386 | x32
 *                                  result: ok | E<NAME> | errno<N> | SIGSYS | signal<N>
 *   syscall-probe inspect <comm>   find the process named <comm> and try to open its /proc files
 *   syscall-probe dumpable         print "dumpable=<PR_GET_DUMPABLE>"
 *
 * Entry points, all from this one 64-bit program:
 *   native  the syscall instruction with x86_64 numbers;
 *   i386    int $0x80 with i386 numbers (the kernel treats the call as a 32-bit one: AUDIT_ARCH_I386, 32-bit args);
 *   x32     the syscall instruction with x32 numbers (bit 30 set); with x32 off the kernel answers ENOSYS.
 * Each call runs in a fresh child (fork), so a call that kills (SIGSYS) or succeeds with side effects only touches
 * that child. Arguments are chosen so that a call the filter lets through fails in the kernel with an error other
 * than EPERM wherever the caller's capabilities allow it (or succeeds harmlessly): an EPERM then comes from the filter.
 * Pointers live below 4 GiB, so i386 calls see them too.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define X32 0x40000000L
#define NONE (-1L)

/* Low memory (MAP_32BIT) the calls point into. */
static char *lo;
#define LO_WORD (lo + 0x100)        /* a futex word, 0 */
#define LO_SLASH (lo + 0x200)       /* "/" */
#define LO_MISSING (lo + 0x300)     /* a path that does not exist */
#define LO_EMPTY (lo + 0x400)       /* "" */
#define LO_NAME (lo + 0x500)        /* "probe" */
#define LO_SOCK_INET (lo + 0x600)   /* socketcall args {AF_INET, SOCK_DGRAM, 0} as 32-bit words */
#define LO_SOCK_VSOCK (lo + 0x620)  /* socketcall args {AF_VSOCK, SOCK_STREAM, 0} */
#define LO_HOW (lo + 0x700)         /* struct open_how, all zero: O_RDONLY */
#define LO_CTX (lo + 0x800)         /* aio_context_t, 0 */
#define LO_BUF (lo + 0x1000)        /* 4 KiB scratch */

struct probe {
    const char *name;
    long nr64, nr32, nrx32;         /* NONE: not a call of that ABI (or not probed there) */
    long a[6];
};

/* Filled in main (the pointers are only known at run time). */
static struct probe probes[96];
static int nprobes;

static void add(const char *name, long nr64, long nr32, long nrx32, long a0, long a1, long a2, long a3, long a4, long a5)
{
    struct probe *p = &probes[nprobes++];
    p->name = name;
    p->nr64 = nr64;
    p->nr32 = nr32;
    p->nrx32 = nrx32 == NONE ? NONE : (nrx32 | X32);
    p->a[0] = a0; p->a[1] = a1; p->a[2] = a2; p->a[3] = a3; p->a[4] = a4; p->a[5] = a5;
}
#define P(name, n64, n32, nx32, ...) add(name, n64, n32, nx32, __VA_ARGS__)
#define L(ptr) ((long)(ptr))

static void build_table(void)
{
    /* ---- refused by RuntimeDefault for a default container ---- */
    P("unshare-newuser", 272, 310, 272, 0x10000000, 0, 0, 0, 0, 0);
    P("clone-newuser-newnet", 56, 120, 56, 0x50000000 | SIGCHLD, 0, 0, 0, 0, 0);
    P("keyctl", 250, 288, 250, 9999, 0, 0, 0, 0, 0);
    P("add_key", 248, 286, 248, 0, 0, 0, 0, 0, 0);
    P("request_key", 249, 287, 249, 0, 0, 0, 0, 0, 0);
    P("personality-read-implies-exec", 135, 136, 135, 0x0400000, 0, 0, 0, 0, 0);
    P("mount", 165, 21, 165, 0, 0, 0, 0, 0, 0);
    P("umount2", 166, 52, 166, 0, 0, 0, 0, 0, 0);
    P("pivot_root", 155, 217, 155, 0, 0, 0, 0, 0, 0);
    P("bpf", 321, 357, 321, 9999, 0, 0, 0, 0, 0);
    P("perf_event_open", 298, 336, 298, 0, 0, -1, -1, 0, 0);
    P("ptrace", 101, 26, 521, 9999, 1, 0, 0, 0, 0);
    P("kexec_load", 246, 283, 528, 0, 17, 0, 0x4000, 0, 0);
    P("kexec_file_load", 320, NONE, 320, -1, -1, 0, 0, 0x8000, 0);
    P("init_module", 175, 128, 175, 0, 0, 0, 0, 0, 0);
    P("finit_module", 313, 350, 313, -1, 0, 0, 0, 0, 0);
    P("delete_module", 176, 129, 176, 0, 0, 0, 0, 0, 0);
    P("socket-af_vsock", 41, 359, 41, 40, 1, 0, 0, 0, 0);
    P("setns", 308, 346, 308, -1, 0, 0, 0, 0, 0);
    P("reboot", 169, 88, 169, 0, 0, 0, 0, 0, 0);
    P("swapon", 167, 87, 167, 0, 0x80000000L, 0, 0, 0, 0);
    P("acct", 163, 51, 163, L(LO_EMPTY), 0, 0, 0, 0, 0);
    P("settimeofday", 164, 79, 164, 0, 0, 0, 0, 0, 0);
    P("clock_settime", 227, 264, 227, 0, 0, 0, 0, 0, 0);
    P("iopl", 172, 110, 172, 4, 0, 0, 0, 0, 0);
    P("ioperm", 173, 101, 173, 0x10000, 1, 1, 0, 0, 0);
    P("syslog", 103, 103, 103, 9999, 0, 0, 0, 0, 0);
    P("userfaultfd", 323, 374, 323, 0x80000000L, 0, 0, 0, 0, 0);
    P("open_by_handle_at", 304, 342, 304, -1, 0, 0, 0, 0, 0);
    P("fsopen", 430, 430, 430, 0, 0, 0, 0, 0, 0);
    P("move_mount", 429, 429, 429, -1, 0, -1, 0, 0, 0);
    P("quotactl", 179, 131, 179, 0, 0, 0, 0, 0, 0);
    P("io_uring_setup", 425, 425, 425, 0, 0, 0, 0, 0, 0);
    P("modify_ldt", 154, 123, 154, 9999, 0, 0, 0, 0, 0);
    P("process_vm_readv", 310, 347, 539, 1, 0, 0, 0, 0, 1);
    P("kcmp", 312, 349, 312, 0, 0, 9999, 0, 0, 0);
    P("pidfd_getfd", 438, 438, 438, -1, 0, 0, 0, 0, 0);
    P("set_mempolicy", 238, 276, 238, 9999, 0, 0, 0, 0, 0);
    P("mbind", 237, 274, 237, 0, 0, 0, 0, 0, 0);
    P("move_pages", 279, 317, 533, 0, 0, 0, 0, 0, 0);
    P("vhangup", 153, 111, 153, 0, 0, 0, 0, 0, 0);
    P("sethostname", 170, 74, 170, 0, 9999, 0, 0, 0, 0);
    P("fanotify_init", 300, 338, 300, 0xffffffffL, 0, 0, 0, 0, 0);
    P("lsm_set_self_attr", 460, 460, 460, 0, 0, 0, 0, 0, 0);
    P("tuxcall", 184, NONE, 184, 0, 0, 0, 0, 0, 0);

    /* ---- ENOSYS by rule or by being newer than the profile ---- */
    P("clone3", 435, 435, 435, 0, 0, 0, 0, 0, 0);
    P("nr-470", 470, 470, 470, 0, 0, 0, 0, 0, 0);
    P("nr-1000", 1000, 1000, 1000, 0, 0, 0, 0, 0, 0);

    /* ---- allowed ---- */
    P("getpid", 39, 20, 39, 0, 0, 0, 0, 0, 0);
    P("getuid", 102, 24, 102, 0, 0, 0, 0, 0, 0);
    P("uname", 63, 122, 63, L(LO_BUF), 0, 0, 0, 0, 0);
    P("getcwd", 79, 183, 79, L(LO_BUF), 256, 0, 0, 0, 0);
    P("clock_gettime", 228, 265, 228, 0, L(LO_BUF), 0, 0, 0, 0);
    P("getrandom", 318, 355, 318, L(LO_BUF), 8, 0, 0, 0, 0);
    P("clone-fork", 56, 120, 56, SIGCHLD, 0, 0, 0, 0, 0);
    P("personality-query", 135, 136, 135, 0xffffffffL, 0, 0, 0, 0, 0);
    P("personality-linux32", 135, 136, 135, 0x0008, 0, 0, 0, 0, 0);
    P("socket-af_inet", 41, 359, 41, 2, 2, 0, 0, 0, 0);
    P("socket-af_unix", 41, 359, 41, 1, 1, 0, 0, 0, 0);
    P("socketcall-af_inet", NONE, 102, NONE, 1, L(LO_SOCK_INET), 0, 0, 0, 0);
    P("socketcall-af_vsock", NONE, 102, NONE, 1, L(LO_SOCK_VSOCK), 0, 0, 0, 0);
    P("ipc-semctl", NONE, 117, NONE, 3, 0x7fffffff, 0, 2, 0, 0);
    P("futex-wake", 202, 240, 202, L(LO_WORD), 1, 1, 0, 0, 0);
    P("epoll_create1", 291, 329, 291, 0, 0, 0, 0, 0, 0);
    P("eventfd2", 290, 328, 290, 0, 0, 0, 0, 0, 0);
    P("pipe2", 293, 331, 293, L(LO_BUF), 0, 0, 0, 0, 0);
    P("statx", 332, 383, 332, -100, L(LO_SLASH), 0, 0x7ff, L(LO_BUF), 0);
    P("pidfd_open", 434, 434, 434, 1, 0, 0, 0, 0, 0);
    P("close_range", 436, 436, 436, 1000, 1001, 0, 0, 0, 0);
    P("memfd_create", 319, 356, 319, L(LO_NAME), 0, 0, 0, 0, 0);
    P("openat2", 437, 437, 437, -100, L(LO_SLASH), L(LO_HOW), 24, 0, 0);
    P("faccessat2", 439, 439, 439, -100, L(LO_SLASH), 0, 0, 0, 0);
    P("io_setup", 206, 245, 543, 1, L(LO_CTX), 0, 0, 0, 0);
    P("sched_getaffinity", 204, 242, 204, 0, 128, L(LO_BUF), 0, 0, 0);
    P("prctl-get-dumpable", 157, 172, 157, 3, 0, 0, 0, 0, 0);
    P("rseq", 334, 386, 334, 0, 0, 0, 0, 0, 0);
    P("chroot", 161, 61, 161, L(LO_MISSING), 0, 0, 0, 0, 0);
    P("memfd_secret", 447, 447, 447, 0, 0, 0, 0, 0, 0);
    P("process_mrelease", 448, 448, 448, -1, 0, 0, 0, 0, 0);
    P("landlock_create_ruleset", 444, 444, 444, 0, 0, 1, 0, 0, 0);
    P("cachestat", 451, 451, 451, -1, 0, 0, 0, 0, 0);
    P("fchmodat2", 452, 452, 452, -100, L(LO_MISSING), 0, 0, 0, 0);
    P("futex_wake", 454, 454, 454, L(LO_WORD), 1, 1, 2, 0, 0);
    P("statmount", 457, 457, 457, 0, 0, 0, 0, 0, 0);
    P("listmount", 458, 458, 458, 0, 0, 0, 0, 0, 0);
    P("mseal", 462, 462, 462, 0, 0, 0, 0, 0, 0);
}

/* ---- entry points ------------------------------------------------------------------------ */

static long sys64(long nr, const long *a)
{
    return syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* int $0x80: eax = nr, ebx, ecx, edx, esi, edi, ebp = args; the result comes back in eax. The sixth argument is
 * read from a global (rip-relative), since the stack moves when rbp is saved. */
static long arg6;
static long sys32(long nr, const long *a)
{
    long ret;
    arg6 = a[5];
    __asm__ volatile(
        "push %%rbp\n\t"
        "mov %7, %%rbp\n\t"
        "int $0x80\n\t"
        "pop %%rbp"
        : "=a"(ret)
        : "a"(nr), "b"(a[0]), "c"(a[1]), "d"(a[2]), "S"(a[3]), "D"(a[4]), "m"(arg6)
        : "memory", "cc", "r8", "r9", "r10", "r11");
    ret = (int)ret;
    if (ret < 0 && ret > -4096) { errno = (int)-ret; return -1; }
    return ret;
}

/* ---- running one call ---------------------------------------------------------------------- */

static const char *errno_name(int e)
{
    switch (e) {
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    case EBADF: return "EBADF";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EACCES: return "EACCES";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case ENOEXEC: return "ENOEXEC";
    case ENODEV: return "ENODEV";
    case EIO: return "EIO";
    case ENXIO: return "ENXIO";
    case ENOKEY: return "ENOKEY";
    case EEXIST: return "EEXIST";
    case ENOMEM: return "ENOMEM";
    case EAGAIN: return "EAGAIN";
    case E2BIG: return "E2BIG";
    case ENOTDIR: return "ENOTDIR";
    default: return NULL;
    }
}

/* Runs the call in a child; prints its result. */
static void run(const char *entry, const struct probe *p, long nr, int i386)
{
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) { printf("%s %s fork-failed\n", entry, p->name); return; }
    if (child == 0) {
        pid_t self = (pid_t)syscall(SYS_getpid);
        errno = 0;
        long r = i386 ? sys32(nr, p->a) : sys64(nr, p->a);
        int e = errno;
        /* A clone the filter let through made a second child here: it leaves quietly. */
        if ((pid_t)syscall(SYS_getpid) != self) _exit(0);
        _exit(r < 0 ? (e > 0 && e < 250 ? e : 250) : 0);
    }
    int status;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
    if (WIFSIGNALED(status)) {
        if (WTERMSIG(status) == SIGSYS) printf("%s %s SIGSYS\n", entry, p->name);
        else printf("%s %s signal%d\n", entry, p->name, WTERMSIG(status));
    } else if (WEXITSTATUS(status) == 0) {
        printf("%s %s ok\n", entry, p->name);
    } else {
        const char *name = errno_name(WEXITSTATUS(status));
        if (name) printf("%s %s %s\n", entry, p->name, name);
        else printf("%s %s errno%d\n", entry, p->name, WEXITSTATUS(status));
    }
    /* Reap the second child of a clone that was let through. */
    while (waitpid(-1, &status, WNOHANG) > 0) {}
}

static int table(void)
{
    lo = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (lo == MAP_FAILED) { perror("mmap MAP_32BIT"); return 2; }
    strcpy(LO_SLASH, "/");
    strcpy(LO_MISSING, "/nacelle-probe-missing");
    strcpy(LO_NAME, "probe");
    unsigned int inet[3] = { 2, 2, 0 }, vsock[3] = { 40, 1, 0 };
    memcpy(LO_SOCK_INET, inet, sizeof inet);
    memcpy(LO_SOCK_VSOCK, vsock, sizeof vsock);
    build_table();
    for (int i = 0; i < nprobes; i++) {
        const struct probe *p = &probes[i];
        if (p->nr64 != NONE) run("native", p, p->nr64, 0);
        if (p->nr32 != NONE) run("i386", p, p->nr32, 1);
        if (p->nrx32 != NONE) run("x32", p, p->nrx32, 0);
    }
    return 0;
}

/* ---- /proc of another process ---------------------------------------------------------- */

static void try_open(const char *what, const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd >= 0) { printf("%s=open\n", what); close(fd); return; }
    const char *name = errno_name(errno);
    if (name) printf("%s=%s\n", what, name);
    else printf("%s=errno%d\n", what, errno);
}

static int inspect(const char *comm)
{
    char path[64], buf[64];
    pid_t self = getpid(), found = 0;
    /* Wait (a bounded while) for the process to appear: it is being created as this runs. */
    for (int tries = 0; tries < 600 && !found; tries++) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            pid_t pid = (pid_t)atoi(e->d_name);
            if (pid <= 0 || pid == self) continue;
            snprintf(path, sizeof path, "/proc/%d/comm", pid);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) continue;
            ssize_t n = read(fd, buf, sizeof buf - 1);
            close(fd);
            if (n <= 0) continue;
            buf[n] = 0;
            if (buf[n - 1] == '\n') buf[n - 1] = 0;
            if (strcmp(buf, comm) == 0) { found = pid; break; }
        }
        if (d) closedir(d);
        if (!found) { struct timespec t = { 0, 50 * 1000 * 1000 }; nanosleep(&t, NULL); }
    }
    if (!found) { printf("found=none\n"); return 1; }
    printf("found=%d\n", found);
    snprintf(path, sizeof path, "/proc/%d/exe", found);
    try_open("exe", path, O_RDONLY);
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    const char *rl = n >= 0 ? "open" : errno_name(errno);
    printf("exe-link=%s\n", rl ? rl : "other");
    /* The fd directory lists numbers to its owner; what the descriptors are (links) and opening them needs access. */
    snprintf(path, sizeof path, "/proc/%d/fd/3", found);
    try_open("fd-3", path, O_RDONLY);
    n = readlink(path, buf, sizeof buf - 1);
    rl = n >= 0 ? "open" : errno_name(errno);
    printf("fd-3-link=%s\n", rl ? rl : "other");
    snprintf(path, sizeof path, "/proc/%d/environ", found);
    try_open("environ", path, O_RDONLY);
    snprintf(path, sizeof path, "/proc/%d/mem", found);
    try_open("mem", path, O_RDONLY);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 2 && strcmp(argv[1], "table") == 0) return table();
    if (argc >= 3 && strcmp(argv[1], "inspect") == 0) return inspect(argv[2]);
    if (argc >= 2 && strcmp(argv[1], "dumpable") == 0) {
        printf("dumpable=%d\n", prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
        return 0;
    }
    fprintf(stderr, "usage: syscall-probe table | inspect <comm> | dumpable\n");
    return 2;
}
