/*
 * nacelle-spawn: the only code between clone() and execve() of a container process.
 *
 * .NET cannot run managed code in a forked child, so C# (ContainerCore/Spawn) computes everything a
 * container needs -- namespaces, mounts, devices, ids, capability masks, seccomp BPF, argv, env --
 * and hands it over as one flat message (spawn_protocol.h). This program only executes that plan,
 * in a fixed order, and reports {stage, errno, message} when a step fails:
 *
 *   helper process (P)                      container process (C)
 *   ------------------                      ---------------------
 *   reset signals, non-dumpable, parse message
 *   join cgroups (before any clone): v1 by
 *     thread, the cgroup2 one at the clone
 *   oom_score_adj
 *   open the namespaces given by path
 *   detached copies of the mount sources
 *     that must be taken here (idmapped,
 *     shared, or out of a user namespace's reach)
 *   join the namespaces (user first), and
 *     become root of a joined user namespace
 *   clone(new namespaces | CLONE_PARENT
 *     [| CLONE_INTO_CGROUP])              -> waits for P
 *   report pid, write uid/gid maps,
 *   release C, exit                         mounts, devices, symlinks (all inside the rootfs; detached
 *                                             copies moved into place)
 *                                           pivot_root
 *                                           hostname, domainname, sysctls
 *                                           masked and read-only paths, read-only root
 *                                           console (a pty from the container's /dev/ptmx)
 *                                           rlimits
 *                                           user (bounding set, groups, gid, uid)
 *                                           no_new_privs
 *                                           capabilities, non-dumpable again
 *                                           seccomp (installed last)
 *                                           cwd, executable lookup, close fds
 *                                           report ready, wait for the start byte
 *                                           controlling terminal (with a console)
 *                                           execve
 *
 * CLONE_PARENT makes C a child of the C# process that started P, so that process reaps it through a
 * pidfd. Each stage renames the process (comm and argv) so `ps` shows where a spawn hangs.
 *
 * A message with NSP_REC_CONNECT runs the connect mode instead (connect_mode): join a network namespace,
 * connect to a port on loopback, send the socket back, exit; nothing is cloned.
 *
 * Rules for this file: no malloc, no stdio, no threads; every buffer is static or on the stack; the
 * message is read through a private mapping of the memfd on fd 4.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "spawn_protocol.h"

#define CONTROL_FD 3
#define MESSAGE_FD 4
/* argv/env capacity: SpecValidator.MaxExecStrings on the C# side refuses more; the arrays are bss, so pages
 * are only touched for what a process really passes. Past them the helper fails with E2BIG, never truncates. */
#define MAX_ARGS 131072
#define MAX_ENV 131072
#define MAX_JOIN 8
#define MAX_GROUPS 256
#define PATH_BUF 4096

#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
struct mount_attr { uint64_t attr_set, attr_clr, propagation, userns_fd; };
#endif
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOVE_MOUNT_T_EMPTY_PATH
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif
#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif
#ifndef MOUNT_ATTR_NOSUID
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV 0x00000004
#define MOUNT_ATTR_NOEXEC 0x00000008
#endif

/* ---- the message ------------------------------------------------------------------------ */

static const unsigned char *msg;   /* the mapped message */
static uint32_t msg_len;

struct record { uint16_t type; uint32_t len; const unsigned char *data; };

