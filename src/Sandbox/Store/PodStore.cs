using System.Text.Json;
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
/// Pods and containers in the metadata database (domain "pods"). Every mutation is one transaction committed before
/// the method returns; read-modify-write updates hold SQLite's write lock (BEGIN IMMEDIATE) from the read to the commit,
/// so concurrent updates of one record, from any number of store instances, are never lost.
/// </summary>
/// <remarks>
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
        "pause_init_pid, config_json, complete, userns";

    private const string ContainerColumns =
        "id, pod_id, name, attempt, image_ref, image_id, state, created_at, started_at, finished_at, exit_code, reason, message, " +
        "labels, annotations, log_path, pid, config_json, complete, stop_signal, log_file, image_digest_ref, cgroup_path, image_name";

    private readonly MetadataDatabase _database;

    /// <summary>Opens the store, applying the "pods" migrations not applied yet.</summary>
    public PodStore(MetadataDatabase database)
    {
        ArgumentNullException.ThrowIfNull(database);
        _database = database;
        _database.Migrate(PodSchema.Domain, PodSchema.Migrations);
    }

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

        using var connection = _database.Open();
        using var transaction = connection.BeginTransaction(deferred: false);
        if (Scalar(connection, transaction, "SELECT id FROM pods WHERE id = $id", ("$id", pod.Id)) is not null)
        {
            throw NacelleException.AlreadyExists($"pod {pod.Id} exists already");
        }

        if (Scalar(connection, transaction,
                "SELECT id FROM pods WHERE namespace = $ns AND name = $n AND uid = $u AND attempt = $a",
                ("$ns", pod.Namespace), ("$n", pod.Name), ("$u", pod.Uid), ("$a", (long)pod.Attempt)) is string holder)
        {
            throw NacelleException.AlreadyExists(
                $"pod name \"{pod.Name}\" in namespace \"{pod.Namespace}\" (uid \"{pod.Uid}\", attempt {pod.Attempt}) is reserved for pod {holder}");
        }

        using (var insert = connection.CreateCommand())
        {
            insert.Transaction = transaction;
            insert.CommandText = $"INSERT INTO pods ({PodColumns}) VALUES ({Placeholders(PodColumns)})";
            BindPod(insert, pod);
            insert.ExecuteNonQuery();
        }

        transaction.Commit();
    }

    /// <summary>The pod with exactly this id; <see cref="ErrorKind.NotFound"/> when there is none.</summary>
    public PodRecord GetPod(string id) =>
        TryGetPod(id) ?? throw NacelleException.NotFound($"pod {id} not found");

    /// <summary>The pod with exactly this id, or null.</summary>
    public PodRecord? TryGetPod(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        using var connection = _database.Open();
        return QueryPods(connection, null, "WHERE id = $id", ("$id", id)).SingleOrDefault();
    }

    /// <summary>The pods matching <paramref name="filter"/>, oldest first.</summary>
    public IReadOnlyList<PodRecord> ListPods(PodRecordFilter? filter = null)
    {
        filter ??= new PodRecordFilter();
        var where = new List<string>();
        var parameters = new List<(string, object)>();
        if (!string.IsNullOrEmpty(filter.IdPrefix))
        {
            where.Add("substr(id, 1, length($prefix)) = $prefix");
            parameters.Add(("$prefix", filter.IdPrefix));
        }

        if (filter.State is { } state)
        {
            where.Add("state = $state");
            parameters.Add(("$state", PodStateText(state)));
        }

        using var connection = _database.Open();
        var pods = QueryPods(connection, null, where.Count == 0 ? "" : "WHERE " + string.Join(" AND ", where), [.. parameters]);
        return filter.LabelSelector is { Count: > 0 } selector ? pods.Where(p => Matches(p.Labels, selector)).ToList() : pods;
    }

    /// <summary>
    /// Applies <paramref name="change"/> to the pod (e.g. <c>p =&gt; p with { State = PodState.NotReady }</c>) and
    /// commits the result, which is returned. <see cref="ErrorKind.NotFound"/> when the pod does not exist;
    /// <see cref="ErrorKind.InvalidArgument"/> when the change touches an identity field (id, name, namespace, uid,
    /// attempt, created_at). The change may run while other writers wait: keep it short and free of I/O.
    /// </summary>
    public PodRecord UpdatePod(string id, Func<PodRecord, PodRecord> change)
    {
        ArgumentNullException.ThrowIfNull(id);
        ArgumentNullException.ThrowIfNull(change);
        using var connection = _database.Open();
        using var transaction = connection.BeginTransaction(deferred: false);
        var current = QueryPods(connection, transaction, "WHERE id = $id", ("$id", id)).SingleOrDefault()
            ?? throw NacelleException.NotFound($"pod {id} not found");
        var updated = change(current) ?? throw new InvalidOperationException("the pod update returned null");
        if (updated.Id != current.Id || updated.Name != current.Name || updated.Namespace != current.Namespace ||
            updated.Uid != current.Uid || updated.Attempt != current.Attempt || updated.CreatedAt != current.CreatedAt)
        {
            throw NacelleException.InvalidArgument($"pod {id}: id, name, namespace, uid, attempt and created_at cannot change");
        }

        using (var command = connection.CreateCommand())
        {
            command.Transaction = transaction;
            command.CommandText = $"UPDATE pods SET {Assignments(PodColumns)} WHERE id = $id";
            BindPod(command, updated);
            command.ExecuteNonQuery();
        }

        transaction.Commit();
        return updated;
    }

    /// <summary>Deletes the pod and its container rows; false when there was no such pod (not an error).</summary>
    public bool DeletePod(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        using var connection = _database.Open();
        using var transaction = connection.BeginTransaction(deferred: false);
        var deleted = Execute(connection, transaction, "DELETE FROM pods WHERE id = $id", ("$id", id)) > 0;
        transaction.Commit();
        return deleted;
    }

    /// <summary>
    /// The full id of the one pod whose id starts with <paramref name="idOrPrefix"/>. <see cref="ErrorKind.NotFound"/>
    /// when none does; <see cref="ErrorKind.InvalidArgument"/> for an empty prefix or when several do (naming them).
    /// </summary>
    public string ResolvePodId(string idOrPrefix) => Resolve("pod", "pods", idOrPrefix);

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

        using var connection = _database.Open();
        using var transaction = connection.BeginTransaction(deferred: false);
        if (Scalar(connection, transaction, "SELECT id FROM pods WHERE id = $id", ("$id", container.PodId)) is null)
        {
            throw NacelleException.NotFound($"pod {container.PodId} of container {container.Id} not found");
        }

        if (Scalar(connection, transaction, "SELECT id FROM containers WHERE id = $id", ("$id", container.Id)) is not null)
        {
            throw NacelleException.AlreadyExists($"container {container.Id} exists already");
        }

        if (Scalar(connection, transaction,
                "SELECT id FROM containers WHERE pod_id = $p AND name = $n AND attempt = $a",
                ("$p", container.PodId), ("$n", container.Name), ("$a", (long)container.Attempt)) is string holder)
        {
            throw NacelleException.AlreadyExists(
                $"container name \"{container.Name}\" (attempt {container.Attempt}) in pod {container.PodId} is reserved for container {holder}");
        }

        using (var insert = connection.CreateCommand())
        {
            insert.Transaction = transaction;
            insert.CommandText = $"INSERT INTO containers ({ContainerColumns}) VALUES ({Placeholders(ContainerColumns)})";
            BindContainer(insert, container);
            insert.ExecuteNonQuery();
        }

        transaction.Commit();
    }

    /// <summary>The container with exactly this id; <see cref="ErrorKind.NotFound"/> when there is none.</summary>
    public ContainerRecord GetContainer(string id) =>
        TryGetContainer(id) ?? throw NacelleException.NotFound($"container {id} not found");

    /// <summary>The container with exactly this id, or null.</summary>
    public ContainerRecord? TryGetContainer(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        using var connection = _database.Open();
        return QueryContainers(connection, null, "WHERE id = $id", ("$id", id)).SingleOrDefault();
    }

    /// <summary>The containers matching <paramref name="filter"/>, oldest first.</summary>
    public IReadOnlyList<ContainerRecord> ListContainers(ContainerRecordFilter? filter = null)
    {
        filter ??= new ContainerRecordFilter();
        var where = new List<string>();
        var parameters = new List<(string, object)>();
        if (!string.IsNullOrEmpty(filter.IdPrefix))
        {
            where.Add("substr(id, 1, length($prefix)) = $prefix");
            parameters.Add(("$prefix", filter.IdPrefix));
        }

        if (!string.IsNullOrEmpty(filter.PodIdPrefix))
        {
            where.Add("substr(pod_id, 1, length($pod)) = $pod");
            parameters.Add(("$pod", filter.PodIdPrefix));
        }

        if (filter.State is { } state)
        {
            where.Add("state = $state");
            parameters.Add(("$state", ContainerStateText(state)));
        }

        using var connection = _database.Open();
        var containers = QueryContainers(connection, null, where.Count == 0 ? "" : "WHERE " + string.Join(" AND ", where), [.. parameters]);
        return filter.LabelSelector is { Count: > 0 } selector ? containers.Where(c => Matches(c.Labels, selector)).ToList() : containers;
    }

    /// <summary>
    /// Applies <paramref name="change"/> to the container and commits the result, which is returned.
    /// <see cref="ErrorKind.NotFound"/> when it does not exist; <see cref="ErrorKind.InvalidArgument"/> when the change
    /// touches an identity field (id, pod id, name, attempt, created_at).
    /// </summary>
    public ContainerRecord UpdateContainer(string id, Func<ContainerRecord, ContainerRecord> change)
    {
        ArgumentNullException.ThrowIfNull(id);
        ArgumentNullException.ThrowIfNull(change);
        using var connection = _database.Open();
        using var transaction = connection.BeginTransaction(deferred: false);
        var current = QueryContainers(connection, transaction, "WHERE id = $id", ("$id", id)).SingleOrDefault()
            ?? throw NacelleException.NotFound($"container {id} not found");
        var updated = change(current) ?? throw new InvalidOperationException("the container update returned null");
        if (updated.Id != current.Id || updated.PodId != current.PodId || updated.Name != current.Name ||
            updated.Attempt != current.Attempt || updated.CreatedAt != current.CreatedAt)
        {
            throw NacelleException.InvalidArgument($"container {id}: id, pod id, name, attempt and created_at cannot change");
        }

        using (var command = connection.CreateCommand())
        {
            command.Transaction = transaction;
            command.CommandText = $"UPDATE containers SET {Assignments(ContainerColumns)} WHERE id = $id";
            BindContainer(command, updated);
            command.ExecuteNonQuery();
        }

        transaction.Commit();
        return updated;
    }

    /// <summary>Deletes the container; false when there was no such container (not an error).</summary>
    public bool DeleteContainer(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        using var connection = _database.Open();
        using var transaction = connection.BeginTransaction(deferred: false);
        var deleted = Execute(connection, transaction, "DELETE FROM containers WHERE id = $id", ("$id", id)) > 0;
        transaction.Commit();
        return deleted;
    }

    /// <summary>
    /// The full id of the one container whose id starts with <paramref name="idOrPrefix"/>.
    /// <see cref="ErrorKind.NotFound"/> when none does; <see cref="ErrorKind.InvalidArgument"/> for an empty prefix or
    /// when several do (naming them).
    /// </summary>
    public string ResolveContainerId(string idOrPrefix) => Resolve("container", "containers", idOrPrefix);

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

    private string Resolve(string kind, string table, string idOrPrefix)
    {
        if (string.IsNullOrEmpty(idOrPrefix))
        {
            throw NacelleException.InvalidArgument($"{kind} id is empty");
        }

        // At most 11 rows: enough to tell "one" from "several" and to name a few of them.
        var matches = _database.QueryStrings(
            $"SELECT id FROM {table} WHERE substr(id, 1, length($p)) = $p ORDER BY id LIMIT 11", ("$p", idOrPrefix));
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

    private static string ToJson(IReadOnlyDictionary<string, string> map) =>
        JsonSerializer.Serialize(
            map.OrderBy(p => p.Key, StringComparer.Ordinal).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal),
            PodStoreJsonContext.Default.DictionaryStringString);

    private static string ToJson(IReadOnlyList<string> list) =>
        JsonSerializer.Serialize(list.ToList(), PodStoreJsonContext.Default.ListString);

    private static Dictionary<string, string> MapFromJson(string json) =>
        JsonSerializer.Deserialize(json, PodStoreJsonContext.Default.DictionaryStringString) ?? new Dictionary<string, string>();

    private static List<string> ListFromJson(string json) =>
        JsonSerializer.Deserialize(json, PodStoreJsonContext.Default.ListString) ?? [];

    private static object Nullable(long? value) => value is { } v ? v : DBNull.Value;

    private static void BindPod(SqliteCommand command, PodRecord pod)
    {
        var p = command.Parameters;
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
        p.AddWithValue("$config_json", pod.ConfigJson ?? "");
        p.AddWithValue("$complete", pod.Complete ? 1L : 0L);
        p.AddWithValue("$userns", UserNamespaceOption.ToColumn(pod.NamespaceOptions.User));
    }

    private static void BindContainer(SqliteCommand command, ContainerRecord container)
    {
        var p = command.Parameters;
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
        p.AddWithValue("$config_json", container.ConfigJson ?? "");
        p.AddWithValue("$complete", container.Complete ? 1L : 0L);
        p.AddWithValue("$stop_signal", (long)container.StopSignal);
        p.AddWithValue("$log_file", container.LogFile ?? "");
        p.AddWithValue("$image_digest_ref", container.ImageDigestRef ?? "");
        p.AddWithValue("$cgroup_path", container.CgroupPath ?? "");
        p.AddWithValue("$image_name", container.ImageName ?? "");
    }

    private static List<PodRecord> QueryPods(SqliteConnection connection, SqliteTransaction? transaction, string where,
        params (string Name, object Value)[] parameters)
    {
        using var command = Command(connection, transaction, $"SELECT {PodColumns} FROM pods {where} ORDER BY created_at, id", parameters);
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
                ConfigJson = reader.GetString(23),
                Complete = reader.GetInt64(24) != 0,
            });
        }

        return pods;
    }

    private static List<ContainerRecord> QueryContainers(SqliteConnection connection, SqliteTransaction? transaction, string where,
        params (string Name, object Value)[] parameters)
    {
        using var command = Command(connection, transaction, $"SELECT {ContainerColumns} FROM containers {where} ORDER BY created_at, id", parameters);
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
                ConfigJson = reader.GetString(17),
                Complete = reader.GetInt64(18) != 0,
                StopSignal = reader.GetInt32(19),
                LogFile = reader.GetString(20),
                ImageDigestRef = reader.GetString(21),
                CgroupPath = reader.GetString(22),
                ImageName = reader.GetString(23),
            });
        }

        return containers;
    }

    private static SqliteCommand Command(SqliteConnection connection, SqliteTransaction? transaction, string sql,
        (string Name, object Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        return command;
    }

    private static object? Scalar(SqliteConnection connection, SqliteTransaction transaction, string sql, params (string Name, object Value)[] parameters)
    {
        using var command = Command(connection, transaction, sql, parameters);
        return command.ExecuteScalar();
    }

    private static int Execute(SqliteConnection connection, SqliteTransaction transaction, string sql, params (string Name, object Value)[] parameters)
    {
        using var command = Command(connection, transaction, sql, parameters);
        return command.ExecuteNonQuery();
    }
}
