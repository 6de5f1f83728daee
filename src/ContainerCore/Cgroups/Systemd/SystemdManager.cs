using System.Collections.Concurrent;
using Nacelle.Common;
using Tmds.DBus.Protocol;

namespace Nacelle.ContainerCore.Cgroups.Systemd;

/// <summary>
/// systemd's manager over D-Bus (org.freedesktop.systemd1.Manager on the system bus): starts transient units, sets
/// their properties, kills, stops and lists them, each job waited for until systemd has finished it. Every operation
/// opens its own connection and closes it when done: a monitor per pod holds no bus connection while idle (the system
/// bus limits connections per user), and a broken connection never outlives one call. The bus is
/// $DBUS_SYSTEM_BUS_ADDRESS, else /run/dbus/system_bus_socket.
/// </summary>
public sealed class SystemdManager
{
    public const string DefaultAddress = "unix:path=/run/dbus/system_bus_socket";
    private const string Destination = "org.freedesktop.systemd1";
    private const string ManagerPath = "/org/freedesktop/systemd1";
    private const string ManagerInterface = "org.freedesktop.systemd1.Manager";
    private static readonly TimeSpan JobTimeout = TimeSpan.FromSeconds(30);

    private readonly string _address;

    public SystemdManager(string? address = null) =>
        _address = address ?? (Environment.GetEnvironmentVariable("DBUS_SYSTEM_BUS_ADDRESS") is { Length: > 0 } fromEnvironment ? fromEnvironment : DefaultAddress);

    /// <summary>The bus address this manager talks to.</summary>
    public string Address => _address;

    /// <summary>Checks that systemd answers on the bus (a Ping of its manager); throws Unavailable saying why not.</summary>
    public Task PingAsync(CancellationToken cancellationToken = default) => WithConnectionAsync("ping systemd", async (connection, _) =>
    {
        await connection.CallMethodAsync(Call(connection, "Ping", "org.freedesktop.DBus.Peer")).ConfigureAwait(false);
        return true;
    }, cancellationToken);

    // A call without arguments.
    private static MessageBuffer Call(Connection connection, string member, string @interface = ManagerInterface)
    {
        using var writer = connection.GetMessageWriter();
        writer.WriteMethodCallHeader(Destination, ManagerPath, @interface, member);
        return writer.CreateMessage();
    }

    /// <summary>
    /// Starts a transient unit (StartTransientUnit, mode "fail": a unit of that name that is already there is an
    /// error) and waits until its start job is done; throws when systemd refuses it or the job fails.
    /// </summary>
    public Task StartTransientUnitAsync(string name, IReadOnlyList<SystemdProperty> properties, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(properties);
        return RunJobAsync($"start {name}", connection =>
        {
            var writer = connection.GetMessageWriter();
            try
            {
                writer.WriteMethodCallHeader(Destination, ManagerPath, ManagerInterface, "StartTransientUnit", "ssa(sv)a(sa(sv))");
                writer.WriteString(name);
                writer.WriteString("fail");
                WriteProperties(ref writer, properties);
                var aux = writer.WriteArrayStart(DBusType.Struct);
                writer.WriteArrayEnd(aux);
                return writer.CreateMessage();
            }
            finally
            {
                writer.Dispose();
            }
        }, cancellationToken);
    }

