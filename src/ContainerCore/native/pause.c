/*
 * nacelle-pause: pause-init, the process that holds a pod's namespaces.
 *
 * It is born (through nacelle-spawn) in the pod's new net, ipc and uts namespaces, and in a new pid
 * namespace when the pod shares one; then it is PID 1 there and must reap the zombies every orphaned
 * process of the pod leaves behind. Written in C because it runs in every pod (its memory is paid per
 * pod) and because reaping any child (waitpid(-1)) is not something a .NET process may do.
 *
 * It does nothing else: waits for a signal, reaps, and exits 0 on SIGTERM or SIGINT.
 *
 * Freestanding: no C library, four system calls made directly, its own entry point. A static glibc
 * costs each pod ~700 kB of resident pages (its start-up touches most of the 760 kB binary) and 44 kB
 * of private memory (TLS, ifunc relocations, the heap); this is one page of code and the stack: 12 kB
 * resident, 8 kB private (docs/architecture.md, "Spawning a container process"). Built with -nostdlib
 * -ffreestanding -fno-stack-protector (no TLS for a canary), for x86_64 and aarch64, from the kernel's
 * headers only (asm/: the system call numbers and signal constants of the target).
 *
 * No signal handler: SIGTERM, SIGINT and SIGCHLD are blocked and taken with rt_sigtimedwait. A blocked
 * signal is queued even for a pid namespace's init (the kernel drops only unblocked signals with the
 * default action there), and one that comes while the zombies are being reaped stays pending for the
 * next wait, so none is lost between a check and the wait.
 */
#include <asm/unistd.h>
#include <asm/signal.h>

#if defined(__x86_64__)
/* syscall: number in rax, arguments in rdi, rsi, rdx, r10; rcx and r11 are clobbered. */
static long sys4(long n, long a, long b, long c, long d)
{
    register long r10 __asm__("r10") = d;
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
    return ret;
}

/* The entry point: the kernel leaves argc at the stack pointer, 16-byte aligned; main is called as
 * a C function expects (aligned before the call), with a cleared frame pointer, and never returns. */
__asm__(".text\n"
        ".global _start\n"
        "_start:\n"
        "  xor %ebp, %ebp\n"
        "  and $-16, %rsp\n"
        "  call pause_main\n"
        "  hlt\n");
#elif defined(__aarch64__)
/* svc #0: number in x8, arguments in x0-x3, the result in x0. */
static long sys4(long n, long a, long b, long c, long d)
{
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
    return x0;
}

/* The entry point: the stack pointer is 16-byte aligned at entry; cleared frame and link registers. */
__asm__(".text\n"
        ".global _start\n"
        "_start:\n"
        "  mov x29, #0\n"
        "  mov x30, #0\n"
        "  bl pause_main\n"
        "  brk #0\n");
#else
#error "nacelle-pause: no system call stub for this architecture"
#endif

/* The kernel's signal set is 64 bits on these architectures (the size rt_* calls are given). */
#define SIGSET_BYTES 8
#define BIT(sig) (1UL << ((sig) - 1))
#define WNOHANG_FLAG 1

__attribute__((noreturn, used)) void pause_main(void);

void pause_main(void)
{
    /* 1. Block the three signals this process acts on, so that each waits, queued, to be taken. */
    unsigned long waited = BIT(SIGTERM) | BIT(SIGINT) | BIT(SIGCHLD);
    sys4(__NR_rt_sigprocmask, SIG_BLOCK, (long)&waited, 0, SIGSET_BYTES);

    for (;;) {
        /* 2. Sleep until one is pending (an EINTR, from a stop and continue, just comes round again). */
        unsigned long info[16]; /* siginfo_t: 128 bytes, not read */
        long sig = sys4(__NR_rt_sigtimedwait, (long)&waited, (long)info, 0, SIGSET_BYTES);

        /* 3. SIGTERM or SIGINT: the pod is being stopped; exit 0. */
        if (sig == SIGTERM || sig == SIGINT) {
            sys4(__NR_exit_group, 0, 0, 0, 0);
        }

        /* 4. Otherwise reap every zombie there is, never blocking: several exits may have made one SIGCHLD. */
        while (sys4(__NR_wait4, -1, 0, WNOHANG_FLAG, 0) > 0) {
        }
    }
}
