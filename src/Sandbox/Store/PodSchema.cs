namespace Nacelle.Sandbox.Store;

/// <summary>The pod store's tables in the metadata database, as ordered migrations (domain "pods").</summary>
internal static class PodSchema
{
    public const string Domain = "pods";

    public static readonly IReadOnlyList<string> Migrations =
    [
        """
        CREATE TABLE pods (
            id TEXT PRIMARY KEY,                 -- 64 hex digits
            name TEXT NOT NULL,
            namespace TEXT NOT NULL,
            uid TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('ready', 'notready')),
            created_at INTEGER NOT NULL,         -- unix nanoseconds
            labels TEXT NOT NULL,                -- JSON object
            annotations TEXT NOT NULL,           -- JSON object
            runtime_handler TEXT NOT NULL,
            netns_path TEXT NOT NULL,
            ips TEXT NOT NULL,                   -- JSON array, primary first
            hostname TEXT NOT NULL,
            log_directory TEXT NOT NULL,
            cgroup_parent TEXT NOT NULL,
            network_mode INTEGER NOT NULL,       -- CRI NamespaceMode numbers
            pid_mode INTEGER NOT NULL,
            ipc_mode INTEGER NOT NULL,
            target_id TEXT NOT NULL,
            privileged INTEGER NOT NULL,
            monitor_pid INTEGER,
            monitor_start_time INTEGER NOT NULL, -- ulong stored as its two's complement bits
            pause_init_pid INTEGER,
            config_json TEXT NOT NULL,           -- the PodSandboxConfig, opaque
            UNIQUE (namespace, name, uid, attempt) -- the pod name reservation
        );
        CREATE TABLE containers (
            id TEXT PRIMARY KEY,
            pod_id TEXT NOT NULL REFERENCES pods(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            image_ref TEXT NOT NULL,
            image_id TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('created', 'running', 'exited', 'unknown')),
            created_at INTEGER NOT NULL,         -- unix nanoseconds
            started_at INTEGER,
            finished_at INTEGER,
            exit_code INTEGER,
            reason TEXT NOT NULL,
            message TEXT NOT NULL,
            labels TEXT NOT NULL,
            annotations TEXT NOT NULL,
            log_path TEXT NOT NULL,
            pid INTEGER,
            config_json TEXT NOT NULL,           -- the ContainerConfig, opaque
            UNIQUE (pod_id, name, attempt)       -- the container name reservation
        );
        CREATE INDEX containers_by_pod ON containers(pod_id);
        """,
        // What the runtime needs of a container beyond CRI's view: whether its create finished (a daemon killed half
        // way through CreateContainer leaves an incomplete row, which recovery cleans up), its stop signal, the log
        // file it writes, the image's digest reference, the container's cgroup, and OOM/signal facts of its exit.
        """
        ALTER TABLE containers ADD COLUMN complete INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE containers ADD COLUMN stop_signal INTEGER NOT NULL DEFAULT 15;
        ALTER TABLE containers ADD COLUMN log_file TEXT NOT NULL DEFAULT '';
        ALTER TABLE containers ADD COLUMN image_digest_ref TEXT NOT NULL DEFAULT '';
        ALTER TABLE containers ADD COLUMN cgroup_path TEXT NOT NULL DEFAULT '';
        ALTER TABLE containers ADD COLUMN image_name TEXT NOT NULL DEFAULT '';
        """,
        // Whether RunPodSandbox finished: a daemon killed half way through leaves an incomplete pod (holding its name,
        // maybe an address from CNI), which the next daemon tears down at start.
        """
        ALTER TABLE pods ADD COLUMN complete INTEGER NOT NULL DEFAULT 1;
        """,
        // The pod's own user namespace (kubelet's hostUsers: false): "uids=c:h:l;gids=c:h:l", "" for the node's.
        """
        ALTER TABLE pods ADD COLUMN userns TEXT NOT NULL DEFAULT '';
        """,
        // What StartContainer gives the pod's monitor besides the spec (the monitor spawns the container at start): its
        // stdin for attachers and whether that closes after the first attach. Rows from before are spawned already.
        """
        ALTER TABLE containers ADD COLUMN stdin INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE containers ADD COLUMN stdin_once INTEGER NOT NULL DEFAULT 0;
        """,
        // The CRI config in protobuf's binary encoding: reading it back needs no JSON parser and none of the schema's
        // reflection descriptors (about 1 MB the daemon kept for its life). config_json keeps what rows from before hold.
        """
        ALTER TABLE pods ADD COLUMN config BLOB NOT NULL DEFAULT x'';
        ALTER TABLE containers ADD COLUMN config BLOB NOT NULL DEFAULT x'';
        """,
    ];
}
