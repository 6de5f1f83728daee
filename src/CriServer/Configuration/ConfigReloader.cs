using System.Globalization;

namespace Nacelle.CriServer.Configuration;

/// <summary>
/// A part of the daemon that takes live keys (<see cref="ConfigReload.Live"/>) on a reload. <see cref="Prepare"/> gets
/// the configuration about to be in force and checks what it can (files it reads, values it derives), throwing a
/// <see cref="ConfigException"/> naming the key to refuse the whole reload; it returns the commit, which must not fail.
/// A section opts in by marking its keys Live in <see cref="ConfigKeys"/> and registering a participant for them.
/// </summary>
public sealed record ReloadParticipant(string Name, Func<NacelleConfig, Action> Prepare);

/// <summary>What a reload did.</summary>
/// <param name="Refused">Why the new configuration was refused (the running one stays in force); null when it was applied.</param>
/// <param name="Applied">Live keys whose new values are now in force.</param>
/// <param name="Deferred">Changed keys that only a restart applies (their running values stay).</param>
public sealed record ReloadOutcome(ConfigException? Refused, IReadOnlyList<string> Applied, IReadOnlyList<string> Deferred);

/// <summary>
/// Re-reads the configuration from the sources the daemon started with (files, drop-ins, flags) and applies the live
/// keys through the registered participants, all or nothing: an invalid file, or a participant that refuses, leaves
/// every running value as it was. Keys that need a restart keep their running values in the configuration in force.
/// </summary>
public sealed class ConfigReloader
{
    private readonly Func<LoadedConfig> _load;
    private readonly List<ReloadParticipant> _participants = [];
    private readonly Lock _gate = new();
    private LoadedConfig _current;

    public ConfigReloader(LoadedConfig initial, Func<LoadedConfig> load)
    {
        ArgumentNullException.ThrowIfNull(initial);
        ArgumentNullException.ThrowIfNull(load);
        _current = initial;
        _load = load;
    }

    /// <summary>The configuration in force (the start's, then each applied reload's).</summary>
    public LoadedConfig Current => Volatile.Read(ref _current);

    /// <summary>When the last reload was applied; null before the first.</summary>
    public DateTimeOffset? ReloadedAt { get; private set; }

    public void Register(ReloadParticipant participant)
    {
        ArgumentNullException.ThrowIfNull(participant);
        lock (_gate)
        {
            _participants.Add(participant);
        }
    }

    /// <summary>Loads the sources again and applies what changed (reloads run one at a time).</summary>
    public ReloadOutcome Reload()
    {
        lock (_gate)
        {
            LoadedConfig next;
            try
            {
                next = _load();
            }
            catch (ConfigException e)
            {
                return new ReloadOutcome(e, [], []);
            }

            var running = _current.Config;
            var changed = Changed(running, next.Config);
            var deferred = new List<string>();
            foreach (var path in changed)
            {
                if (ConfigKeys.Find(path) is { Reload: ConfigReload.Restart } key)
                {
                    key.Set(next.Config, key.Get(running)); // the running value stays in force until a restart
                    deferred.Add(path);
                }
                else if (path.StartsWith(ConfigKeys.RuntimeHandlersPath + ".", StringComparison.Ordinal))
                {
                    // Runtime handlers are read once at start (each external runtime's features are probed then): a
                    // change is named and waits for a restart, and the running table stays what Status reports.
                    deferred.Add(path);
                }
            }

            if (deferred.Any(path => path.StartsWith(ConfigKeys.RuntimeHandlersPath + ".", StringComparison.Ordinal)))
            {
                next.Config.Runtime.Handlers.Clear();
                foreach (var (name, handler) in running.Runtime.Handlers)
                {
                    next.Config.Runtime.Handlers[name] = handler;
                }
            }

            try
            {
                ConfigLoader.ValidateWhole(next.Config, next.Files.Count > 0 ? next.Files[^1] : "configuration");
            }
            catch (ConfigException e)
            {
                return new ReloadOutcome(e, [], deferred);
            }

            var applied = changed.Except(deferred, StringComparer.Ordinal).ToList();
            if (applied.Count > 0)
            {
                var commits = new List<Action>();
                try
                {
                    commits.AddRange(_participants.Select(participant => participant.Prepare(next.Config)));
                }
                catch (ConfigException e)
                {
                    return new ReloadOutcome(e, [], deferred);
                }

                foreach (var commit in commits)
                {
                    commit();
                }
            }

            Volatile.Write(ref _current, next);
            ReloadedAt = DateTimeOffset.UtcNow;
            return new ReloadOutcome(null, applied, deferred);
        }
    }

    /// <summary>
    /// The keys whose values differ, in table order: top-level keys by path, registry tables as
    /// registry.hosts."&lt;host&gt;" (added or removed) or registry.hosts."&lt;host&gt;".&lt;key&gt;, runtime handlers as
    /// runtime.handlers.&lt;name&gt; (added or removed) or runtime.handlers.&lt;name&gt;.&lt;key&gt;.
    /// </summary>
    public static IReadOnlyList<string> Changed(NacelleConfig before, NacelleConfig after)
    {
        ArgumentNullException.ThrowIfNull(before);
        ArgumentNullException.ThrowIfNull(after);
        var changed = ConfigKeys.All.Where(key => Text(key.Get(before)) != Text(key.Get(after))).Select(key => key.Path).ToList();
        foreach (var host in before.Registry.Hosts.Keys.Union(after.Registry.Hosts.Keys).Order(StringComparer.Ordinal))
        {
            var hostPath = $"{ConfigKeys.RegistryHostsPath}.\"{host}\"";
            if (!before.Registry.Hosts.TryGetValue(host, out var old) || !after.Registry.Hosts.TryGetValue(host, out var now))
            {
                changed.Add(hostPath);
                continue;
            }

            changed.AddRange(ConfigKeys.RegistryHostKeys.Where(key => Text(key.Get(old)) != Text(key.Get(now))).Select(key => $"{hostPath}.{key.Path}"));
        }

        foreach (var name in before.Runtime.Handlers.Keys.Union(after.Runtime.Handlers.Keys).Order(StringComparer.Ordinal))
        {
            var handlerPath = $"{ConfigKeys.RuntimeHandlersPath}.{name}";
            if (!before.Runtime.Handlers.TryGetValue(name, out var old) || !after.Runtime.Handlers.TryGetValue(name, out var now))
            {
                changed.Add(handlerPath);
                continue;
            }

            changed.AddRange(ConfigKeys.RuntimeHandlerKeys.Where(key => Text(key.Get(old)) != Text(key.Get(now))).Select(key => $"{handlerPath}.{key.Path}"));
        }

        return changed;
    }

    // Values compared as text: lists element by element, numbers and durations invariantly.
    private static string Text(object value) => value switch
    {
        IEnumerable<string> list => string.Join('\n', list),
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? string.Empty,
    };
}
