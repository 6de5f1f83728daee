/*
 * The message nacelle (C#) hands to nacelle-spawn, and the reports nacelle-spawn sends back.
 *
 * This header is the protocol. The C# side mirrors every number here in
 * ContainerCore/Spawn/SpawnProtocol.cs; a unit test parses this file and compares them.
 *
 * File descriptors the helper is started with:
 *   0, 1, 2  the container's stdio (replaced by a pty slave when NSP_REC_TERMINAL is present)
 *   3        control socket (AF_UNIX, SOCK_SEQPACKET): reports out, the start byte in
 *   4        the message: a memfd holding one flat, versioned message
 *
 * Connect mode (a message with NSP_REC_CONNECT): no process is cloned. The helper joins the one network
 * namespace named by its NSP_REC_JOIN_NS record, connects a TCP socket to the port on 127.0.0.1 (then
 * [::1]), sends the connected socket back with NSP_REPORT_SOCKET and exits. This is how the daemon opens
 * a port-forward connection inside a pod without any of its own threads entering the pod's namespace.
 *
 * Message layout (little-endian, native alignment not assumed):
 *   header  u32 magic, u32 version, u32 total length (header included)
 *   records u16 type, u16 reserved (0), u32 payload length, payload, padding to 8 bytes
 * Strings inside payloads are NUL-terminated. Records of the same type keep their order.
 */
#ifndef NACELLE_SPAWN_PROTOCOL_H
#define NACELLE_SPAWN_PROTOCOL_H

#define NSP_MAGIC 0x5753504e /* "NPSW" read as little-endian bytes N P S W */
#define NSP_VERSION 1
#define NSP_HEADER_SIZE 12
#define NSP_RECORD_HEADER_SIZE 8

/* Record types. */
#define NSP_REC_CLONE_FLAGS 1     /* u64: CLONE_NEW* flags of the namespaces to create */
#define NSP_REC_JOIN_NS 2         /* u32 CLONE_NEW* type, string path: a namespace to join */
/* 3: retired (a cgroup.procs file the helper wrote its pid into: each such write waits for an RCU grace period). */
#define NSP_REC_UID_MAP 4         /* string: uid_map text, written by the helper for the child */
#define NSP_REC_GID_MAP 5         /* string: gid_map text */
#define NSP_REC_OOM_SCORE_ADJ 6   /* i32: already clamped by C# to what this process may set */
#define NSP_REC_CGROUP_THREAD 7   /* string: a cgroup v1 "tasks" file the helper writes "0" into (itself: its one thread) */
#define NSP_REC_CGROUP_INTO 8     /* string: a cgroup2 directory the container process is cloned into (CLONE_INTO_CGROUP) */
#define NSP_REC_ROOTFS 10         /* string: host path of the prepared root file system */
#define NSP_REC_ROOT_PROPAGATION 11 /* u64 before pivot, u64 after pivot (0: none) */
#define NSP_REC_MOUNT 12          /* u64 flags, u64 propagation, u32 kind, u32 create, strings source, target, fstype, data */
#define NSP_REC_DEVICE 13         /* u32 type (S_IFCHR...), u32 mode, u32 major, u32 minor, u32 uid, u32 gid, string path */
#define NSP_REC_SYMLINK 14        /* strings target, link path */
#define NSP_REC_MASKED_PATH 15    /* string */
#define NSP_REC_READONLY_PATH 16  /* string */
#define NSP_REC_ROOT_READONLY 17  /* no payload */
#define NSP_REC_ROOTFS_DETACHED 18 /* no payload: the helper (P) takes a detached copy of NSP_REC_ROOTFS before it joins
                                   * any namespace and the container process attaches it, so the container process
                                   * never walks the host path (in a user namespace it may not be allowed to) */
#define NSP_REC_HOSTNAME 20       /* string */
#define NSP_REC_DOMAINNAME 21     /* string */
#define NSP_REC_SYSCTL 22         /* strings: path under /proc/sys (slashes), value */
#define NSP_REC_RLIMIT 23         /* u32 resource, u32 reserved, u64 soft, u64 hard */
#define NSP_REC_USER 30           /* u32 uid, u32 gid, u32 count, u32 gids[count] */
#define NSP_REC_UMASK 31          /* u32 */
#define NSP_REC_NO_NEW_PRIVS 32   /* no payload */
#define NSP_REC_CAPS 33           /* u32 last cap, u32 reserved, u64 bounding, effective, inheritable, permitted, ambient */
#define NSP_REC_SECCOMP 34        /* u32 flags, u32 reserved, sock_filter instructions (8 bytes each) */
#define NSP_REC_CWD 40            /* string */
#define NSP_REC_ARG 41            /* string, one record per argv element */
#define NSP_REC_ENV 42            /* string "KEY=value", one record per variable */
#define NSP_REC_PARK 43           /* no payload: wait for the start byte before execve (create); else run at once */
#define NSP_REC_NEW_SESSION 44    /* no payload: setsid() */
#define NSP_REC_TERMINAL 45       /* u32 rows, u32 columns (0: the kernel's default): allocate a pty from the
                                   * container's own /dev/ptmx, send its master back (NSP_REPORT_CONSOLE), make the
                                   * slave stdin/stdout/stderr and, just before execve, the controlling terminal */
