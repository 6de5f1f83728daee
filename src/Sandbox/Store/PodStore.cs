using System.Collections.Immutable;
using Microsoft.Data.Sqlite;
using Nacelle.Common;
using Nacelle.Storage;

namespace Nacelle.Sandbox.Store;

/// <summary>Which pods <see cref="PodStore.ListPods"/> returns; null members match everything.</summary>
/// <param name="IdPrefix">Pods whose id starts with this (crictl passes prefixes).</param>
/// <param name="State">Pods in this state.</param>
/// <param name="LabelSelector">Pods having every one of these labels with exactly this value.</param>
public sealed record PodRecordFilter(
    string? IdPrefix = null,
    PodState? State = null,
    IReadOnlyDictionary<string, string>? LabelSelector = null);

/// <summary>Which containers <see cref="PodStore.ListContainers"/> returns; null members match everything.</summary>
/// <param name="IdPrefix">Containers whose id starts with this.</param>
/// <param name="State">Containers in this state.</param>
/// <param name="PodIdPrefix">Containers of the pods whose id starts with this (a full id is its own prefix).</param>
/// <param name="LabelSelector">Containers having every one of these labels with exactly this value.</param>
public sealed record ContainerRecordFilter(
    string? IdPrefix = null,
    ContainerRecordState? State = null,
    string? PodIdPrefix = null,
    IReadOnlyDictionary<string, string>? LabelSelector = null);

/// <summary>
/// Pods and containers: the metadata database (domain "pods") is the durable record, and an in-memory copy serves every
/// read. Each mutation is committed to the database before the method returns and published to the copy under the same
/// lock, so a read that starts after a write returned sees it, and reads never wait for a write nor touch SQLite.
/// </summary>
/// <remarks>
/// One store per database file and process: the daemon is the only writer (its socket guard keeps a second daemon
/// out), so the copy loaded when the store opens stays in step with the file. Writers are serialized by the store's
/// lock; readers take the current snapshot (immutable maps and id-ordered lists) without locking. Records are
/// immutable; their label, annotation and ip collections are copied on write, so a caller's collection is never shared.
/// The name reservations are unique keys: a pod's (namespace, name, uid, attempt) and a container's
/// (pod id, name, attempt); adding a second record with the same key fails with
/// <see cref="ErrorKind.AlreadyExists"/> naming the record holding it. Deleting a pod deletes its container rows.
/// </remarks>
public sealed class PodStore
{
    private const int IdLength = 64;

    private const string PodColumns =
        "id, name, namespace, uid, attempt, state, created_at, labels, annotations, runtime_handler, netns_path, ips, hostname, " +
        "log_directory, cgroup_parent, network_mode, pid_mode, ipc_mode, target_id, privileged, monitor_pid, monitor_start_time, " +
        "pause_init_pid, config_json, complete, userns, config";

    private const string ContainerColumns =
        "id, pod_id, name, attempt, image_ref, image_id, state, created_at, started_at, finished_at, exit_code, reason, message, " +
        "labels, annotations, log_path, pid, config_json, complete, stop_signal, log_file, image_digest_ref, cgroup_path, image_name, " +
        "stdin, stdin_once, config";

    private readonly Lock _write = new();
    private readonly MetadataDatabase _database;
    private readonly SqliteConnection _connection;
    private readonly SqliteCommand _insertPod;
    private readonly SqliteCommand _updatePod;
    private readonly SqliteCommand _deletePod;
    private readonly SqliteCommand _insertContainer;
    private readonly SqliteCommand _updateContainer;
    private readonly SqliteCommand _deleteContainer;
    private volatile Snapshot _snapshot;