    /// <summary>Stops a unit and waits for the job; a unit systemd does not know (already gone) is no error.</summary>
    public async Task StopUnitAsync(string name, CancellationToken cancellationToken = default)
    {
        try
        {
            await RunJobAsync($"stop {name}", connection =>
            {
                using var writer = connection.GetMessageWriter();
                writer.WriteMethodCallHeader(Destination, ManagerPath, ManagerInterface, "StopUnit", "ss");
                writer.WriteString(name);
                writer.WriteString("replace");
                return writer.CreateMessage();
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (NacelleException e) when (e.Kind == ErrorKind.NotFound)
        {
            // not loaded: nothing to stop
        }
    }

    /// <summary>
    /// SIGKILLs every process of a unit (KillUnit, "all"), so that stopping it then does not wait out its stop timeout
    /// for processes that ignore SIGTERM; a unit systemd does not know, or one without processes, is no error.
    /// </summary>
    public async Task KillUnitAsync(string name, CancellationToken cancellationToken = default)
    {
        try
        {
            await WithConnectionAsync($"kill {name}", async (connection, _) =>
            {
                await connection.CallMethodAsync(Message(connection, name)).ConfigureAwait(false);
                return true;
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (NacelleException e) when (e.Kind is ErrorKind.NotFound or ErrorKind.FailedPrecondition)
        {
            // gone, or nothing left to signal
        }

        static MessageBuffer Message(Connection connection, string name)
        {
            using var writer = connection.GetMessageWriter();
            writer.WriteMethodCallHeader(Destination, ManagerPath, ManagerInterface, "KillUnit", "ssi");
            writer.WriteString(name);
            writer.WriteString("all");
            writer.WriteInt32(9); // SIGKILL
            return writer.CreateMessage();
        }
    }

    /// <summary>Changes properties of a running unit (runtime only: nothing is written below /etc).</summary>
    public Task SetUnitPropertiesAsync(string name, IReadOnlyList<SystemdProperty> properties, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(properties);
        return WithConnectionAsync($"set properties of {name}", async (connection, _) =>
        {
            await connection.CallMethodAsync(Message(connection, name, properties)).ConfigureAwait(false);
            return true;
        }, cancellationToken);

        static MessageBuffer Message(Connection connection, string name, IReadOnlyList<SystemdProperty> properties)
        {
            var writer = connection.GetMessageWriter();
            try
            {
                writer.WriteMethodCallHeader(Destination, ManagerPath, ManagerInterface, "SetUnitProperties", "sba(sv)");
                writer.WriteString(name);
                writer.WriteBool(true);
                WriteProperties(ref writer, properties);
                return writer.CreateMessage();
            }
            finally
            {
                writer.Dispose();
            }
        }
    }

    /// <summary>The names of the loaded units matching any of the glob <paramref name="patterns"/> (ListUnitsByPatterns).</summary>
    public Task<IReadOnlyList<string>> ListUnitsAsync(IReadOnlyList<string> patterns, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(patterns);
        return WithConnectionAsync<IReadOnlyList<string>>("list units", async (connection, _) =>
        {
            return await connection.CallMethodAsync(Message(connection, patterns), (Message m, object? _) =>
            {
                // a(ssssssouso): name, description, load, active, sub, following, path, job id, job type, job path.
                var reader = m.GetBodyReader();
                var names = new List<string>();
                var end = reader.ReadArrayStart(DBusType.Struct);
                while (reader.HasNext(end))
                {
                    reader.AlignStruct();
                    names.Add(reader.ReadString());
                    for (var i = 0; i < 5; i++)
                    {
                        reader.ReadString();
                    }

                    reader.ReadObjectPath();
                    reader.ReadUInt32();
                    reader.ReadString();
                    reader.ReadObjectPath();
                }

                return (IReadOnlyList<string>)names;
            }).ConfigureAwait(false);
        }, cancellationToken);

        static MessageBuffer Message(Connection connection, IReadOnlyList<string> patterns)
        {
            var writer = connection.GetMessageWriter();
            try
            {
                writer.WriteMethodCallHeader(Destination, ManagerPath, ManagerInterface, "ListUnitsByPatterns", "asas");
                writer.WriteArray(Array.Empty<string>()); // any state
                writer.WriteArray(patterns.ToArray());
                return writer.CreateMessage();
            }
            finally
            {
                writer.Dispose();
            }
        }
    }

    // Sends a call that answers with a job's object path and waits for JobRemoved of that job (subscribed before the
    // call, so a job that finishes at once is not missed).
    private Task RunJobAsync(string what, Func<Connection, MessageBuffer> message, CancellationToken cancellationToken) =>
        WithConnectionAsync(what, async (connection, jobs) =>
        {
            var job = await connection.CallMethodAsync(message(connection), (Message m, object? _) => m.GetBodyReader().ReadObjectPath().ToString())
                .ConfigureAwait(false);
            var done = jobs.GetOrAdd(job, _ => new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously));
            string result;
            try
            {
                result = await done.Task.WaitAsync(JobTimeout, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                throw new NacelleException(ErrorKind.DeadlineExceeded, $"systemd: {what}: the job did not finish within {JobTimeout.TotalSeconds} s");
            }

            return result == "done"
                ? true
                : throw NacelleException.Internal($"systemd: {what}: the job ended \"{result}\" (see `systemctl status` of the unit)");
        }, cancellationToken);

    // Opens a connection, subscribes to the manager's JobRemoved signals (every job's end: id, job path, unit, result)
    // into a table of this operation's jobs, runs the operation and closes the connection. D-Bus errors become
    // NacelleExceptions by their name; an unreachable or broken bus is Unavailable.
    private async Task<T> WithConnectionAsync<T>(string what, Func<Connection, ConcurrentDictionary<string, TaskCompletionSource<string>>, Task<T>> operation,
        CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var jobs = new ConcurrentDictionary<string, TaskCompletionSource<string>>(StringComparer.Ordinal);
        using var connection = new Connection(_address);
        try
        {
            await connection.ConnectAsync().ConfigureAwait(false);
            using var watch = await connection.AddMatchAsync(
                new MatchRule { Type = MessageType.Signal, Sender = Destination, Path = ManagerPath, Interface = ManagerInterface, Member = "JobRemoved" },
                (Message m, object? _) =>
                {
                    var reader = m.GetBodyReader();
                    reader.ReadUInt32();
                    var job = reader.ReadObjectPath().ToString();
                    reader.ReadString();
                    return (Job: job, Result: reader.ReadString());
                },
                (Exception? error, (string Job, string Result) removed, object? _, object? _) =>
                {
                    if (error is not null)
                    {
                        foreach (var pending in jobs.Values)
                        {
                            pending.TrySetException(NacelleException.Unavailable($"systemd: {what}: the system bus connection broke: {error.Message}"));
                        }

                        return;
                    }

                    jobs.GetOrAdd(removed.Job, _ => new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult(removed.Result);
                },
                ObserverFlags.None, null, null, false).ConfigureAwait(false);
            await connection.CallMethodAsync(Call(connection, "Subscribe")).ConfigureAwait(false);
            return await operation(connection, jobs).ConfigureAwait(false);
        }
        catch (DBusException e)
        {
            throw e.ErrorName switch
            {
                "org.freedesktop.systemd1.NoSuchUnit" => NacelleException.NotFound($"systemd: {what}: {e.ErrorMessage}"),
                "org.freedesktop.systemd1.UnitExists" => NacelleException.AlreadyExists($"systemd: {what}: {e.ErrorMessage}"),
                "org.freedesktop.systemd1.NoSuchProcess" => NacelleException.FailedPrecondition($"systemd: {what}: {e.ErrorMessage}"),
                "org.freedesktop.DBus.Error.InvalidArgs" => NacelleException.InvalidArgument($"systemd: {what}: {e.ErrorMessage}"),
                "org.freedesktop.DBus.Error.ServiceUnknown" or "org.freedesktop.DBus.Error.NameHasNoOwner" =>
                    NacelleException.Unavailable($"systemd: {what}: systemd is not on the system bus {_address}: {e.ErrorMessage}"),
                _ => NacelleException.Internal($"systemd: {what}: {e.ErrorName}: {e.ErrorMessage}"),
            };
        }
        catch (Exception e) when (e is ConnectException or DisconnectedException or IOException or System.Net.Sockets.SocketException)
        {
            throw NacelleException.Unavailable($"systemd: {what}: the system bus {_address} is not reachable: {e.Message}");
        }
    }

    private static void WriteProperties(ref MessageWriter writer, IReadOnlyList<SystemdProperty> properties)
    {
        var array = writer.WriteArrayStart(DBusType.Struct);
        foreach (var property in properties)
        {
            writer.WriteStructureStart();
            writer.WriteString(property.Name);
            writer.WriteSignature(property.Signature);
            switch (property.Value)
            {
                case bool b:
                    writer.WriteBool(b);
                    break;
                case ulong t:
                    writer.WriteUInt64(t);
                    break;
                case string s:
                    writer.WriteString(s);
                    break;
                case uint[] pids:
                    var list = writer.WriteArrayStart(DBusType.UInt32);
                    foreach (var pid in pids)
                    {
                        writer.WriteUInt32(pid);
                    }

                    writer.WriteArrayEnd(list);
                    break;
                case (string, string)[] pairs:
                    var entries = writer.WriteArrayStart(DBusType.Struct);
                    foreach (var (first, second) in pairs)
                    {
                        writer.WriteStructureStart();
                        writer.WriteString(first);
                        writer.WriteString(second);
                    }

                    writer.WriteArrayEnd(entries);
                    break;
                default:
                    throw new ArgumentException($"unit property {property.Name}: no D-Bus encoding for {property.Value.GetType().Name}");
            }
        }

        writer.WriteArrayEnd(array);
    }
}