#define NSP_REC_APPARMOR 60       /* string: the AppArmor profile the program runs under (attr/apparmor/exec) */
#define NSP_REC_SELINUX_LABEL 61  /* string: the SELinux label the program runs under (attr/exec) */
#define NSP_REC_CONNECT 50        /* u32 port, u32 reserved: connect mode (see above); only NSP_REC_JOIN_NS of
                                   * CLONE_NEWNET may accompany it */

/* NSP_REC_MOUNT kinds (the low byte of the kind field) and create modes. */
#define NSP_MOUNT_FS 0            /* mount(source, target, fstype, flags, data) */
#define NSP_MOUNT_BIND 1          /* bind the host path source; remounted when flags ask for more than MS_BIND|MS_REC */
#define NSP_MOUNT_BIND_RECURSIVE_READONLY 2 /* a bind made read-only with every submount (mount_setattr) */
#define NSP_MOUNT_KIND_MASK 0xff
/* Modifiers or-ed into the kind field. */
#define NSP_MOUNT_DETACHED 0x100  /* a bind kind whose source the helper (P) copies with open_tree(OPEN_TREE_CLONE
                                   * [|AT_RECURSIVE with MS_REC]) in the host's mount namespace before it joins any
                                   * namespace, with the record's propagation set on the copy (none: private); the
                                   * container process moves it onto the target. The copy of a shared source stays
                                   * in its peer group, so propagation reaches the host both ways */
#define NSP_MOUNT_IDMAP 0x200     /* with NSP_MOUNT_DETACHED: the copy is idmapped (MOUNT_ATTR_IDMAP) with the user
                                   * namespace of the NSP_REC_JOIN_NS record of type CLONE_NEWUSER */
#define NSP_MOUNT_IDMAP_RECURSIVE 0x400 /* with NSP_MOUNT_IDMAP: every submount of the copy is idmapped too */
#define NSP_MOUNT_HOST_FALLBACK 0x800 /* with NSP_MOUNT_FS: when the kernel refuses the file system with EPERM (inside
                                   * a user namespace that does not own the namespace it shows, e.g. sysfs of a
                                   * network namespace owned by the host), bind the host's directory of the same
                                   * path as the target recursively and make it read-only with every submount */
#define NSP_CREATE_DIR 0
#define NSP_CREATE_FILE 1

/* Reports (helper -> C#), one fixed-size datagram each. */
#define NSP_REPORT_PID 1          /* pid: the container process, as this pid namespace sees it */
#define NSP_REPORT_READY 2        /* setup done, parked before execve (or about to execve when not parked) */
#define NSP_REPORT_ERROR 3        /* stage, err and message say what failed */
#define NSP_REPORT_CONSOLE 4      /* carries the pty master as SCM_RIGHTS; sent before NSP_REPORT_READY */
#define NSP_REPORT_SOCKET 5       /* connect mode: carries the connected socket as SCM_RIGHTS; pid is the address
                                   * family it connected with (AF_INET 2, AF_INET6 10) */
#define NSP_REPORT_MESSAGE_SIZE 256
/* struct nsp_report { u32 magic; u32 kind; i32 stage; i32 err; i32 pid; char message[256]; } = 276 bytes */
#define NSP_REPORT_SIZE 276

/* Start byte (C# -> helper) on the control socket. */
#define NSP_START_BYTE 'S'

/* Stages, in execution order. The number is reported on failure; the name is shown by ps. */
#define NSP_STAGE_PARSE 1
#define NSP_STAGE_CGROUP 2
#define NSP_STAGE_OOM 3
#define NSP_STAGE_JOIN 4
#define NSP_STAGE_CLONE 5
#define NSP_STAGE_IDMAP 6
#define NSP_STAGE_MOUNTS 7
#define NSP_STAGE_DEVICES 8
#define NSP_STAGE_PIVOT 9
#define NSP_STAGE_HOSTNAME 10
#define NSP_STAGE_SYSCTL 11
#define NSP_STAGE_MASK 12
#define NSP_STAGE_RLIMITS 13
#define NSP_STAGE_USER 14
#define NSP_STAGE_NO_NEW_PRIVS 15
#define NSP_STAGE_CAPS 16
#define NSP_STAGE_SECCOMP 17
#define NSP_STAGE_CWD 18
#define NSP_STAGE_LOOKUP 19
#define NSP_STAGE_CLOSE_FDS 20
#define NSP_STAGE_WAIT_START 21
#define NSP_STAGE_EXEC 22
#define NSP_STAGE_CONSOLE 23      /* runs after mask-paths (the container's /dev is in place), before rlimits */
#define NSP_STAGE_LSM 24          /* after rlimits, before the uid change: the AppArmor profile / SELinux label for execve */
#define NSP_STAGE_PREPARE_MOUNTS 30 /* in the helper (P), between opening and joining the namespaces: the detached
                                   * copies of NSP_MOUNT_DETACHED mounts and NSP_REC_ROOTFS_DETACHED */
#define NSP_STAGE_CONNECT 40      /* connect mode's only stage: join the network namespace, socket, connect */

#endif