    /// <summary>Opens the store, applying the "pods" migrations not applied yet, and loads every pod and container.</summary>
    public PodStore(MetadataDatabase database)
    {
        ArgumentNullException.ThrowIfNull(database);
        database.Migrate(PodSchema.Domain, PodSchema.Migrations);
        // The writes' own connection and statements, used under the write lock only (prepared once, bound per write).
        // Buffered commits (see MetadataDatabase.OpenBuffered): a write survives the daemon's crash when it returns; a
        // machine crash, which kills every pod with it, may take back the newest ones, which recovery handles like any
        // record of a pod whose monitor is gone. SyncToDisk comes first where something outlives a reboot on a record.
        _database = database;
        _connection = database.OpenBuffered();
        _insertPod = Prepare($"INSERT INTO pods ({PodColumns}) VALUES ({Placeholders(PodColumns)})");
        _updatePod = Prepare($"UPDATE pods SET {Assignments(PodColumns)} WHERE id = $id");
        _deletePod = Prepare("DELETE FROM pods WHERE id = $id");
        _insertContainer = Prepare($"INSERT INTO containers ({ContainerColumns}) VALUES ({Placeholders(ContainerColumns)})");
        _updateContainer = Prepare($"UPDATE containers SET {Assignments(ContainerColumns)} WHERE id = $id");
        _deleteContainer = Prepare("DELETE FROM containers WHERE id = $id");
        _snapshot = Snapshot.Of(LoadPods(), LoadContainers());
    }

    /// <summary>
    /// Makes every write so far durable against a machine crash (writes are buffered: they survive the daemon's crash at
    /// once). Called before a pod acquires something that outlives a reboot on the strength of its record (an address
    /// from the CNI plugin's IPAM store), so that recovery after a reboot still finds the record and releases it.
    /// </summary>
    public void SyncToDisk() => _database.SyncToDisk(); // no lock: every returned write is in the WAL already

    // ---------------------------------------------------------------- pods

    /// <summary>
    /// Records a new pod. <see cref="ErrorKind.InvalidArgument"/> for a malformed id or an empty name;
    /// <see cref="ErrorKind.AlreadyExists"/> when the id exists or another pod holds its (namespace, name, uid, attempt),
    /// naming that pod.
    /// </summary>
    public void AddPod(PodRecord pod)
    {
        ArgumentNullException.ThrowIfNull(pod);
        ValidateId("pod", pod.Id);
        if (string.IsNullOrEmpty(pod.Name))
        {
            throw NacelleException.InvalidArgument($"pod {pod.Id}: metadata.name is empty");
        }

        pod = Owned(pod);
        lock (_write)
        {
            var snapshot = _snapshot;
            if (snapshot.Pods.ContainsKey(pod.Id))
            {
                throw NacelleException.AlreadyExists($"pod {pod.Id} exists already");
            }

            if (snapshot.PodOrder.FirstOrDefault(p => p.Namespace == pod.Namespace && p.Name == pod.Name && p.Uid == pod.Uid && p.Attempt == pod.Attempt)
                is { } holder)
            {
                throw NacelleException.AlreadyExists(
                    $"pod name \"{pod.Name}\" in namespace \"{pod.Namespace}\" (uid \"{pod.Uid}\", attempt {pod.Attempt}) is reserved for pod {holder.Id}");
            }

            BindPod(_insertPod, pod);
            Execute(_insertPod);
            _snapshot = snapshot.WithPod(pod);
        }
    }

    /// <summary>The pod with exactly this id; <see cref="ErrorKind.NotFound"/> when there is none.</summary>
    public PodRecord GetPod(string id) =>
        TryGetPod(id) ?? throw NacelleException.NotFound($"pod {id} not found");

    /// <summary>The pod with exactly this id, or null.</summary>
    public PodRecord? TryGetPod(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        return _snapshot.Pods.GetValueOrDefault(id);
    }

    /// <summary>The pods matching <paramref name="filter"/>, oldest first.</summary>
    public IReadOnlyList<PodRecord> ListPods(PodRecordFilter? filter = null)
    {
        var pods = _snapshot.PodOrder;
        if (filter is null || (string.IsNullOrEmpty(filter.IdPrefix) && filter.State is null && filter.LabelSelector is not { Count: > 0 }))
        {
            return pods;
        }

        return pods.Where(p =>
            (string.IsNullOrEmpty(filter.IdPrefix) || p.Id.StartsWith(filter.IdPrefix, StringComparison.Ordinal)) &&
            (filter.State is not { } state || p.State == state) &&
            (filter.LabelSelector is not { Count: > 0 } selector || Matches(p.Labels, selector))).ToList();
    }