static uint32_t u32_at(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t u64_at(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* Steps *offset to the next record; 0 at the end. The message was validated by validate_message. */
static int next_record(uint32_t *offset, struct record *r)
{
    if (*offset + NSP_RECORD_HEADER_SIZE > msg_len) return 0;
    const unsigned char *p = msg + *offset;
    r->type = (uint16_t)(p[0] | (p[1] << 8));
    r->len = u32_at(p + 4);
    r->data = p + NSP_RECORD_HEADER_SIZE;
    *offset += NSP_RECORD_HEADER_SIZE + ((r->len + 7u) & ~7u);
    return 1;
}

/* The n-th NUL-terminated string of a payload starting at byte `skip`; NULL when absent. */
static const char *string_at(const struct record *r, uint32_t skip, int n)
{
    uint32_t i = skip;
    for (int k = 0; k < n; k++) {
        while (i < r->len && r->data[i] != 0) i++;
        i++;
    }
    return i < r->len ? (const char *)r->data + i : NULL;
}

/* ---- reports and stage names ------------------------------------------------------------ */

static char *title;       /* argv[0]'s memory, as long as all of argv: what ps shows */
static size_t title_len;
static int current_stage;

static const char *stage_name(int stage)
{
    switch (stage) {
    case NSP_STAGE_PARSE: return "parse";
    case NSP_STAGE_CGROUP: return "cgroup";
    case NSP_STAGE_OOM: return "oom-score";
    case NSP_STAGE_JOIN: return "join-ns";
    case NSP_STAGE_CLONE: return "clone";
    case NSP_STAGE_IDMAP: return "id-maps";
    case NSP_STAGE_MOUNTS: return "mounts";
    case NSP_STAGE_DEVICES: return "devices";
    case NSP_STAGE_PIVOT: return "pivot-root";
    case NSP_STAGE_MASK: return "mask-paths";
    case NSP_STAGE_HOSTNAME: return "hostname";
    case NSP_STAGE_SYSCTL: return "sysctl";
    case NSP_STAGE_RLIMITS: return "rlimits";
    case NSP_STAGE_USER: return "user";
    case NSP_STAGE_NO_NEW_PRIVS: return "no-new-privs";
    case NSP_STAGE_CAPS: return "caps";
    case NSP_STAGE_SECCOMP: return "seccomp";
    case NSP_STAGE_LSM: return "lsm";
    case NSP_STAGE_CWD: return "cwd";
    case NSP_STAGE_LOOKUP: return "lookup";
    case NSP_STAGE_CLOSE_FDS: return "close-fds";
    case NSP_STAGE_WAIT_START: return "wait-start";
    case NSP_STAGE_EXEC: return "exec";
    case NSP_STAGE_CONSOLE: return "console";
    case NSP_STAGE_PREPARE_MOUNTS: return "copy-mounts";
    case NSP_STAGE_CONNECT: return "connect";
    default: return "?";
    }
}

/* A tiny append-only string builder (no stdio). */
struct text { char *buf; size_t cap, len; };
static void put(struct text *t, const char *s)
{
    while (s && *s && t->len + 1 < t->cap) t->buf[t->len++] = *s++;
    t->buf[t->len] = 0;
}
static void put_int(struct text *t, long v)
{
    char digits[24];
    int n = 0;
    unsigned long u = v < 0 ? (unsigned long)-v : (unsigned long)v;
    do { digits[n++] = (char)('0' + u % 10); u /= 10; } while (u);
    if (v < 0) put(t, "-");
    while (n) { char c[2] = { digits[--n], 0 }; put(t, c); }
}

/* Names the stage in comm ("nsp:<stage>", at most 15 chars) and in argv ("nacelle-spawn: <stage>"). */
static void enter(int stage)
{
    current_stage = stage;
    char comm[16];
    struct text c = { comm, sizeof comm, 0 };
    put(&c, "nsp:");
    put(&c, stage_name(stage));
    prctl(PR_SET_NAME, comm, 0, 0, 0);
    if (title) {
        struct text t = { title, title_len, 0 };
        memset(title, 0, title_len);
        put(&t, "nacelle-spawn: ");
        put(&t, stage_name(stage));
    }
}

/* One report datagram; with fd >= 0 that descriptor travels along as SCM_RIGHTS (the receiver gets its own copy). */
static void send_report_fd(uint32_t kind, int err, int pid, const char *message, int fd)
{
    unsigned char r[NSP_REPORT_SIZE];
    memset(r, 0, sizeof r);
    uint32_t magic = NSP_MAGIC;
    int32_t stage = current_stage;
    memcpy(r, &magic, 4);
    memcpy(r + 4, &kind, 4);
    memcpy(r + 8, &stage, 4);
    memcpy(r + 12, &err, 4);
    memcpy(r + 16, &pid, 4);
    if (message) {
        size_t n = strlen(message);
        if (n >= NSP_REPORT_MESSAGE_SIZE) n = NSP_REPORT_MESSAGE_SIZE - 1;
        memcpy(r + 20, message, n);
    }
    struct iovec iov = { r, sizeof r };
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    if (fd >= 0) {
        memset(&control, 0, sizeof control);
        mh.msg_control = control.buf;
        mh.msg_controllen = sizeof control.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    /* MSG_NOSIGNAL: SIGPIPE is back to its default, and a vanished reader must not kill us silently. */
    while (sendmsg(CONTROL_FD, &mh, MSG_NOSIGNAL) < 0 && errno == EINTR) {}
}

static void send_report(uint32_t kind, int err, int pid, const char *message)
{
    send_report_fd(kind, err, pid, message, -1);
}

/* Reports the failure of the current stage, with errno and what was being done, and exits. */
static _Noreturn void fail(int err, const char *what, const char *detail)
{
    char buf[NSP_REPORT_MESSAGE_SIZE];
    struct text t = { buf, sizeof buf, 0 };
    put(&t, what);
    if (detail) { put(&t, " "); put(&t, detail); }
    send_report(NSP_REPORT_ERROR, err, 0, buf);
    _exit(1);
}

/* ---- file system helpers, all resolving inside the container root ------------------------- */

static char fd_path_buf[64];
/* "/proc/self/fd/N": mounting onto the magic link targets exactly the inode fd N resolved to. */
static const char *fd_path(int fd)
{
    struct text t = { fd_path_buf, sizeof fd_path_buf, 0 };
    put(&t, "/proc/self/fd/");
    put_int(&t, fd);
    return fd_path_buf;
}

/* openat2(root, path, RESOLVE_IN_ROOT): symlinks and ".." can never leave the root (CVE-2021-30465). */
static int open_in_root(int rootfd, const char *path, int flags)
{
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)(flags | O_CLOEXEC);
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    int fd;
    do { fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how); } while (fd < 0 && errno == EINTR);
    return fd;
}

/*
 * Opens `path` (absolute, inside the root) as O_PATH, creating what is missing on the way: directories
 * for every parent, and the last component as a directory or an empty file. Each missing component is
 * created with mkdirat/openat on the already-resolved parent fd, so nothing is created outside the root.
 * A dangling symlink on the way is followed the same way, inside the root (at most 8 levels deep).
 */
static int open_or_create_in_root_depth(int rootfd, const char *path, int create, int depth)
{
    int fd = open_in_root(rootfd, path, O_PATH);
    if (fd >= 0 || errno != ENOENT) return fd;
    if (depth > 8) { errno = ELOOP; return -1; }

    char buf[PATH_BUF];
    size_t n = strlen(path);
    if (n >= sizeof buf) { errno = ENAMETOOLONG; return -1; }
    memcpy(buf, path, n + 1);

    int parent = dup(rootfd);
    if (parent < 0) return -1;
    size_t i = 0;
    while (i < n) {
        while (i < n && buf[i] == '/') i++;
        if (i >= n) break;
        size_t start = i;
        while (i < n && buf[i] != '/') i++;
        int last = (i >= n);
        char saved = buf[i];
        buf[i] = 0;
        int next = open_in_root(rootfd, buf, O_PATH);
        if (next < 0 && errno == ENOENT) {
            const char *name = buf + start;
            int made;
            if (last && create == NSP_CREATE_FILE) {
                int f = openat(parent, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
                made = f >= 0;
                if (made) close(f);
            } else {
                made = mkdirat(parent, name, 0755) == 0;
            }
            if (!made && errno == EEXIST) {
                /* A dangling symlink: create its target instead, resolving it inside the root. */
                char link[PATH_BUF], next_path[PATH_BUF];
                ssize_t len = readlinkat(parent, name, link, sizeof link - 1);
                if (len < 0) { close(parent); return -1; }
                link[len] = 0;
                struct text t = { next_path, sizeof next_path, 0 };
                if (link[0] != '/') { buf[start] = 0; put(&t, buf); put(&t, "/"); }
                put(&t, link);
                if (!last) { put(&t, "/"); put(&t, path + i + 1); }
                close(parent);
                if (t.len + 1 >= sizeof next_path) { errno = ENAMETOOLONG; return -1; }
                return open_or_create_in_root_depth(rootfd, next_path, create, depth + 1);
            }
            if (!made) { close(parent); return -1; }
            next = open_in_root(rootfd, buf, O_PATH);
        }
        buf[i] = saved;
        close(parent);
        if (next < 0) return -1;
        parent = next;
    }
    return parent;
}

static int open_or_create_in_root(int rootfd, const char *path, int create)
{
    return open_or_create_in_root_depth(rootfd, path, create, 0);
}

/* The parent directory of `path` (created if missing) and a pointer to its last component. */
static int open_parent_in_root(int rootfd, const char *path, const char **base)
{
    static char dir[PATH_BUF];
    const char *slash = strrchr(path, '/');
    if (!slash || slash[1] == 0) { errno = EINVAL; return -1; }
    size_t n = (size_t)(slash - path);
    if (n >= sizeof dir) { errno = ENAMETOOLONG; return -1; }
    memcpy(dir, path, n);
    dir[n] = 0;
    *base = slash + 1;
    return n == 0 ? dup(rootfd) : open_or_create_in_root(rootfd, dir, NSP_CREATE_DIR);
}

/* The MS_* flags a mount already has, so a read-only remount keeps nosuid/nodev/noexec (which may be locked). */
static unsigned long current_mount_flags(const char *path)
{
    struct statvfs s;
    if (statvfs(path, &s) < 0) return 0;
    unsigned long f = 0;
    if (s.f_flag & ST_NOSUID) f |= MS_NOSUID;
    if (s.f_flag & ST_NODEV) f |= MS_NODEV;
    if (s.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
    if (s.f_flag & ST_NOATIME) f |= MS_NOATIME;
    if (s.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
    if (s.f_flag & ST_RELATIME) f |= MS_RELATIME;
    return f;
}

static int remount_bind(const char *path, unsigned long flags)
{
    unsigned long f = MS_REMOUNT | MS_BIND | (flags & ~(unsigned long)(MS_BIND | MS_REC | MS_REMOUNT));
    if (mount(NULL, path, NULL, f, NULL) == 0) return 0;
    if (errno != EPERM) return -1;
    return mount(NULL, path, NULL, f | current_mount_flags(path), NULL);
}

/* ---- detached mount copies (taken by the helper P, moved into place by the container process C) ------ */

/* Detached copies, one per NSP_MOUNT_DETACHED record in message order, and the rootfs's (NSP_REC_ROOTFS_DETACHED).
 * open_tree fds are close-on-exec: C inherits them through clone and closes what is left before execve. */
#define MAX_DETACHED 1024
static int detached_fd[MAX_DETACHED];
static int detached_count;
static int detached_rootfs = -1;

static int set_mount_attr(int fd, int recursive, uint64_t set, uint64_t propagation, int userns_fd)
{
    struct mount_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.attr_set = set;
    attr.propagation = propagation;
    if (set & MOUNT_ATTR_IDMAP) attr.userns_fd = (uint64_t)userns_fd;
    return (int)syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr, sizeof attr);
}

/*
 * P, in the host's user and mount namespaces, before it joins any namespace. A copy made with OPEN_TREE_CLONE is a
 * mount of its own in an anonymous mount namespace: a copy of a shared mount joins that mount's peer group (so a
 * PROPAGATION_BIDIRECTIONAL volume still reaches the host once C has cut its own tree off with rslave), it can be
 * idmapped (which needs CAP_SYS_ADMIN over the file system's user namespace: the host's), and C attaches it without
 * walking the host path, which a process in a user namespace may not be allowed to.
 */
static void prepare_detached_mounts(int userns_fd)
{
    uint32_t off = NSP_HEADER_SIZE;
    struct record r;
    while (next_record(&off, &r)) {
        if (r.type == NSP_REC_ROOTFS_DETACHED) {
            const char *path = NULL;
            struct record each;
            uint32_t o = NSP_HEADER_SIZE;
            while (next_record(&o, &each)) if (each.type == NSP_REC_ROOTFS) path = (const char *)each.data;
            if (!path) fail(EINVAL, "a detached rootfs without a rootfs", NULL);
            detached_rootfs = (int)syscall(SYS_open_tree, AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
            if (detached_rootfs < 0) fail(errno, "cannot copy the rootfs", path);
            if (set_mount_attr(detached_rootfs, 1, 0, MS_PRIVATE, -1) < 0) fail(errno, "cannot make the rootfs copy private", path);
            /* C's cwd, translated into its new mount namespace by clone: the place the copy is attached to. */
            if (chdir(path) < 0) fail(errno, "cannot enter the rootfs", path);
            continue;
        }
        if (r.type != NSP_REC_MOUNT || !(u32_at(r.data + 16) & NSP_MOUNT_DETACHED)) continue;
        unsigned long flags = (unsigned long)u64_at(r.data);
        unsigned long propagation = (unsigned long)u64_at(r.data + 8);
        uint32_t kind = u32_at(r.data + 16);
        const char *source = string_at(&r, 24, 0);
        if (!source) fail(EINVAL, "malformed mount record", NULL);
        if (detached_count == MAX_DETACHED) fail(E2BIG, "too many detached mounts", NULL);
        int recursive = (flags & MS_REC) != 0;
        int fd = (int)syscall(SYS_open_tree, AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0));
        if (fd < 0) fail(errno, "cannot copy mount source", source);
        if (kind & NSP_MOUNT_IDMAP) {
            if (userns_fd < 0) fail(EINVAL, "an idmapped mount without a user namespace to join:", source);
            if (set_mount_attr(fd, (kind & NSP_MOUNT_IDMAP_RECURSIVE) != 0, MOUNT_ATTR_IDMAP, 0, userns_fd) < 0)
                fail(errno, "cannot idmap (does its file system support idmapped mounts?)", source);
        }
        /* Ties to the host as the record asks: a shared copy stays a peer; a slave one receives, never sends; any
         * other is cut off, submounts included, before C ever sees it. */
        int rc = 0;
        if (propagation & MS_SHARED) rc = 0;
        else if (propagation & MS_SLAVE) rc = set_mount_attr(fd, 1, 0, MS_SLAVE, -1);
        else {
            rc = set_mount_attr(fd, 1, 0, MS_PRIVATE, -1);
            if (rc == 0 && (propagation & MS_UNBINDABLE)) rc = set_mount_attr(fd, (propagation & MS_REC) != 0, 0, MS_UNBINDABLE, -1);
        }
        if (rc < 0) fail(errno, "cannot set the propagation of the copy of", source);
        detached_fd[detached_count++] = fd;
    }
}

/* One NSP_REC_MOUNT: resolve (or create) the target inside the root, mount onto its fd, then remount/propagate.
 * `ordinal` counts the NSP_MOUNT_DETACHED records before this one (its copy in detached_fd). */
static void do_mount(int rootfd, const struct record *r, int *ordinal)
{
    unsigned long flags = (unsigned long)u64_at(r->data);
    unsigned long propagation = (unsigned long)u64_at(r->data + 8);
    uint32_t kind_field = u32_at(r->data + 16), create = u32_at(r->data + 20);
    uint32_t kind = kind_field & NSP_MOUNT_KIND_MASK;
    const char *source = string_at(r, 24, 0), *target = string_at(r, 24, 1);
    const char *fstype = string_at(r, 24, 2), *data = string_at(r, 24, 3);
    if (!source || !target || !fstype || !data) fail(EINVAL, "malformed mount record", NULL);

    int fd = open_or_create_in_root(rootfd, target, (int)create);
    if (fd < 0) fail(errno, "cannot create mount point", target);

    int host_fallback = 0;
    if (kind_field & NSP_MOUNT_DETACHED) {
        if (*ordinal >= detached_count) fail(EINVAL, "no detached copy for mount", target);
        int copy = detached_fd[(*ordinal)++];
        if (syscall(SYS_move_mount, copy, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
            fail(errno, "cannot attach the copy of the mount source onto", target);
        close(copy);
    } else if (kind == NSP_MOUNT_FS) {
        if (mount(*source ? source : fstype, fd_path(fd), fstype, flags, *data ? data : NULL) < 0) {
            if (errno != EPERM || !(kind_field & NSP_MOUNT_HOST_FALLBACK)) fail(errno, "cannot mount", target);
            /* The kernel will not show this file system here (a user namespace that does not own the namespace it
             * belongs to): the host's own, read-only with every submount, as runc does for sysfs. */
            if (mount(target, fd_path(fd), NULL, MS_BIND | MS_REC, NULL) < 0) fail(errno, "cannot bind the host's", target);
            host_fallback = 1;
        }
    } else {
        if (mount(source, fd_path(fd), NULL, MS_BIND | (flags & MS_REC), NULL) < 0)
            fail(errno, "cannot bind-mount onto", target);
    }
    close(fd);

    /* The fd above names the covered inode; reopen to reach the new mount for the follow-up calls. */
    int need_remount = kind != NSP_MOUNT_FS && (flags & ~(unsigned long)(MS_BIND | MS_REC)) != 0;
    int recursive_readonly = kind == NSP_MOUNT_BIND_RECURSIVE_READONLY || host_fallback;
    if (!need_remount && !propagation && !recursive_readonly) return;
    fd = open_in_root(rootfd, target, O_PATH);
    if (fd < 0) fail(errno, "cannot reopen mount", target);
    if (need_remount && remount_bind(fd_path(fd), flags) < 0) fail(errno, "cannot remount", target);
    uint64_t readonly_attrs = MOUNT_ATTR_RDONLY | (host_fallback ? MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC : 0);
    if (recursive_readonly && set_mount_attr(fd, 1, readonly_attrs, 0, -1) < 0)
        fail(errno, "cannot make recursively read-only", target);
    if (propagation && mount(NULL, fd_path(fd), NULL, propagation, NULL) < 0)
        fail(errno, "cannot set propagation of", target);
    close(fd);
}

/* One NSP_REC_DEVICE: mknod inside the root; where mknod is not allowed (user namespace), bind the host node. */
static void make_device(int rootfd, const struct record *r)
{
    uint32_t type = u32_at(r->data), mode = u32_at(r->data + 4);
    uint32_t major_ = u32_at(r->data + 8), minor_ = u32_at(r->data + 12);
    uint32_t uid = u32_at(r->data + 16), gid = u32_at(r->data + 20);
    const char *path = string_at(r, 24, 0);
    if (!path) fail(EINVAL, "malformed device record", NULL);

    const char *base;
    int dir = open_parent_in_root(rootfd, path, &base);
    if (dir < 0) fail(errno, "cannot create the directory of device", path);
    unlinkat(dir, base, 0); /* a node the image shipped is replaced; a directory there is an error below */
    if (mknodat(dir, base, type | (mode & 07777), makedev(major_, minor_)) == 0) {
        if (fchownat(dir, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) fail(errno, "cannot chown device", path);
        close(dir);
        return;
    }
    if (errno != EPERM) fail(errno, "cannot mknod", path);
    int f = openat(dir, base, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (f < 0) fail(errno, "cannot create bind target for device", path);
    close(f);
    int target = open_in_root(rootfd, path, O_PATH);
    if (target < 0 || mount(path, fd_path(target), NULL, MS_BIND, NULL) < 0) fail(errno, "cannot bind device", path);
    close(target);
    close(dir);
}

static void make_symlink(int rootfd, const struct record *r)
{
    const char *target = string_at(r, 0, 0), *link = string_at(r, 0, 1);
    if (!target || !link) fail(EINVAL, "malformed symlink record", NULL);
    const char *base;
    int dir = open_parent_in_root(rootfd, link, &base);
    if (dir < 0) fail(errno, "cannot create the directory of link", link);
    if (symlinkat(target, dir, base) < 0 && errno != EEXIST) fail(errno, "cannot create link", link);
    close(dir);
}

/* ---- after pivot_root: masked and read-only paths ------------------------------------------ */

static void mask_path(const char *path)
{
    /* stat, not lstat: mount(2) follows a symlink at the target, so what gets masked is what the path names, and
     * its type decides how. (A volume mounted over /sys may hold a symlink where the kernel has a directory: the
     * type of the link itself sent a /dev/null bind onto a directory, ENOTDIR.) Nothing there: nothing to hide. */
    struct stat st;
    if (stat(path, &st) < 0) {
        if (errno == ENOENT) return;
        fail(errno, "cannot stat masked path", path);
    }
    int rc = S_ISDIR(st.st_mode)
        ? mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=0")
        : mount("/dev/null", path, NULL, MS_BIND, NULL); /* the container's own /dev/null */
    if (rc < 0) fail(errno, "cannot mask", path);
}

static void readonly_path(const char *path)
{
    if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0) {
        if (errno == ENOENT) return;
        fail(errno, "cannot bind read-only path", path);
    }
    /* Read-only on top of the flags the path's mount has: a read-only /proc/sys stays nosuid,nodev,noexec as /proc
     * is (a plain MS_RDONLY remount would clear them; runc keeps them too). */
    if (remount_bind(path, MS_RDONLY | current_mount_flags(path)) < 0) fail(errno, "cannot make read-only", path);
}

static void write_file(const char *path, const char *text, const char *what)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) fail(errno, what, path);
    size_t n = strlen(text);
    if (write(fd, text, n) != (ssize_t)n) fail(errno, what, path);
    close(fd);
}

/* Writes this process's pid into cgroup.procs of the cgroup2 directory open as dir_fd (through the descriptor: the
 * path may be out of this mount namespace's reach), closes dir_fd and returns -1: nothing left to clone into. The
 * kernel's global threadgroup lock makes this wait for an RCU grace period (see the cgroup stage in main). */
static int join_cgroup_by_pid(int dir_fd, const char *path)
{
    char pid_text[24];
    struct text pt = { pid_text, sizeof pid_text, 0 };
    put_int(&pt, getpid());
    int procs = openat(dir_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
    if (procs < 0 || write(procs, pid_text, pt.len) != (ssize_t)pt.len) fail(errno, "cannot join cgroup", path);
    close(procs);
    close(dir_fd);
    return -1;
}

/* ---- credentials ------------------------------------------------------------------------- */

static void set_capabilities(uint64_t effective, uint64_t permitted, uint64_t inheritable)
{
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    data[0].effective = (uint32_t)effective;
    data[1].effective = (uint32_t)(effective >> 32);
    data[0].permitted = (uint32_t)permitted;
    data[1].permitted = (uint32_t)(permitted >> 32);
    data[0].inheritable = (uint32_t)inheritable;
    data[1].inheritable = (uint32_t)(inheritable >> 32);
    if (syscall(SYS_capset, &header, data) < 0) fail(errno, "capset failed", NULL);
}

/* Writes one line into a /proc attribute of this thread (no stdio: open, write, close). */
static int write_attr(const char *path, const char *prefix, const char *value)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char line[4200];
    size_t p = strlen(prefix), v = strlen(value);
    if (p + v >= sizeof(line)) { close(fd); errno = ENAMETOOLONG; return -1; }
    memcpy(line, prefix, p);
    memcpy(line + p, value, v);
    ssize_t wrote;
    do { wrote = write(fd, line, p + v); } while (wrote < 0 && errno == EINTR);
    int saved = errno;
    close(fd);
    errno = saved;
    return wrote == (ssize_t)(p + v) ? 0 : -1;
}

/* The security module labels for the program to come: the kernel applies them at execve (C# checked the host
 * enforces the module; a failure here is a failure of the create, never a container without its confinement). */
static void apply_lsm_labels(const char *apparmor, const char *selinux)
{
    if (apparmor) {
        /* The module's own attribute directory (5.8 and later), else the shared one of older kernels. */
        if (write_attr("/proc/thread-self/attr/apparmor/exec", "exec ", apparmor) < 0
            && write_attr("/proc/thread-self/attr/exec", "exec ", apparmor) < 0)
            fail(errno, "cannot set the AppArmor profile for exec:", apparmor);
    }
    if (selinux && write_attr("/proc/thread-self/attr/exec", "", selinux) < 0)
        fail(errno, "cannot set the SELinux label for exec:", selinux);
}

static void install_seccomp(const struct record *r)
{
    uint32_t flags = u32_at(r->data);
    struct sock_fprog prog;
    prog.len = (unsigned short)((r->len - 8) / 8);
    prog.filter = (struct sock_filter *)(r->data + 8); /* records are 8-byte aligned in the mapping */
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog) < 0) fail(errno, "cannot install the seccomp filter", NULL);
}

/* ---- the executable ---------------------------------------------------------------------- */

static char exec_path[PATH_BUF];

/* Resolves argv[0] as execvp would, with the container's PATH, so a missing command fails at create. */
static void lookup_executable(const char *arg0, char *const envp[])
{
    if (strchr(arg0, '/')) {
        if (strlen(arg0) >= sizeof exec_path) fail(ENAMETOOLONG, "executable path too long", NULL);
        strcpy(exec_path, arg0);
        struct stat st;
        if (stat(exec_path, &st) < 0) fail(errno, "cannot find executable", arg0);
        if (!S_ISREG(st.st_mode) || access(exec_path, X_OK) < 0) fail(EACCES, "not an executable file:", arg0);
        return;
    }
    const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for (int i = 0; envp[i]; i++)
        if (strncmp(envp[i], "PATH=", 5) == 0) path = envp[i] + 5;
    int denied = 0;
    while (*path) {
        const char *end = strchr(path, ':');
        size_t n = end ? (size_t)(end - path) : strlen(path);
        struct text t = { exec_path, sizeof exec_path, 0 };
        if (n == 0) put(&t, ".");
        else { memcpy(exec_path, path, n < sizeof exec_path ? n : sizeof exec_path - 1); t.len = n; exec_path[n] = 0; }
        put(&t, "/");
        put(&t, arg0);
        struct stat st;
        if (stat(exec_path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (access(exec_path, X_OK) == 0) return;
            denied = 1;
        }
        path += n + (end ? 1 : 0);
        if (!end) break;
    }
    fail(denied ? EACCES : ENOENT, "executable file not found in $PATH:", arg0);
}

static void close_other_fds(void)
{
    /* Everything but stdio and the control socket (close-on-exec, so it goes with execve). */
    if (syscall(SYS_close_range, MESSAGE_FD, ~0U, 0) == 0) return;
    long max = sysconf(_SC_OPEN_MAX);
    for (long fd = MESSAGE_FD; fd < (max > 0 ? max : 65536); fd++) close((int)fd);
}

/* ---- the console (process.terminal) --------------------------------------------------------- */

/*
 * Allocates a pty from the container's own devpts instance (its /dev/ptmx, after pivot_root or inside the joined
 * mount namespace), so that inside the container the terminal is a /dev/pts/N it can see. The master goes back
 * to C# on the control socket; the slave replaces stdin, stdout and stderr. It becomes the controlling terminal
 * only just before execve (take_controlling_terminal).
 */
static void setup_console(const struct record *r)
{
    /* posix_openpt: a new master from the container's ptmx (no controlling-terminal side effect yet). */
    int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) fail(errno, "cannot open", "/dev/ptmx");

    /* unlockpt: the slave side can be opened only once the master unlocks it. */
    int unlock = 0;
    if (ioctl(master, TIOCSPTLCK, &unlock) < 0) fail(errno, "cannot unlock the pty", NULL);

    /* The slave, opened through its master (no path lookup, so it is certainly this pty's peer). Kernels before
     * 4.13 lack TIOCGPTPEER: ptsname (TIOCGPTN) and open /dev/pts/N instead. */
    int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
    if (slave < 0 && (errno == EINVAL || errno == ENOTTY)) {
        unsigned int n = 0;
        if (ioctl(master, TIOCGPTN, &n) < 0) fail(errno, "cannot get the pty number", NULL);
        char name[32];
        struct text t = { name, sizeof name, 0 };
        put(&t, "/dev/pts/");
        put_int(&t, (long)n);
        slave = open(name, O_RDWR | O_NOCTTY);
    }
    if (slave < 0) fail(errno, "cannot open the pty slave", NULL);

    /* The window size the spec asks for (consoleSize); 0 leaves the kernel's default. */
    uint32_t rows = r->len >= 8 ? u32_at(r->data) : 0, columns = r->len >= 8 ? u32_at(r->data + 4) : 0;
    if (rows && columns) {
        struct winsize size;
        memset(&size, 0, sizeof size);
        size.ws_row = (unsigned short)rows;
        size.ws_col = (unsigned short)columns;
        if (ioctl(slave, TIOCSWINSZ, &size) < 0) fail(errno, "cannot set the terminal size", NULL);
    }

    /* Hand the master to C# (it logs the output and may write input); our copy goes. */
    send_report_fd(NSP_REPORT_CONSOLE, 0, 0, NULL, master);
    close(master);

    /* The slave becomes stdin, stdout and stderr (dup2 clears close-on-exec on the copies). */
    for (int fd = 0; fd <= 2; fd++)
        if (dup2(slave, fd) < 0) fail(errno, "cannot make the pty the standard streams", NULL);
    if (slave > 2) close(slave);
}

/* Just before execve: the pty on fd 0 becomes the controlling terminal of a session the process leads. */
static void take_controlling_terminal(void)
{
    /* Only a session leader can acquire a controlling terminal: a new session unless the new-session record
     * already made one (a second setsid() would fail with EPERM). */
    if (getsid(0) != getpid() && setsid() < 0) fail(errno, "setsid failed", NULL);
    /* TIOCSCTTY with 0: take the terminal only if no other session has it (never steal). The terminal's
     * foreground process group becomes ours. */
    if (ioctl(0, TIOCSCTTY, 0) < 0) fail(errno, "cannot make the pty the controlling terminal", NULL);
}

/* ---- the container process ---------------------------------------------------------------- */

static char *argv_out[MAX_ARGS + 1];
static char *envp_out[MAX_ENV + 1];

static _Noreturn void container_process(int sync_fd)
{
    /* Wait until the helper has reported our pid and written the id maps. */
    char go;
    ssize_t got;
    do { got = read(sync_fd, &go, 1); } while (got < 0 && errno == EINTR);
    if (got != 1) _exit(1);
    close(sync_fd);
    /* The control socket must not survive execve: its closing tells C# the program is running. */
    if (fcntl(CONTROL_FD, F_SETFD, FD_CLOEXEC) < 0) fail(errno, "cannot mark the control socket close-on-exec", NULL);

    uint64_t clone_flags = 0;
    const struct record *rootfs = NULL, *caps = NULL, *seccomp = NULL, *user = NULL, *terminal = NULL;
    const char *cwd = "/";
    const char *apparmor = NULL, *selinux = NULL;
    int park = 0, no_new_privs = 0, root_readonly = 0, new_session = 0, has_umask = 0;
    uint64_t prop_before = MS_REC | MS_SLAVE, prop_after = 0;
    mode_t spec_umask = 022;
    int argc = 0, envc = 0;
    static struct record found[5];
    uint32_t off = NSP_HEADER_SIZE;
    struct record r;
    while (next_record(&off, &r)) {
        switch (r.type) {
        case NSP_REC_CLONE_FLAGS: clone_flags = u64_at(r.data); break;
        case NSP_REC_ROOTFS: found[0] = r; rootfs = &found[0]; break;
        case NSP_REC_CAPS: found[1] = r; caps = &found[1]; break;
        case NSP_REC_SECCOMP: found[2] = r; seccomp = &found[2]; break;
        case NSP_REC_USER: found[3] = r; user = &found[3]; break;
        case NSP_REC_TERMINAL: found[4] = r; terminal = &found[4]; break;
        case NSP_REC_ROOT_PROPAGATION: prop_before = u64_at(r.data); prop_after = u64_at(r.data + 8); break;
        case NSP_REC_CWD: cwd = (const char *)r.data; break;
        case NSP_REC_APPARMOR: apparmor = (const char *)r.data; break;
        case NSP_REC_SELINUX_LABEL: selinux = (const char *)r.data; break;
        case NSP_REC_PARK: park = 1; break;
        case NSP_REC_NO_NEW_PRIVS: no_new_privs = 1; break;
        case NSP_REC_ROOT_READONLY: root_readonly = 1; break;
        case NSP_REC_NEW_SESSION: new_session = 1; break;
        case NSP_REC_UMASK: spec_umask = (mode_t)u32_at(r.data); has_umask = 1; break;
        case NSP_REC_ARG:
            if (argc == MAX_ARGS) fail(E2BIG, "more argv strings than the helper passes", NULL);
            argv_out[argc++] = (char *)r.data;
            break;
        case NSP_REC_ENV:
            if (envc == MAX_ENV) fail(E2BIG, "more environment strings than the helper passes", NULL);
            envp_out[envc++] = (char *)r.data;
            break;
        default: break;
        }
    }
    argv_out[argc] = NULL;
    envp_out[envc] = NULL;
    (void)has_umask;

    if (new_session && setsid() < 0) fail(errno, "setsid failed", NULL);
    if (clone_flags & CLONE_NEWUSER) {
        enter(NSP_STAGE_IDMAP);
        /* The maps are written; become the namespace's root for the setup that follows. */
        if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) fail(errno, "cannot become root in the user namespace", NULL);
    }
    umask(0); /* device and mount-point modes are exactly what the message says */

    if (rootfs) {
        const char *root = (const char *)rootfs->data;
        enter(NSP_STAGE_MOUNTS);
        /* Keep the host's mount events out (rslave by default), then make the rootfs a mount point: a bind of the
         * host path onto itself, or the copy P took (attached where P left our cwd: the rootfs directory). */
        if (mount(NULL, "/", NULL, (unsigned long)prop_before, NULL) < 0) fail(errno, "cannot set / propagation", NULL);
        int rootfd;
        if (detached_rootfs >= 0) {
            if (syscall(SYS_move_mount, detached_rootfs, "", AT_FDCWD, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                fail(errno, "cannot attach the copy of the rootfs", root);
            rootfd = detached_rootfs;
        } else {
            if (mount(root, root, NULL, MS_BIND | MS_REC, NULL) < 0) fail(errno, "cannot bind the rootfs", root);
            rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (rootfd < 0) fail(errno, "cannot open the rootfs", root);
        }
        int ordinal = 0;
        off = NSP_HEADER_SIZE;
        while (next_record(&off, &r))
            if (r.type == NSP_REC_MOUNT) do_mount(rootfd, &r, &ordinal);

        enter(NSP_STAGE_DEVICES);
        off = NSP_HEADER_SIZE;
        while (next_record(&off, &r)) {
            if (r.type == NSP_REC_DEVICE) make_device(rootfd, &r);
            else if (r.type == NSP_REC_SYMLINK) make_symlink(rootfd, &r);
        }

        /* pivot_root(".", ".") stacks the old root on the new one; detaching it leaves only the rootfs. */
        enter(NSP_STAGE_PIVOT);
        if (fchdir(rootfd) < 0) fail(errno, "cannot enter the rootfs", root);
        if (syscall(SYS_pivot_root, ".", ".") < 0) fail(errno, "pivot_root failed", root);
        if (umount2(".", MNT_DETACH) < 0) fail(errno, "cannot detach the old root", NULL);
        if (chdir("/") < 0) fail(errno, "chdir / failed", NULL);
        close(rootfd);
        if (prop_after && mount(NULL, "/", NULL, (unsigned long)prop_after, NULL) < 0)
            fail(errno, "cannot set rootfs propagation", NULL);

    }

    enter(NSP_STAGE_HOSTNAME);
    off = NSP_HEADER_SIZE;
    while (next_record(&off, &r)) {
        const char *name = (const char *)r.data;
        if (r.type == NSP_REC_HOSTNAME && sethostname(name, strlen(name)) < 0) fail(errno, "sethostname failed", name);
        if (r.type == NSP_REC_DOMAINNAME && setdomainname(name, strlen(name)) < 0) fail(errno, "setdomainname failed", name);
    }

    enter(NSP_STAGE_SYSCTL);
    off = NSP_HEADER_SIZE;
    while (next_record(&off, &r)) {
        if (r.type != NSP_REC_SYSCTL) continue;
        static char path[PATH_BUF];
        struct text t = { path, sizeof path, 0 };
        put(&t, "/proc/sys/");
        put(&t, string_at(&r, 0, 0));
        write_file(path, string_at(&r, 0, 1), "cannot write sysctl");
    }

    /* After the sysctls (they write /proc/sys, which becomes read-only here), as runc orders it. */
    if (rootfs) {
        enter(NSP_STAGE_MASK);
        off = NSP_HEADER_SIZE;
        while (next_record(&off, &r)) {
            if (r.type == NSP_REC_MASKED_PATH) mask_path((const char *)r.data);
            else if (r.type == NSP_REC_READONLY_PATH) readonly_path((const char *)r.data);
        }
        if (root_readonly && remount_bind("/", MS_RDONLY) < 0) fail(errno, "cannot make the rootfs read-only", NULL);
    }

    /* Still root and the container's /dev is in place: the pty comes from its devpts. */
    if (terminal) { enter(NSP_STAGE_CONSOLE); setup_console(terminal); }

    enter(NSP_STAGE_RLIMITS);
    off = NSP_HEADER_SIZE;
    while (next_record(&off, &r)) {
        if (r.type != NSP_REC_RLIMIT) continue;
        struct rlimit limit = { (rlim_t)u64_at(r.data + 8), (rlim_t)u64_at(r.data + 16) };
        if (setrlimit((__rlimit_resource_t)u32_at(r.data), &limit) < 0) fail(errno, "setrlimit failed for resource", NULL);
    }

    /* AppArmor profile and SELinux label for execve, while still root in the container's /proc. */
    if (apparmor || selinux) { enter(NSP_STAGE_LSM); apply_lsm_labels(apparmor, selinux); }

    /* Without no_new_privs only CAP_SYS_ADMIN allows a filter: install it while we still have it. */
    int seccomp_early = seccomp && !no_new_privs;
    if (seccomp_early) { enter(NSP_STAGE_SECCOMP); install_seccomp(seccomp); }

    enter(NSP_STAGE_USER);
    if (caps) {
        /* Keep the permitted set across the uid change; drop what is not in the bounding set. */
        uint32_t last = u32_at(caps->data);
        uint64_t bounding = u64_at(caps->data + 8);
        if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) fail(errno, "PR_SET_KEEPCAPS failed", NULL);
        for (uint32_t cap = 0; cap <= last && cap < 64; cap++)
            if (!(bounding & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
                fail(errno, "cannot drop a capability from the bounding set", NULL);
    }
    if (user) {
        uid_t uid = u32_at(user->data);
        gid_t gid = u32_at(user->data + 4);
        uint32_t count = u32_at(user->data + 8);
        static gid_t groups[MAX_GROUPS];
        if (count > MAX_GROUPS) fail(E2BIG, "too many additional groups", NULL);
        for (uint32_t i = 0; i < count; i++) groups[i] = u32_at(user->data + 12 + 4 * i);
        if (setgroups(count, groups) < 0) fail(errno, "setgroups failed", NULL);
        if (setresgid(gid, gid, gid) < 0) fail(errno, "setresgid failed", NULL);
        if (setresuid(uid, uid, uid) < 0) fail(errno, "setresuid failed", NULL);
    }

    if (no_new_privs) {
        enter(NSP_STAGE_NO_NEW_PRIVS);
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) fail(errno, "PR_SET_NO_NEW_PRIVS failed", NULL);
    }

    if (caps) {
        enter(NSP_STAGE_CAPS);
        uint64_t effective = u64_at(caps->data + 16), inheritable = u64_at(caps->data + 24);
        uint64_t permitted = u64_at(caps->data + 32), ambient = u64_at(caps->data + 40);
        uint32_t last = u32_at(caps->data);
        set_capabilities(effective, permitted, inheritable);
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
            fail(errno, "cannot clear ambient capabilities", NULL);
        for (uint32_t cap = 0; cap <= last && cap < 64; cap++)
            if ((ambient & (1ULL << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
                fail(errno, "cannot raise an ambient capability", NULL);
        prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
    }

    /* A change of uid, gid or capabilities above resets dumpability to fs.suid_dumpable, which a host may have set
     * to 1 (dumpable): make it 0 again for the rest of the wait. With the filter already in place (no_new_privs off)
     * a profile may refuse prctl; fs.suid_dumpable then decides, as it does for a setuid program. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 && !seccomp_early) fail(errno, "cannot make the process non-dumpable", NULL);

    if (seccomp && !seccomp_early) { enter(NSP_STAGE_SECCOMP); install_seccomp(seccomp); }

    enter(NSP_STAGE_CWD);
    if (chdir(cwd) < 0) fail(errno, "cannot change to the working directory", cwd);

    enter(NSP_STAGE_LOOKUP);
    if (argc == 0) fail(EINVAL, "no command (args is empty)", NULL);
    lookup_executable(argv_out[0], envp_out);

    enter(NSP_STAGE_CLOSE_FDS);
    close_other_fds();
    umask(spec_umask);

    /* Created: parked here until the start byte arrives; EOF means the creator gave up. */
    if (park) enter(NSP_STAGE_WAIT_START);
    send_report(NSP_REPORT_READY, 0, 0, NULL);
    if (park) {
        char start = 0;
        do { got = read(CONTROL_FD, &start, 1); } while (got < 0 && errno == EINTR);
        if (got != 1 || start != NSP_START_BYTE) _exit(1);
    }

    enter(NSP_STAGE_EXEC);
    if (terminal) take_controlling_terminal();
    execve(exec_path, argv_out, envp_out);
    fail(errno, "execve failed:", exec_path);
}

/* ---- connect mode: a TCP connection made inside a network namespace -------------------------- */

/*
 * kubectl port-forward reaches localhost:<port> of a pod. The namespace a socket is made in is that of the thread
 * that calls socket(), and setns() moves only the calling thread: a thread of the daemon's pool that joined a pod's
 * namespace would carry it into whatever the pool runs next. So the daemon asks this helper instead: it joins the
 * namespace, connects, hands the connected socket back over the control socket and exits. A socket stays in the
 * namespace it was made in whoever holds it, so the daemon then copies bytes through it like any other.
 */

/* A TCP socket connected to `address`; -errno when it cannot be made or connected. No signal handler is installed
 * (reset_signals), so connect() is never interrupted and needs no EINTR retry. */
static int connect_to(int family, const void *address, socklen_t length)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if (connect(fd, (const struct sockaddr *)address, length) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

static _Noreturn void connect_mode(const struct record *connect)
{
    enter(NSP_STAGE_CONNECT);
    if (connect->len < 8) fail(EINVAL, "malformed connect record", NULL);
    uint32_t port = u32_at(connect->data);
    if (port == 0 || port > 65535) fail(EINVAL, "connect: the port is not between 1 and 65535", NULL);

    /* 1. Exactly one network namespace, by path (the pod's pinned one), and nothing else: this mode joins no
     *    cgroup, clones nothing and runs no program. */
    const char *netns = NULL;
    uint32_t off = NSP_HEADER_SIZE;
    struct record r;
    while (next_record(&off, &r)) {
        if (r.type == NSP_REC_CONNECT) continue;
        if (r.type != NSP_REC_JOIN_NS || r.len < 5 || u32_at(r.data) != CLONE_NEWNET || netns)
            fail(EINVAL, "connect mode takes one network namespace to join and nothing else", NULL);
        netns = string_at(&r, 4, 0);
    }
    if (!netns) fail(EINVAL, "connect mode needs a network namespace to join", NULL);

    /* 2. Join it. Only this single-threaded process moves; it exits below. */
    int nsfd = open(netns, O_RDONLY | O_CLOEXEC);
    if (nsfd < 0) fail(errno, "cannot open the network namespace", netns);
    if (setns(nsfd, CLONE_NEWNET) < 0) fail(errno, "cannot join the network namespace", netns);
    close(nsfd);

    /* 3. localhost as kubelet's port-forward dials it: 127.0.0.1 first, then [::1] for a server that listens on
     *    IPv6 only. Loopback answers at once (accepted or refused); a backlog that stays full is ended by the
     *    caller's timeout, which kills this process. */
    struct sockaddr_in v4;
    memset(&v4, 0, sizeof v4);
    v4.sin_family = AF_INET;
    v4.sin_port = htons((uint16_t)port);
    v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int family = AF_INET;
    int fd = connect_to(AF_INET, &v4, sizeof v4);
    int err4 = fd < 0 ? -fd : 0;
    int err6 = 0;
    if (fd < 0) {
        struct sockaddr_in6 v6;
        memset(&v6, 0, sizeof v6);
        v6.sin6_family = AF_INET6;
        v6.sin6_port = htons((uint16_t)port);
        v6.sin6_addr = in6addr_loopback;
        family = AF_INET6;
        fd = connect_to(AF_INET6, &v6, sizeof v6);
        err6 = fd < 0 ? -fd : 0;
    }
    if (fd < 0) {
        /* The IPv4 error is the one reported; the IPv6 one goes into the text. */
        char buf[96], number[24];
        struct text t = { buf, sizeof buf, 0 }, n = { number, sizeof number, 0 };
        put_int(&n, (long)port);
        put(&t, "cannot connect to 127.0.0.1:");
        put(&t, number);
        put(&t, " (nor to [::1]: errno ");
        put_int(&t, err6);
        put(&t, ")");
        fail(err4, buf, NULL);
    }

    /* 4. Hand the socket over (the receiver gets its own descriptor) and go. */
    send_report_fd(NSP_REPORT_SOCKET, 0, family, NULL, fd);
    _exit(0);
}

/* ---- the helper process -------------------------------------------------------------------- */

static int validate_message(void)
{
    if (msg_len < NSP_HEADER_SIZE || u32_at(msg) != NSP_MAGIC) return 0;
    if (u32_at(msg + 4) != NSP_VERSION || u32_at(msg + 8) != msg_len) return 0;
    uint32_t off = NSP_HEADER_SIZE;
    while (off < msg_len) {
        if (off + NSP_RECORD_HEADER_SIZE > msg_len) return 0;
        uint32_t len = u32_at(msg + off + 4);
        if (len > msg_len - off - NSP_RECORD_HEADER_SIZE) return 0;
        uint16_t type = (uint16_t)(msg[off] | (msg[off + 1] << 8));
        /* String-only records must end with their NUL inside the payload. */
        int is_string = type == NSP_REC_CGROUP_THREAD || type == NSP_REC_CGROUP_INTO || type == NSP_REC_UID_MAP || type == NSP_REC_GID_MAP ||
            type == NSP_REC_ROOTFS || type == NSP_REC_MASKED_PATH || type == NSP_REC_READONLY_PATH ||
            type == NSP_REC_HOSTNAME || type == NSP_REC_DOMAINNAME || type == NSP_REC_CWD ||
            type == NSP_REC_ARG || type == NSP_REC_ENV;
        /* Records that end in strings must end with a NUL inside the payload too. */
        int ends_in_string = type == NSP_REC_MOUNT || type == NSP_REC_DEVICE || type == NSP_REC_SYMLINK ||
            type == NSP_REC_SYSCTL || type == NSP_REC_JOIN_NS;
        if ((is_string || ends_in_string) && (len == 0 || msg[off + NSP_RECORD_HEADER_SIZE + len - 1] != 0)) return 0;
        if (type == NSP_REC_SECCOMP && (len < 8 || (len - 8) % 8 != 0)) return 0;
        off += NSP_RECORD_HEADER_SIZE + ((len + 7u) & ~7u);
    }
    return 1;
}

static void reset_signals(void)
{
    /* .NET blocks and ignores some signals (SIGPIPE); blocked masks and SIG_IGN survive execve. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP) sigaction(s, &dfl, NULL);
}

int main(int argc, char **argv)
{
    if (argc > 0) {
        title = argv[0];
        title_len = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) - argv[0]);
    }
    reset_signals();

    enter(NSP_STAGE_PARSE);
    /* Non-dumpable from here until execve, as runc makes its init. The container process cloned below inherits the
     * flag, and it sits in the container's pid namespace until its program runs (parked for a whole create): without
     * the flag, any process of the container with the same uid and capabilities could open its /proc/PID/exe (this
     * helper), its fds (the control socket), environ and mem. Opening those needs ptrace access, which a non-dumpable
     * process only grants to holders of CAP_SYS_PTRACE over the user namespace of its memory (the host's: no
     * container has it). execve sets the flag anew for the program, by the kernel's rules: dumpable unless it is
     * setuid-like or unreadable to its user. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) fail(errno, "cannot make the helper non-dumpable", NULL);
    struct stat st;
    if (fstat(MESSAGE_FD, &st) < 0) fail(errno, "no message on fd 4", NULL);
    msg_len = (uint32_t)st.st_size;
    msg = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, MESSAGE_FD, 0);
    if (msg == MAP_FAILED) fail(errno, "cannot map the message", NULL);
    if (!validate_message()) fail(EPROTO, "malformed message or unsupported version", NULL);

    /* Connect mode: a socket made in a network namespace, nothing cloned (see connect_mode). */
    uint32_t mode_off = NSP_HEADER_SIZE;
    struct record mode;
    while (next_record(&mode_off, &mode))
        if (mode.type == NSP_REC_CONNECT) connect_mode(&mode);

    /* Into the cgroup first: every process cloned from here on starts there, before any user code. */
    enter(NSP_STAGE_CGROUP);
    uint32_t off = NSP_HEADER_SIZE;
    struct record r;
    uint64_t clone_flags = 0;
    const char *uid_map = NULL, *gid_map = NULL, *cgroup_into = NULL;
    int joins_user_or_cgroup_ns = 0;
    while (next_record(&off, &r)) {
        if (r.type == NSP_REC_CLONE_FLAGS) clone_flags = u64_at(r.data);
        else if (r.type == NSP_REC_UID_MAP) uid_map = (const char *)r.data;
        else if (r.type == NSP_REC_GID_MAP) gid_map = (const char *)r.data;
        else if (r.type == NSP_REC_CGROUP_INTO) cgroup_into = (const char *)r.data;
        else if (r.type == NSP_REC_JOIN_NS && (u32_at(r.data) == CLONE_NEWUSER || u32_at(r.data) == CLONE_NEWCGROUP))
            joins_user_or_cgroup_ns = 1;
    }
    /* 1. cgroup v1: "0" in a hierarchy's tasks file moves the writing thread, which is this whole process (it has
     *    one). Writing a pid to cgroup.procs moves a thread group, for which the kernel takes its global
     *    threadgroup lock for writing, and that waits for an RCU grace period (7-15 ms measured on a 2-core VM, in
     *    every exec); moving only the current thread skips that lock. */
    off = NSP_HEADER_SIZE;
    while (next_record(&off, &r))
        if (r.type == NSP_REC_CGROUP_THREAD) write_file((const char *)r.data, "0", "cannot join cgroup");
    /* 2. cgroup2 has no such path (a thread moves only within its domain), but a child can be cloned straight into a
     *    cgroup (CLONE_INTO_CGROUP), which takes no such lock either: the container process starts there and this
     *    helper never joins it. Unless a user or cgroup namespace is joined or created: permission to clone into the
     *    cgroup would then be judged by the namespace's credentials, and a new cgroup namespace is rooted at this
     *    process's cgroup (it is made before the child is placed). Then the helper joins it here by its pid, as
     *    before, and the child inherits it. */
    int cgroup_into_fd = -1;
    if (cgroup_into) {
        /* Opened here, in the host's mount namespace, where the path is. */
        cgroup_into_fd = open(cgroup_into, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cgroup_into_fd < 0) fail(errno, "cannot open cgroup", cgroup_into);
        if ((clone_flags & (CLONE_NEWUSER | CLONE_NEWCGROUP)) || joins_user_or_cgroup_ns)
            cgroup_into_fd = join_cgroup_by_pid(cgroup_into_fd, cgroup_into);
    }

    /* Already clamped by C# to what this process may set (no CAP_SYS_RESOURCE: not below its own). */
    enter(NSP_STAGE_OOM);
    off = NSP_HEADER_SIZE;
    while (next_record(&off, &r)) {
        if (r.type != NSP_REC_OOM_SCORE_ADJ) continue;
        char v[24];
        struct text t = { v, sizeof v, 0 };
        put_int(&t, (int32_t)u32_at(r.data));
        write_file("/proc/self/oom_score_adj", v, "cannot write");
    }

    /* Open every namespace first (paths may live in a mount namespace we are about to leave), then
     * join: the user namespace first (it owns the others), the mount namespace last. */
    enter(NSP_STAGE_JOIN);
    int ns_fd[MAX_JOIN];
    uint32_t ns_type[MAX_JOIN];
    int joins = 0;
    off = NSP_HEADER_SIZE;
    while (next_record(&off, &r)) {
        if (r.type != NSP_REC_JOIN_NS) continue;
        if (joins == MAX_JOIN) fail(E2BIG, "too many namespaces to join", NULL);
        const char *path = string_at(&r, 4, 0);
        ns_type[joins] = u32_at(r.data);
        ns_fd[joins] = open(path, O_RDONLY | O_CLOEXEC);
        if (ns_fd[joins] < 0) fail(errno, "cannot open namespace", path);
        joins++;
    }

    /* Still in the host's namespaces, with the host's privileges: the mount copies that need them. */
    int userns_fd = -1;
    for (int i = 0; i < joins; i++)
        if (ns_type[i] == CLONE_NEWUSER) userns_fd = ns_fd[i];
    enter(NSP_STAGE_PREPARE_MOUNTS);
    prepare_detached_mounts(userns_fd);

    enter(NSP_STAGE_JOIN);
    static const uint32_t order[] = { CLONE_NEWUSER, CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET, CLONE_NEWPID,
                                      CLONE_NEWCGROUP, CLONE_NEWNS };
    for (unsigned k = 0; k < sizeof order / sizeof order[0]; k++)
        for (int i = 0; i < joins; i++)
            if (ns_type[i] == order[k] && setns(ns_fd[i], (int)ns_type[i]) < 0) fail(errno, "setns failed for a namespace of type", NULL);
    for (int i = 0; i < joins; i++) close(ns_fd[i]);
    /* setns gave us every capability in a joined user namespace, but our ids are the host's root, which it does not
     * map: become its root (0 inside), as the setup that follows expects (files it creates are then the namespace's). */
    if (userns_fd >= 0 && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
        fail(errno, "cannot become root in the joined user namespace", NULL);

    /* The container process: new namespaces, and the same parent as us (the C# process). */
    enter(NSP_STAGE_CLONE);
    int sync[2];
    if (pipe2(sync, O_CLOEXEC) < 0) fail(errno, "pipe2 failed", NULL);
    long pid;
    if (cgroup_into_fd >= 0) {
        /* clone3 without a stack forks like clone: the child goes on below on a copy of this stack. With CLONE_PARENT
         * the child's exit signal is ours (SIGCHLD, as with clone), and clone3 refuses one given with it. */
        struct clone_args args;
        memset(&args, 0, sizeof args);
        args.flags = clone_flags | CLONE_PARENT | CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)cgroup_into_fd;
        pid = syscall(SYS_clone3, &args, sizeof args);
        /* A kernel before 5.7 does not know the cgroup field: join it by pid, through the directory opened above (its
         * path may be out of this mount namespace's reach now), and clone as below. */
        if (pid < 0 && errno == E2BIG) cgroup_into_fd = join_cgroup_by_pid(cgroup_into_fd, cgroup_into);
    }
    if (cgroup_into_fd < 0) {
        pid = syscall(SYS_clone, (unsigned long)(clone_flags | CLONE_PARENT | SIGCHLD), 0, 0, 0, 0);
    }
    if (pid < 0) fail(errno, "clone failed", NULL);
    if (pid == 0) {
        close(sync[1]);
        container_process(sync[0]);
    }
    close(sync[0]);
    send_report(NSP_REPORT_PID, 0, (int)pid, NULL);

    if (uid_map || gid_map) {
        enter(NSP_STAGE_IDMAP);
        char path[64];
        struct text t = { path, sizeof path, 0 };
        put(&t, "/proc/");
        put_int(&t, pid);
        size_t base = t.len;
        if (uid_map) { put(&t, "/uid_map"); write_file(path, uid_map, "cannot write"); }
        t.len = base;
        if (gid_map) { put(&t, "/gid_map"); write_file(path, gid_map, "cannot write"); }
    }
    /* Release the container process; our part is done. (On a failure above, the closed pipe stops it.) */
    if (write(sync[1], "g", 1) != 1) fail(errno, "cannot release the container process", NULL);
    return 0;
}
