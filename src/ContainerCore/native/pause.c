/*
 * nacelle-pause: pause-init, the process that holds a pod's namespaces.
 *
 * It is born (through nacelle-spawn) in the pod's new net, ipc and uts namespaces, and in a new pid
 * namespace when the pod shares one; then it is PID 1 there and must reap the zombies every orphaned
 * process of the pod leaves behind. Written in C because it runs in every pod (its memory is paid per
 * pod) and because reaping any child (waitpid(-1)) is not something a .NET process may do.
 *
 * It does nothing else: sleeps until a signal, reaps, and exits 0 on SIGTERM or SIGINT.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_stop(int sig) { (void)sig; stop = 1; }
static void on_child(int sig) { (void)sig; }

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_child;
    sigaction(SIGCHLD, &sa, NULL);

    while (!stop) {
        pause();
        /* Reap every zombie there is; never block. */
        while (waitpid(-1, NULL, WNOHANG) > 0) {}
    }
    return 0;
}