    /// <summary>
    /// Applies <paramref name="change"/> to the pod (e.g. <c>p =&gt; p with { State = PodState.NotReady }</c>) and
    /// commits the result, which is returned. <see cref="ErrorKind.NotFound"/> when the pod does not exist;
    /// <see cref="ErrorKind.InvalidArgument"/> when the change touches an identity field (id, name, namespace, uid,
    /// attempt, created_at). The change runs under the store's write lock, with the record as last committed, so
    /// concurrent updates of one record are never lost: keep it short and free of I/O.
    /// </summary>
    public PodRecord UpdatePod(string id, Func<PodRecord, PodRecord> change)
    {
        ArgumentNullException.ThrowIfNull(id);
        ArgumentNullException.ThrowIfNull(change);
        lock (_write)
        {
            var snapshot = _snapshot;
            var current = snapshot.Pods.GetValueOrDefault(id) ?? throw NacelleException.NotFound($"pod {id} not found");
            var updated = change(current) ?? throw new InvalidOperationException("the pod update returned null");
            if (updated.Id != current.Id || updated.Name != current.Name || updated.Namespace != current.Namespace ||
                updated.Uid != current.Uid || updated.Attempt != current.Attempt || updated.CreatedAt != current.CreatedAt)
            {
                throw NacelleException.InvalidArgument($"pod {id}: id, name, namespace, uid, attempt and created_at cannot change");
            }

            if (ReferenceEquals(updated, current))
            {
                return current; // nothing changed: nothing to write
            }

            updated = Owned(updated);
            BindPod(_updatePod, updated);
            Execute(_updatePod);
            _snapshot = snapshot.WithPod(updated);
            return updated;
        }
    }

    /// <summary>Deletes the pod and its container rows; false when there was no such pod (not an error).</summary>
    public bool DeletePod(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        lock (_write)
        {
            var snapshot = _snapshot;
            if (!snapshot.Pods.ContainsKey(id))
            {
                return false;
            }

            new Binder(_deletePod).AddWithValue("$id", id);
            Execute(_deletePod);
            _snapshot = snapshot.WithoutPod(id);
            return true;
        }
    }

    /// <summary>
    /// The full id of the one pod whose id starts with <paramref name="idOrPrefix"/>. <see cref="ErrorKind.NotFound"/>
    /// when none does; <see cref="ErrorKind.InvalidArgument"/> for an empty prefix or when several do (naming them).
    /// </summary>
    public string ResolvePodId(string idOrPrefix) => Resolve("pod", idOrPrefix, _snapshot.Pods);

    // ---------------------------------------------------------------- containers

    /// <summary>
    /// Records a new container. <see cref="ErrorKind.InvalidArgument"/> for a malformed id or an empty name;
    /// <see cref="ErrorKind.NotFound"/> when its pod does not exist; <see cref="ErrorKind.AlreadyExists"/> when the id
    /// exists or another container of the pod holds its (name, attempt), naming that container.
    /// </summary>
    public void AddContainer(ContainerRecord container)
    {
        ArgumentNullException.ThrowIfNull(container);
        ValidateId("container", container.Id);
        if (string.IsNullOrEmpty(container.Name))
        {
            throw NacelleException.InvalidArgument($"container {container.Id}: metadata.name is empty");
        }

        container = Owned(container);
        lock (_write)
        {
            var snapshot = _snapshot;
            if (!snapshot.Pods.ContainsKey(container.PodId))
            {
                throw NacelleException.NotFound($"pod {container.PodId} of container {container.Id} not found");
            }

            if (snapshot.Containers.ContainsKey(container.Id))
            {
                throw NacelleException.AlreadyExists($"container {container.Id} exists already");
            }

            if (snapshot.ContainerOrder.FirstOrDefault(c => c.PodId == container.PodId && c.Name == container.Name && c.Attempt == container.Attempt)
                is { } holder)
            {
                throw NacelleException.AlreadyExists(
                    $"container name \"{container.Name}\" (attempt {container.Attempt}) in pod {container.PodId} is reserved for container {holder.Id}");
            }

            BindContainer(_insertContainer, container);
            Execute(_insertContainer);
            _snapshot = snapshot.WithContainer(container);
        }
    }

    /// <summary>The container with exactly this id; <see cref="ErrorKind.NotFound"/> when there is none.</summary>
    public ContainerRecord GetContainer(string id) =>
        TryGetContainer(id) ?? throw NacelleException.NotFound($"container {id} not found");

    /// <summary>The container with exactly this id, or null.</summary>
    public ContainerRecord? TryGetContainer(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        return _snapshot.Containers.GetValueOrDefault(id);
    }

    /// <summary>The containers matching <paramref name="filter"/>, oldest first.</summary>
    public IReadOnlyList<ContainerRecord> ListContainers(ContainerRecordFilter? filter = null)
    {
        var containers = _snapshot.ContainerOrder;
        if (filter is null || (string.IsNullOrEmpty(filter.IdPrefix) && string.IsNullOrEmpty(filter.PodIdPrefix) && filter.State is null &&
                               filter.LabelSelector is not { Count: > 0 }))
        {
            return containers;
        }

        return containers.Where(c =>
            (string.IsNullOrEmpty(filter.IdPrefix) || c.Id.StartsWith(filter.IdPrefix, StringComparison.Ordinal)) &&
            (string.IsNullOrEmpty(filter.PodIdPrefix) || c.PodId.StartsWith(filter.PodIdPrefix, StringComparison.Ordinal)) &&
            (filter.State is not { } state || c.State == state) &&
            (filter.LabelSelector is not { Count: > 0 } selector || Matches(c.Labels, selector))).ToList();
    }

    /// <summary>Every container of exactly this pod, oldest first.</summary>
    public IReadOnlyList<ContainerRecord> ContainersOfPod(string podId)
    {
        ArgumentNullException.ThrowIfNull(podId);
        return _snapshot.ContainerOrder.Where(c => c.PodId == podId).ToList();
    }

    /// <summary>
    /// Applies <paramref name="change"/> to the container and commits the result, which is returned.
    /// <see cref="ErrorKind.NotFound"/> when it does not exist; <see cref="ErrorKind.InvalidArgument"/> when the change
    /// touches an identity field (id, pod id, name, attempt, created_at). The change runs under the store's write lock
    /// (see <see cref="UpdatePod"/>).
    /// </summary>
    public ContainerRecord UpdateContainer(string id, Func<ContainerRecord, ContainerRecord> change) =>
        TryUpdateContainer(id, change) ?? throw NacelleException.NotFound($"container {id} not found");

    /// <summary>
    /// As <see cref="UpdateContainer"/>, but null when the container does not exist: for what records a change seen
    /// elsewhere (an exit the monitor reports) beside a RemoveContainer, for which a container removed meanwhile needs
    /// no change.
    /// </summary>
    public ContainerRecord? TryUpdateContainer(string id, Func<ContainerRecord, ContainerRecord> change)
    {
        ArgumentNullException.ThrowIfNull(id);
        ArgumentNullException.ThrowIfNull(change);
        lock (_write)
        {
            var snapshot = _snapshot;
            if (snapshot.Containers.GetValueOrDefault(id) is not { } current)
            {
                return null;
            }

            var updated = change(current) ?? throw new InvalidOperationException("the container update returned null");
            if (updated.Id != current.Id || updated.PodId != current.PodId || updated.Name != current.Name ||
                updated.Attempt != current.Attempt || updated.CreatedAt != current.CreatedAt)
            {
                throw NacelleException.InvalidArgument($"container {id}: id, pod id, name, attempt and created_at cannot change");
            }

            if (ReferenceEquals(updated, current))
            {
                return current;
            }

            updated = Owned(updated);
            BindContainer(_updateContainer, updated);
            Execute(_updateContainer);
            _snapshot = snapshot.WithContainer(updated);
            return updated;
        }
    }

    /// <summary>Deletes the container; false when there was no such container (not an error).</summary>
    public bool DeleteContainer(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        lock (_write)
        {
            var snapshot = _snapshot;
            if (!snapshot.Containers.ContainsKey(id))
            {
                return false;
            }

            new Binder(_deleteContainer).AddWithValue("$id", id);
            Execute(_deleteContainer);
            _snapshot = snapshot.WithoutContainer(id);
            return true;
        }
    }

    /// <summary>
    /// The full id of the one container whose id starts with <paramref name="idOrPrefix"/>.
    /// <see cref="ErrorKind.NotFound"/> when none does; <see cref="ErrorKind.InvalidArgument"/> for an empty prefix or
    /// when several do (naming them).
    /// </summary>
    public string ResolveContainerId(string idOrPrefix) => Resolve("container", idOrPrefix, _snapshot.Containers);

    // ---------------------------------------------------------------- helpers

    /// <summary>True for 64 lower-case hex digits.</summary>
    public static bool IsValidId(string? id) =>
        id is { Length: IdLength } && id.All(c => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f');

    private static void ValidateId(string kind, string? id)
    {
        if (!IsValidId(id))
        {
            throw NacelleException.InvalidArgument($"{kind} id \"{id}\" is not {IdLength} lower-case hex digits");
        }
    }

    private static string Resolve<T>(string kind, string idOrPrefix, ImmutableDictionary<string, T> byId)
    {
        if (string.IsNullOrEmpty(idOrPrefix))
        {
            throw NacelleException.InvalidArgument($"{kind} id is empty");
        }

        if (idOrPrefix.Length == IdLength && byId.ContainsKey(idOrPrefix))
        {
            return idOrPrefix; // a full id: the common case, one lookup
        }

        // At most 11: enough to tell "one" from "several" and to name a few of them.
        var matches = byId.Keys.Where(id => id.StartsWith(idOrPrefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal).Take(11).ToList();
        return matches.Count switch
        {
            0 => throw NacelleException.NotFound($"{kind} {idOrPrefix} not found"),
            1 => matches[0],
            _ => throw NacelleException.InvalidArgument(
                $"{kind} id prefix \"{idOrPrefix}\" is ambiguous: it matches {string.Join(", ", matches.Take(10))}{(matches.Count > 10 ? ", ..." : "")}"),
        };
    }

    private static bool Matches(IReadOnlyDictionary<string, string> labels, IReadOnlyDictionary<string, string> selector) =>
        selector.All(pair => labels.TryGetValue(pair.Key, out var value) && value == pair.Value);

    private static string Placeholders(string columns) =>
        string.Join(", ", columns.Split(", ").Select(c => "$" + c));

    private static string Assignments(string columns) =>
        string.Join(", ", columns.Split(", ").Where(c => c != "id").Select(c => $"{c} = ${c}"));

    private static string PodStateText(PodState state) => state switch
    {
        PodState.Ready => "ready",
        PodState.NotReady => "notready",
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, "unknown pod state"),
    };

    private static PodState ParsePodState(string text) => text switch
    {
        "ready" => PodState.Ready,
        "notready" => PodState.NotReady,
        _ => throw NacelleException.Internal($"pod store: unknown pod state \"{text}\""),
    };

    private static string ContainerStateText(ContainerRecordState state) => state switch
    {
        ContainerRecordState.Created => "created",
        ContainerRecordState.Running => "running",
        ContainerRecordState.Exited => "exited",
        ContainerRecordState.Unknown => "unknown",
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, "unknown container state"),
    };

    private static ContainerRecordState ParseContainerState(string text) => text switch
    {
        "created" => ContainerRecordState.Created,
        "running" => ContainerRecordState.Running,
        "exited" => ContainerRecordState.Exited,
        "unknown" => ContainerRecordState.Unknown,
        _ => throw NacelleException.Internal($"pod store: unknown container state \"{text}\""),
    };

    // Through buffers of their own (JsonMetadata): a pod's labels and annotations may be megabytes, which the shared
    // array pool would keep after each write or read.
    private static string ToJson(IReadOnlyDictionary<string, string> map) =>
        JsonMetadata.SerializeToString(
            map.OrderBy(p => p.Key, StringComparer.Ordinal).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal),
            PodStoreJsonContext.Default.DictionaryStringString);

    private static string ToJson(IReadOnlyList<string> list) =>
        JsonMetadata.SerializeToString(list.ToList(), PodStoreJsonContext.Default.ListString);

    private static Dictionary<string, string> MapFromJson(string json) =>
        JsonMetadata.Deserialize(json, PodStoreJsonContext.Default.DictionaryStringString) ?? new Dictionary<string, string>();

    private static List<string> ListFromJson(string json) =>
        JsonMetadata.Deserialize(json, PodStoreJsonContext.Default.ListString) ?? [];

    private static object Nullable(long? value) => value is { } v ? v : DBNull.Value;

    private static void BindPod(SqliteCommand command, PodRecord pod)
    {
        var p = new Binder(command);
        p.AddWithValue("$id", pod.Id);
        p.AddWithValue("$name", pod.Name);
        p.AddWithValue("$namespace", pod.Namespace ?? "");
        p.AddWithValue("$uid", pod.Uid ?? "");
        p.AddWithValue("$attempt", (long)pod.Attempt);
        p.AddWithValue("$state", PodStateText(pod.State));
        p.AddWithValue("$created_at", pod.CreatedAt);
        p.AddWithValue("$labels", ToJson(pod.Labels));
        p.AddWithValue("$annotations", ToJson(pod.Annotations));
        p.AddWithValue("$runtime_handler", pod.RuntimeHandler ?? "");
        p.AddWithValue("$netns_path", pod.NetnsPath ?? "");
        p.AddWithValue("$ips", ToJson(pod.Ips));
        p.AddWithValue("$hostname", pod.Hostname ?? "");
        p.AddWithValue("$log_directory", pod.LogDirectory ?? "");
        p.AddWithValue("$cgroup_parent", pod.CgroupParent ?? "");
        p.AddWithValue("$network_mode", (long)pod.NamespaceOptions.Network);
        p.AddWithValue("$pid_mode", (long)pod.NamespaceOptions.Pid);
        p.AddWithValue("$ipc_mode", (long)pod.NamespaceOptions.Ipc);
        p.AddWithValue("$target_id", pod.NamespaceOptions.TargetId ?? "");
        p.AddWithValue("$privileged", pod.Privileged ? 1L : 0L);
        p.AddWithValue("$monitor_pid", Nullable(pod.MonitorPid));
        p.AddWithValue("$monitor_start_time", unchecked((long)pod.MonitorStartTime));
        p.AddWithValue("$pause_init_pid", Nullable(pod.PauseInitPid));
        p.AddWithValue("$config_json", pod.LegacyConfigJson ?? "");
        p.AddWithValue("$complete", pod.Complete ? 1L : 0L);
        p.AddWithValue("$userns", UserNamespaceOption.ToColumn(pod.NamespaceOptions.User));
        p.AddWithValue("$config", pod.Config ?? []);
    }

    private static void BindContainer(SqliteCommand command, ContainerRecord container)
    {
        var p = new Binder(command);
        p.AddWithValue("$id", container.Id);
        p.AddWithValue("$pod_id", container.PodId);
        p.AddWithValue("$name", container.Name);
        p.AddWithValue("$attempt", (long)container.Attempt);
        p.AddWithValue("$image_ref", container.ImageRef ?? "");
        p.AddWithValue("$image_id", container.ImageId ?? "");
        p.AddWithValue("$state", ContainerStateText(container.State));
        p.AddWithValue("$created_at", container.CreatedAt);
        p.AddWithValue("$started_at", Nullable(container.StartedAt));
        p.AddWithValue("$finished_at", Nullable(container.FinishedAt));
        p.AddWithValue("$exit_code", Nullable(container.ExitCode));
        p.AddWithValue("$reason", container.Reason ?? "");
        p.AddWithValue("$message", container.Message ?? "");
        p.AddWithValue("$labels", ToJson(container.Labels));
        p.AddWithValue("$annotations", ToJson(container.Annotations));
        p.AddWithValue("$log_path", container.LogPath ?? "");
        p.AddWithValue("$pid", Nullable(container.Pid));
        p.AddWithValue("$config_json", container.LegacyConfigJson ?? "");
        p.AddWithValue("$complete", container.Complete ? 1L : 0L);
        p.AddWithValue("$stop_signal", (long)container.StopSignal);
        p.AddWithValue("$log_file", container.LogFile ?? "");
        p.AddWithValue("$image_digest_ref", container.ImageDigestRef ?? "");
        p.AddWithValue("$cgroup_path", container.CgroupPath ?? "");
        p.AddWithValue("$image_name", container.ImageName ?? "");
        p.AddWithValue("$stdin", container.Stdin ? 1L : 0L);
        p.AddWithValue("$stdin_once", container.StdinOnce ? 1L : 0L);
        p.AddWithValue("$config", container.Config ?? []);
    }

    /// <summary>
    /// Runs one of the store's prepared statements, then lets go of the values bound to it: the statement lives as long
    /// as the store, and its parameters would otherwise keep the last row written (a container's config, a pod's
    /// annotations as JSON: megabytes for a hostile request) until the next write of the same kind.
    /// </summary>
    private static void Execute(SqliteCommand command)
    {
        try
        {
            command.ExecuteNonQuery();
        }
        finally
        {
            foreach (SqliteParameter parameter in command.Parameters)
            {
                parameter.Value = DBNull.Value;
            }
        }
    }

    private SqliteCommand Prepare(string sql)
    {
        var command = _connection.CreateCommand();
        command.CommandText = sql;
        return command;
    }

    /// <summary>A copy of the record whose collections belong to the store (sorted by key, as the database returns them).</summary>
    private static PodRecord Owned(PodRecord pod) => pod with
    {
        Labels = Sorted(pod.Labels), Annotations = Sorted(pod.Annotations), Ips = [.. pod.Ips], NamespaceOptions = pod.NamespaceOptions ?? new(),
    };

    private static ContainerRecord Owned(ContainerRecord container) => container with
    {
        Labels = Sorted(container.Labels), Annotations = Sorted(container.Annotations),
    };

    private static Dictionary<string, string> Sorted(IReadOnlyDictionary<string, string> map) =>
        map.OrderBy(p => p.Key, StringComparer.Ordinal).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);

    private List<PodRecord> LoadPods()
    {
        using var command = Prepare($"SELECT {PodColumns} FROM pods");
        using var reader = command.ExecuteReader();
        var pods = new List<PodRecord>();
        while (reader.Read())
        {
            pods.Add(new PodRecord
            {
                Id = reader.GetString(0),
                Name = reader.GetString(1),
                Namespace = reader.GetString(2),
                Uid = reader.GetString(3),
                Attempt = checked((uint)reader.GetInt64(4)),
                State = ParsePodState(reader.GetString(5)),
                CreatedAt = reader.GetInt64(6),
                Labels = MapFromJson(reader.GetString(7)),
                Annotations = MapFromJson(reader.GetString(8)),
                RuntimeHandler = reader.GetString(9),
                NetnsPath = reader.GetString(10),
                Ips = ListFromJson(reader.GetString(11)),
                Hostname = reader.GetString(12),
                LogDirectory = reader.GetString(13),
                CgroupParent = reader.GetString(14),
                NamespaceOptions = new PodNamespaceOptions(
                    (PodNamespaceMode)reader.GetInt64(15), (PodNamespaceMode)reader.GetInt64(16), (PodNamespaceMode)reader.GetInt64(17),
                    reader.GetString(18), UserNamespaceOption.FromColumn(reader.GetString(25))),
                Privileged = reader.GetInt64(19) != 0,
                MonitorPid = reader.IsDBNull(20) ? null : reader.GetInt32(20),
                MonitorStartTime = unchecked((ulong)reader.GetInt64(21)),
                PauseInitPid = reader.IsDBNull(22) ? null : reader.GetInt32(22),
                LegacyConfigJson = reader.GetString(23),
                Config = reader.GetFieldValue<byte[]>(26),
                Complete = reader.GetInt64(24) != 0,
            });
        }

        return pods;
    }

    private List<ContainerRecord> LoadContainers()
    {
        using var command = Prepare($"SELECT {ContainerColumns} FROM containers");
        using var reader = command.ExecuteReader();
        var containers = new List<ContainerRecord>();
        while (reader.Read())
        {
            containers.Add(new ContainerRecord
            {
                Id = reader.GetString(0),
                PodId = reader.GetString(1),
                Name = reader.GetString(2),
                Attempt = checked((uint)reader.GetInt64(3)),
                ImageRef = reader.GetString(4),
                ImageId = reader.GetString(5),
                State = ParseContainerState(reader.GetString(6)),
                CreatedAt = reader.GetInt64(7),
                StartedAt = reader.IsDBNull(8) ? null : reader.GetInt64(8),
                FinishedAt = reader.IsDBNull(9) ? null : reader.GetInt64(9),
                ExitCode = reader.IsDBNull(10) ? null : reader.GetInt32(10),
                Reason = reader.GetString(11),
                Message = reader.GetString(12),
                Labels = MapFromJson(reader.GetString(13)),
                Annotations = MapFromJson(reader.GetString(14)),
                LogPath = reader.GetString(15),
                Pid = reader.IsDBNull(16) ? null : reader.GetInt32(16),
                LegacyConfigJson = reader.GetString(17),
                Config = reader.GetFieldValue<byte[]>(26),
                Complete = reader.GetInt64(18) != 0,
                StopSignal = reader.GetInt32(19),
                LogFile = reader.GetString(20),
                ImageDigestRef = reader.GetString(21),
                CgroupPath = reader.GetString(22),
                ImageName = reader.GetString(23),
                Stdin = reader.GetInt64(24) != 0,
                StdinOnce = reader.GetInt64(25) != 0,
            });
        }

        return containers;
    }

    /// <summary>
    /// What readers see: the records by id and in the order lists return them (created_at, then id), replaced as a whole
    /// by every write. A record's position never changes (its creation time and id are identity), so an update replaces it
    /// in place.
    /// </summary>
    private sealed class Snapshot(
        ImmutableDictionary<string, PodRecord> pods, PodRecord[] podOrder,
        ImmutableDictionary<string, ContainerRecord> containers, ContainerRecord[] containerOrder)
    {
        public ImmutableDictionary<string, PodRecord> Pods => pods;

        public IReadOnlyList<PodRecord> PodOrder => podOrder;

        public ImmutableDictionary<string, ContainerRecord> Containers => containers;

        public IReadOnlyList<ContainerRecord> ContainerOrder => containerOrder;

        public static Snapshot Of(List<PodRecord> pods, List<ContainerRecord> containers) => new(
            pods.ToImmutableDictionary(p => p.Id, StringComparer.Ordinal), [.. pods.Order(PodOrdering.Instance)],
            containers.ToImmutableDictionary(c => c.Id, StringComparer.Ordinal), [.. containers.Order(ContainerOrdering.Instance)]);

        public Snapshot WithPod(PodRecord pod) =>
            new(pods.SetItem(pod.Id, pod), Put(podOrder, pod, PodOrdering.Instance), containers, containerOrder);

        public Snapshot WithoutPod(string id)
        {
            var remaining = containerOrder.Where(c => c.PodId != id).ToArray();
            return new(pods.Remove(id), [.. podOrder.Where(p => p.Id != id)],
                remaining.Length == containerOrder.Length ? containers : containers.RemoveRange(containerOrder.Where(c => c.PodId == id).Select(c => c.Id)),
                remaining);
        }

        public Snapshot WithContainer(ContainerRecord container) =>
            new(pods, podOrder, containers.SetItem(container.Id, container), Put(containerOrder, container, ContainerOrdering.Instance));

        public Snapshot WithoutContainer(string id) =>
            new(pods, podOrder, containers.Remove(id), [.. containerOrder.Where(c => c.Id != id)]);

        /// <summary>A copy of <paramref name="sorted"/> with <paramref name="item"/> replacing its equal, or inserted in order.</summary>
        private static T[] Put<T>(T[] sorted, T item, IComparer<T> order)
        {
            var at = Array.BinarySearch(sorted, item, order);
            if (at >= 0)
            {
                var copy = (T[])sorted.Clone();
                copy[at] = item;
                return copy;
            }

            at = ~at;
            var grown = new T[sorted.Length + 1];
            Array.Copy(sorted, grown, at);
            grown[at] = item;
            Array.Copy(sorted, at, grown, at + 1, sorted.Length - at);
            return grown;
        }
    }

    /// <summary>Oldest first, then by id: the order of the lists (SQLite's ORDER BY created_at, id).</summary>
    private sealed class PodOrdering : IComparer<PodRecord>
    {
        public static readonly PodOrdering Instance = new();

        public int Compare(PodRecord? x, PodRecord? y) =>
            x!.CreatedAt != y!.CreatedAt ? x.CreatedAt.CompareTo(y.CreatedAt) : string.CompareOrdinal(x.Id, y.Id);
    }

    private sealed class ContainerOrdering : IComparer<ContainerRecord>
    {
        public static readonly ContainerOrdering Instance = new();

        public int Compare(ContainerRecord? x, ContainerRecord? y) =>
            x!.CreatedAt != y!.CreatedAt ? x.CreatedAt.CompareTo(y.CreatedAt) : string.CompareOrdinal(x.Id, y.Id);
    }

    /// <summary>Sets a prepared command's parameters, adding each the first time.</summary>
    private readonly struct Binder(SqliteCommand command)
    {
        public void AddWithValue(string name, object value)
        {
            var parameters = command.Parameters;
            var at = parameters.IndexOf(name);
            if (at < 0)
            {
                parameters.AddWithValue(name, value);
            }
            else
            {
                parameters[at].Value = value;
            }
        }
    }
}

