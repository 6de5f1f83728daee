using System.Globalization;
using System.Net;

namespace Nacelle.CriServer.Configuration;

/// <summary>The TOML type a key takes.</summary>
public enum ConfigValueType
{
    String,
    Boolean,
    Integer,
    Float,
    /// <summary>A string such as "10s" (see <see cref="Duration"/>).</summary>
    Duration,
    /// <summary>An array of strings.</summary>
    StringList,
}

/// <summary>When a changed value takes effect.</summary>
public enum ConfigReload
{
    /// <summary>At the next start; a reload (SIGHUP) keeps the running value and says so.</summary>
    Restart,

    /// <summary>At the next reload (SIGHUP), without dropping the socket or any stream.</summary>
    Live,
}

/// <summary>
/// One configuration key: its dotted path, documentation, type, how to read and write it on
/// <see cref="NacelleConfig"/>, and its validation. The same table drives parsing, flags,
/// validation, `nacelle config default` and the effective config shown by Status. <typeparamref name="TTarget"/> is
/// what the key is read from and written to: the whole config, or one entry of a table of tables (a registry host).
/// </summary>
public sealed class ConfigKey<TTarget>
{
    public required string Path { get; init; }
    public required string Comment { get; init; }
    public required ConfigValueType Type { get; init; }
    public required Func<TTarget, object> Get { get; init; }
    public required Action<TTarget, object> Set { get; init; }

    /// <summary>Returns why a (type-correct) value is not acceptable, or null when it is.</summary>
    public Func<object, string?> Validate { get; init; } = static _ => null;

    /// <summary>
    /// Converts a value written for an older release, when this key took another TOML type then; null when the value is
    /// not such a one. An upgrade must not turn a configuration that worked into one the new daemon refuses.
    /// </summary>
    public Func<object?, object?> FromOlderRelease { get; init; } = static _ => null;

    /// <summary>Whether a reload applies a change of this key (<see cref="ConfigReload.Live"/>) or it waits for a restart.</summary>
    public ConfigReload Reload { get; init; } = ConfigReload.Restart;

    /// <summary>The section ("" for top-level keys) and the key name inside it.</summary>
    public string Section => Path.Contains('.') ? Path[..Path.LastIndexOf('.')] : string.Empty;

    public string Name => Path[(Path.LastIndexOf('.') + 1)..];
}

public static class ConfigKeys
{
    public static readonly string[] LogLevels = ["trace", "debug", "info", "warn", "error"];

    public static readonly string[] TracingProtocols = ["grpc", "http/protobuf"];

    /// <summary>Values of cni.default_network: the node-safe one first (the embedded default).</summary>
    public static readonly string[] DefaultNetworkChoices = [NacelleConfig.CniSection.NoDefaultNetwork, NacelleConfig.CniSection.BuiltinNetwork];

    /// <summary>Section comments, printed above each [section] by `nacelle config default`.</summary>
    public static readonly IReadOnlyDictionary<string, string> SectionComments = new Dictionary<string, string>
    {
        ["grpc"] = "The CRI endpoint kubelet and crictl talk to.",
        ["metrics"] = "Prometheus metrics over plain HTTP.",
        ["tracing"] = "OpenTelemetry traces (one span per CRI call) exported over OTLP. Keys set here win over the\n" +
                      "standard OTEL_* environment variables; OTEL_* variables win over the built-in defaults.",
        ["stream"] = "The streaming server behind Exec, Attach and PortForward (kubectl exec/attach/port-forward, crictl exec -it):\n" +
                     "the rpcs answer a single-use URL on it (unused for a minute, it expires), served over SPDY/3.1 or WebSocket.",
        ["cgroup"] = "How containers' cgroups are managed.",
        ["cni"] = "Pod networking through CNI plugins. The first valid *.conf, *.conflist or *.json in conf_dir (lexical order)\n" +
                  "is the pod network; changes are picked up without a restart. Without one, the built-in default network\n" +
                  "(bridge + host-local + portmap) is used when default_network = \"builtin\".",
        ["image"] = "Image pulls.",
        ["registry"] = "Talking to image registries. Registries on loopback (localhost, 127.0.0.0/8, ::1) may use plain HTTP\n" +
                       "without configuration; per-registry settings go in [registry.hosts.\"<host>\"] tables (see below).",
    };

    /// <summary>The table of RuntimeClass handler tables, keyed by handler name.</summary>
    public const string RuntimeHandlersPath = "runtime.handlers";

    /// <summary>The comment above the runtime handler tables in `nacelle config default`.</summary>
    public const string RuntimeHandlersComment =
        "RuntimeClass handlers (RunPodSandbox's runtime_handler, a RuntimeClass's handler): \"\" and \"nacelle\" are always\n" +
        "nacelle's built-in core. One table per further handler; type = \"oci\" runs the pod's containers through an\n" +
        "external OCI runtime (runc, crun; runsc and kata-runtime untested), still under the pod's monitor (logs, exits,\n" +
        "restarts, ExecSync, streams and stats as with the built-in core): it gets a bundle (config.json from nacelle's\n" +
        "spec, the rootfs nacelle prepared) and is run as `<path> --root <root> [args...] create|start|exec|delete`;\n" +
        "a terminal (tty) comes back from the runtime over a --console-socket the pod's monitor serves.";

    /// <summary>Why <paramref name="name"/> cannot name a configured handler, or null (a DNS label, as RuntimeClass
    /// handlers are; "" and "nacelle" are the built-in ones).</summary>
    public static string? InvalidHandlerName(string name)
    {
        if (name is "" or "nacelle")
        {
            return $"'{name}' is the built-in handler's name and cannot be configured";
        }

        return name.Length > 63 || !name.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-') || name[0] == '-' || name[^1] == '-'
            ? $"'{name}' is not a handler name (a DNS label: at most 63 lower-case letters, digits or '-', as a RuntimeClass handler)"
            : null;
    }

    /// <summary>Keys of one [runtime.handlers.&lt;name&gt;] table; Path is the key name inside that table.</summary>
    public static readonly IReadOnlyList<ConfigKey<NacelleConfig.RuntimeHandlerSection>> RuntimeHandlerKeys =
    [
        new()
        {
            Path = "type", Type = ConfigValueType.String,
            Comment = "\"oci\": an external OCI runtime; \"nacelle\": the built-in core under this name too.",
            Get = h => h.Type, Set = (h, v) => h.Type = (string)v,
            Validate = v => (string)v is NacelleConfig.RuntimeHandlerTypes.Oci or NacelleConfig.RuntimeHandlerTypes.BuiltIn
                ? null : $"'{v}' is not one of oci, nacelle",
        },
        new()
        {
            Path = "path", Type = ConfigValueType.String,
            Comment = "The OCI runtime's executable, e.g. \"/usr/sbin/runc\" (type \"oci\").",
            Get = h => h.Path, Set = (h, v) => h.Path = (string)v, Validate = OptionalAbsolutePath,
        },
        new()
        {
            Path = "root", Type = ConfigValueType.String,
            Comment = "The runtime's state directory (its --root). Empty: <state>/runtimes/<name>.",
            Get = h => h.Root, Set = (h, v) => h.Root = (string)v, Validate = OptionalAbsolutePath,
        },
        new()
        {
            Path = "args", Type = ConfigValueType.StringList,
            Comment = "Global options put before every command, e.g. [\"--debug\"].",
            Get = h => h.Args, Set = (h, v) => h.Args = (List<string>)v,
            Validate = v => ((List<string>)v).FirstOrDefault(a => !a.StartsWith('-') || a.Contains('\0')) is { } bad
                ? $"'{bad}' is not an option (global runtime options start with '-')" : null,
        },
    ];

    /// <summary>The table of per-registry tables, keyed by registry host.</summary>
    public const string RegistryHostsPath = "registry.hosts";

    public static readonly IReadOnlyList<ConfigKey<NacelleConfig>> All =
    [
        new()
        {
            Path = "root", Type = ConfigValueType.String,
            Comment = "Persistent state: content store, snapshots, the metadata database.",
            Get = c => c.Root, Set = (c, v) => c.Root = (string)v, Validate = AbsolutePath,
        },
        new()
        {
            Path = "state", Type = ConfigValueType.String,
            Comment = "Volatile state (normally on tmpfs): monitor sockets, pinned namespaces, container bundles.",
            Get = c => c.State, Set = (c, v) => c.State = (string)v, Validate = AbsolutePath,
        },
        new()
        {
            Path = "log_level", Type = ConfigValueType.String, Reload = ConfigReload.Live,
            Comment = "Daemon log level: trace, debug, info, warn or error. Mutating CRI calls log at info, polled ones at debug.",
            Get = c => c.LogLevel, Set = (c, v) => c.LogLevel = (string)v,
            Validate = v => LogLevels.Contains((string)v) ? null : $"'{v}' is not one of {string.Join(", ", LogLevels)}",
        },
        new()
        {
            Path = "log_format", Type = ConfigValueType.String,
            Comment = "Log lines on stderr: text (one line each) or json (one object each, with pod/container ids as fields).\n" +
                      "Under systemd (JOURNAL_STREAM set) text lines carry syslog priority prefixes for the journal.",
            Get = c => c.LogFormat, Set = (c, v) => c.LogFormat = (string)v,
            Validate = v => (string)v is "text" or "json" ? null : $"'{v}' is not one of text, json",
        },
        new()
        {
            Path = "grpc.socket", Type = ConfigValueType.String,
            Comment = "Unix socket serving the CRI (created with mode 0660). kubelet: --container-runtime-endpoint=unix://<this path>.",
            Get = c => c.Grpc.Socket, Set = (c, v) => c.Grpc.Socket = (string)v, Validate = SocketPath,
        },
        new()
        {
            Path = "grpc.max_recv_message_size", Type = ConfigValueType.Integer,
            Comment = "Largest request message accepted, in bytes.",
            Get = c => c.Grpc.MaxRecvMessageSize, Set = (c, v) => c.Grpc.MaxRecvMessageSize = (long)v, Validate = MessageSize,
        },
        new()
        {
            Path = "grpc.max_send_message_size", Type = ConfigValueType.Integer,
            Comment = "Largest response message sent, in bytes.",
            Get = c => c.Grpc.MaxSendMessageSize, Set = (c, v) => c.Grpc.MaxSendMessageSize = (long)v, Validate = MessageSize,
        },
        new()
        {
            Path = "grpc.shutdown_timeout", Type = ConfigValueType.Duration,
            Comment = "On SIGTERM/SIGINT, how long in-flight calls may run before they are cut off.",
            Get = c => c.Grpc.ShutdownTimeout, Set = (c, v) => c.Grpc.ShutdownTimeout = (TimeSpan)v,
            Validate = v => (TimeSpan)v < TimeSpan.Zero || (TimeSpan)v > TimeSpan.FromMinutes(10) ? "must be between 0s and 10m" : null,
        },
        new()
        {
            Path = "metrics.enabled", Type = ConfigValueType.Boolean,
            Comment = "Serve Prometheus metrics at http://<address>/metrics.",
            Get = c => c.Metrics.Enabled, Set = (c, v) => c.Metrics.Enabled = (bool)v,
        },
        new()
        {
            Path = "metrics.address", Type = ConfigValueType.String,
            Comment = "host:port to listen on for /metrics (an IP address or localhost; keep it on loopback unless it is firewalled).",
            Get = c => c.Metrics.Address, Set = (c, v) => c.Metrics.Address = (string)v,
            Validate = v => TryParseListenAddress((string)v, out _, out var why) ? null : why,
        },
        new()
        {
            Path = "tracing.enabled", Type = ConfigValueType.Boolean,
            Comment = "Export traces. When this key is not set anywhere, tracing turns on if OTEL_EXPORTER_OTLP_ENDPOINT\n" +
                      "or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set; OTEL_SDK_DISABLED=true always turns it off.",
            Get = c => c.Tracing.Enabled, Set = (c, v) => c.Tracing.Enabled = (bool)v,
        },
        new()
        {
            Path = "tracing.endpoint", Type = ConfigValueType.String,
            Comment = "OTLP collector URL, e.g. http://127.0.0.1:4317 (grpc) or http://127.0.0.1:4318 (http/protobuf; /v1/traces\n" +
                      "is appended when the URL has no path). Empty: OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, else the OTLP default.",
            Get = c => c.Tracing.Endpoint, Set = (c, v) => c.Tracing.Endpoint = (string)v,
            Validate = v => (string)v == string.Empty || IsHttpUrl((string)v) ? null : $"'{v}' is not an absolute http:// or https:// URL",
        },
        new()
        {
            Path = "tracing.protocol", Type = ConfigValueType.String,
            Comment = "OTLP protocol: grpc or http/protobuf. Empty: OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL, else grpc.",
            Get = c => c.Tracing.Protocol, Set = (c, v) => c.Tracing.Protocol = (string)v,
            Validate = v => (string)v == string.Empty || TracingProtocols.Contains((string)v) ? null : $"'{v}' is not one of grpc, http/protobuf",
        },
        new()
        {
            Path = "tracing.sampling_ratio", Type = ConfigValueType.Float,
            Comment = "Fraction of traces started here that are sampled (0.0 to 1.0); a caller's sampled parent is always followed.\n" +
                      "When not set in a file: OTEL_TRACES_SAMPLER(_ARG), else 1.0.",
            Get = c => c.Tracing.SamplingRatio, Set = (c, v) => c.Tracing.SamplingRatio = (double)v,
            Validate = v => (double)v is >= 0.0 and <= 1.0 ? null : $"{((double)v).ToString(CultureInfo.InvariantCulture)} is not between 0.0 and 1.0",
        },
        new()
        {
            Path = "tracing.service_name", Type = ConfigValueType.String,
            Comment = "service.name resource attribute of exported spans.",
            Get = c => c.Tracing.ServiceName, Set = (c, v) => c.Tracing.ServiceName = (string)v,
            Validate = v => string.IsNullOrWhiteSpace((string)v) ? "must not be empty" : null,
        },
        new()
        {
            Path = "stream.address", Type = ConfigValueType.String,
            Comment = "IP address the streaming server listens on, also the host of the URLs it hands out (kubelet connects to\n" +
                      "them). Keep it on loopback unless the URLs must be reached from elsewhere.",
            Get = c => c.Stream.Address, Set = (c, v) => c.Stream.Address = (string)v, Validate = StreamAddress,
        },
        new()
        {
            Path = "stream.port", Type = ConfigValueType.Integer,
            Comment = "TCP port of the streaming server; 0: any free port (the URLs name the one in use).",
            Get = c => c.Stream.Port, Set = (c, v) => c.Stream.Port = (long)v,
            Validate = v => (long)v is >= 0 and <= 65535 ? null : $"{v} is not a port (0-65535)",
        },
        new()
        {
            Path = "stream.cert_file", Type = ConfigValueType.String,
            Comment = "PEM certificate for https URLs (with key_file); empty: plain http.",
            Get = c => c.Stream.CertFile, Set = (c, v) => c.Stream.CertFile = (string)v, Validate = OptionalAbsolutePath,
        },
        new()
        {
            Path = "stream.key_file", Type = ConfigValueType.String,
            Comment = "PEM private key of cert_file.",
            Get = c => c.Stream.KeyFile, Set = (c, v) => c.Stream.KeyFile = (string)v, Validate = OptionalAbsolutePath,
        },
        new()
        {
            Path = "stream.idle_timeout", Type = ConfigValueType.Duration,
            Comment = "A stream connection that carries nothing for this long is closed, its command killed (as kubelet's\n" +
                      "--streaming-connection-idle-timeout). 0s: never.",
            Get = c => c.Stream.IdleTimeout, Set = (c, v) => c.Stream.IdleTimeout = (TimeSpan)v,
            Validate = v => (TimeSpan)v < TimeSpan.Zero || (TimeSpan)v > TimeSpan.FromDays(7) ? "must be between 0s and 168h" : null,
        },
        new()
        {
            Path = "stream.creation_timeout", Type = ConfigValueType.Duration,
            Comment = "How long a SPDY client may take to open the streams of a session (or of one forwarded connection).",
            Get = c => c.Stream.CreationTimeout, Set = (c, v) => c.Stream.CreationTimeout = (TimeSpan)v,
            Validate = v => (TimeSpan)v < TimeSpan.FromSeconds(1) || (TimeSpan)v > TimeSpan.FromMinutes(10) ? "must be between 1s and 10m" : null,
        },
        new()
        {
            Path = "stream.max_streams", Type = ConfigValueType.Integer,
            Comment = "Streams open at once on this node: each exec or attach session, each port-forward session and each\n" +
                      "connection forwarded through it counts one. More are refused (HTTP 429, or ResourceExhausted).",
            Get = c => c.Stream.MaxStreams, Set = (c, v) => c.Stream.MaxStreams = (long)v,
            Validate = v => (long)v is >= 1 and <= 65536 ? null : $"{v} must be between 1 and 65536",
        },
        new()
        {
            Path = "stream.max_streams_per_pod", Type = ConfigValueType.Integer,
            Comment = "Streams open at once for one pod (counted as max_streams is).",
            Get = c => c.Stream.MaxStreamsPerPod, Set = (c, v) => c.Stream.MaxStreamsPerPod = (long)v,
            Validate = v => (long)v is >= 1 and <= 65536 ? null : $"{v} must be between 1 and 65536",
        },
        new()
        {
            Path = "cgroup.driver", Type = ConfigValueType.String,
            Comment = "cgroup driver; kubelet's --cgroup-driver must match (RuntimeConfig reports it, and kubelet 1.28+ follows it).\n" +
                      "cgroupfs: nacelle makes the cgroup directories itself. systemd: containers run in transient scopes\n" +
                      "(nacelle-<id>.scope) that systemd creates over D-Bus in the pod's slice, limits set as unit properties;\n" +
                      "needs systemd as init. Pods without a cgroup parent go in nacelle.slice.",
            Get = c => c.Cgroup.Driver, Set = (c, v) => c.Cgroup.Driver = (string)v,
            Validate = v => (string)v is "cgroupfs" or "systemd" ? null : $"'{v}' is not a cgroup driver (cgroupfs, systemd)",
        },
        new()
        {
            Path = "cni.conf_dir", Type = ConfigValueType.String, Reload = ConfigReload.Live,
            Comment = "Directory of CNI network configurations (as containerd's and CRI-O's).",
            Get = c => c.Cni.ConfDir, Set = (c, v) => c.Cni.ConfDir = (string)v, Validate = AbsolutePath,
        },
        new()
        {
            Path = "cni.bin_dirs", Type = ConfigValueType.StringList, Reload = ConfigReload.Live,
            Comment = "Directories searched in order for CNI plugin executables (passed to plugins as CNI_PATH).",
            Get = c => c.Cni.BinDirs, Set = (c, v) => c.Cni.BinDirs = (List<string>)v, Validate = DirectoryList,
        },
        new()
        {
            Path = "cni.cache_dir", Type = ConfigValueType.String,
            Comment = "Cached CNI results (so pods can be detached after a restart) and the built-in network's IP allocations.\n" +
                      "Empty: <root>/cni.",
            Get = c => c.Cni.CacheDir, Set = (c, v) => c.Cni.CacheDir = (string)v, Validate = OptionalAbsolutePath,
        },
        new()
        {
            Path = "cni.plugin_timeout", Type = ConfigValueType.Duration, Reload = ConfigReload.Live,
            Comment = "How long one plugin invocation (ADD, DEL, CHECK, STATUS) may run before it is killed.",
            Get = c => c.Cni.PluginTimeout, Set = (c, v) => c.Cni.PluginTimeout = (TimeSpan)v,
            Validate = v => (TimeSpan)v < TimeSpan.FromSeconds(1) || (TimeSpan)v > TimeSpan.FromMinutes(10) ? "must be between 1s and 10m" : null,
        },
        new()
        {
            Path = "cni.default_network", Type = ConfigValueType.String, Reload = ConfigReload.Live,
            Comment = "While conf_dir holds no valid configuration: \"none\" leaves pod networking to the cluster (NetworkReady stays\n" +
                      "false until its network add-on installs a configuration; the right choice on a cluster node), \"builtin\" uses\n" +
                      "nacelle's own single-host network (bridge + host-local + portmap; scripts/run.sh passes --default-network builtin).",
            Get = c => c.Cni.DefaultNetwork, Set = (c, v) => c.Cni.DefaultNetwork = (string)v,
            Validate = v => DefaultNetworkChoices.Contains((string)v) ? null : $"'{v}' is not one of {string.Join(", ", DefaultNetworkChoices)}",
            // 0.1.0 took a boolean: true for the built-in network, false for none.
            FromOlderRelease = raw => raw is bool builtin ? builtin ? NacelleConfig.CniSection.BuiltinNetwork : NacelleConfig.CniSection.NoDefaultNetwork : null,
        },
        new()
        {
            Path = "cni.default_masquerade", Type = ConfigValueType.Boolean, Reload = ConfigReload.Live,
            Comment = "The built-in network masquerades traffic from pods to addresses outside the pod range (the bridge plugin's\n" +
                      "ipMasq), so pods reach beyond this host through its address.",
            Get = c => c.Cni.DefaultMasquerade, Set = (c, v) => c.Cni.DefaultMasquerade = (bool)v,
        },
        new()
        {
            Path = "cni.default_pod_cidr", Type = ConfigValueType.String, Reload = ConfigReload.Live,
            Comment = "Pod CIDR of the built-in network until kubelet sets the node's (UpdateRuntimeConfig); an IPv4 and an IPv6\n" +
                      "range separated by a comma for dual stack.",
            Get = c => c.Cni.DefaultPodCidr, Set = (c, v) => c.Cni.DefaultPodCidr = (string)v, Validate = PodCidr,
        },
        new()
        {
            Path = "cni.default_bridge", Type = ConfigValueType.String, Reload = ConfigReload.Live,
            Comment = "Linux bridge of the built-in network.",
            Get = c => c.Cni.DefaultBridge, Set = (c, v) => c.Cni.DefaultBridge = (string)v, Validate = InterfaceName,
        },
        new()
        {
            Path = "image.max_concurrent_downloads", Type = ConfigValueType.Integer,
            Comment = "Layers one pull downloads at the same time (each unpacks as soon as it and its parent are ready).",
            Get = c => c.Image.MaxConcurrentDownloads, Set = (c, v) => c.Image.MaxConcurrentDownloads = (long)v,
            Validate = v => (long)v is >= 1 and <= 32 ? null : $"{v} must be between 1 and 32",
        },
        new()
        {
            Path = "image.pinned_images", Type = ConfigValueType.StringList, Reload = ConfigReload.Live,
            Comment = "Images reported as pinned (kubelet's image garbage collection keeps them) and refused by RemoveImage.\n" +
                      "An image name pins that name (without a tag or digest: every tag and digest of the repository);\n" +
                      "a pattern with * matches full normalised names, e.g. [\"registry.k8s.io/pause:*\", \"docker.io/library/busybox\"].",
            Get = c => c.Image.PinnedImages, Set = (c, v) => c.Image.PinnedImages = (List<string>)v,
            Validate = v => ((List<string>)v).Select(Nacelle.ImageService.PinnedImages.Invalid).FirstOrDefault(why => why is not null),
        },
        new()
        {
            Path = "registry.no_progress_timeout", Type = ConfigValueType.Duration, Reload = ConfigReload.Live,
            Comment = "A download attempt that receives no byte for this long is abandoned and retried (unpacking does not count).",
            Get = c => c.Registry.NoProgressTimeout, Set = (c, v) => c.Registry.NoProgressTimeout = (TimeSpan)v,
            Validate = v => (TimeSpan)v < TimeSpan.FromSeconds(1) || (TimeSpan)v > TimeSpan.FromHours(1) ? "must be between 1s and 1h" : null,
        },
        new()
        {
            Path = "registry.max_attempts", Type = ConfigValueType.Integer, Reload = ConfigReload.Live,
            Comment = "Attempts per registry request on transient failures (connection errors, 5xx, 429), with exponential backoff.",
            Get = c => c.Registry.MaxAttempts, Set = (c, v) => c.Registry.MaxAttempts = (long)v,
            Validate = v => (long)v is >= 1 and <= 20 ? null : $"{v} must be between 1 and 20",
        },
        new()
        {
            Path = "registry.auth_file", Type = ConfigValueType.String, Reload = ConfigReload.Live,
            Comment = "Node credentials in Docker's config.json format ({\"auths\": {\"<registry>\": {\"auth\": \"<base64 user:password>\"}}},\n" +
                      "or username/password, identitytoken, registrytoken), used when a pull brings no credentials of its own;\n" +
                      "re-read when it changes. credHelpers and credsStore are refused. Empty: none.",
            Get = c => c.Registry.AuthFile, Set = (c, v) => c.Registry.AuthFile = (string)v, Validate = OptionalAbsolutePath,
        },
    ];

    /// <summary>Keys of one [registry.hosts."&lt;host&gt;"] table; Path is the key name inside that table.</summary>
    public static readonly IReadOnlyList<ConfigKey<NacelleConfig.RegistryHostSection>> RegistryHostKeys =
    [
        new()
        {
            Path = "mirrors", Type = ConfigValueType.StringList, Reload = ConfigReload.Live,
            Comment = "Mirror endpoints tried in order before the registry itself, e.g. [\"https://mirror.example:5000\"].",
            Get = h => h.Mirrors, Set = (h, v) => h.Mirrors = (List<string>)v,
            Validate = v => ((List<string>)v).FirstOrDefault(m => !IsHttpUrl(m)) is { } bad ? $"mirror '{bad}' is not an absolute http:// or https:// URL" : null,
        },
        new()
        {
            Path = "server", Type = ConfigValueType.String, Reload = ConfigReload.Live,
            Comment = "Serve this registry from this URL instead of its own host, which is then never contacted (tried after the\n" +
                      "mirrors), e.g. \"https://registry.internal:5000\". Empty: the registry's own host.",
            Get = h => h.Server, Set = (h, v) => h.Server = (string)v,
            Validate = v => (string)v == string.Empty || IsHttpUrl((string)v) ? null : $"'{v}' is not an absolute http:// or https:// URL",
        },
        new()
        {
            Path = "fallback", Type = ConfigValueType.Boolean, Reload = ConfigReload.Live,
            Comment = "After the mirrors, try the registry itself (or server). false: the mirrors only, never the origin, for\n" +
                      "air-gapped nodes (needs at least one mirror).",
            Get = h => h.Fallback, Set = (h, v) => h.Fallback = (bool)v,
        },
        new()
        {
            Path = "plain_http", Type = ConfigValueType.Boolean, Reload = ConfigReload.Live,
            Comment = "Talk plain HTTP to this registry (never needed for loopback registries).",
            Get = h => h.PlainHttp, Set = (h, v) => h.PlainHttp = (bool)v,
        },
        new()
        {
            Path = "skip_verify", Type = ConfigValueType.Boolean, Reload = ConfigReload.Live,
            Comment = "Do not verify this registry's TLS certificate (unsafe; prefer ca_file).",
            Get = h => h.SkipVerify, Set = (h, v) => h.SkipVerify = (bool)v,
        },
        new()
        {
            Path = "ca_file", Type = ConfigValueType.String, Reload = ConfigReload.Live,
            Comment = "PEM CA bundle trusted for this registry, in addition to the system CAs.",
            Get = h => h.CaFile, Set = (h, v) => h.CaFile = (string)v, Validate = OptionalAbsolutePath,
        },
        new()
        {
            Path = "client_cert_file", Type = ConfigValueType.String, Reload = ConfigReload.Live,
            Comment = "PEM client certificate for mutual TLS (with client_key_file).",
            Get = h => h.ClientCertFile, Set = (h, v) => h.ClientCertFile = (string)v, Validate = OptionalAbsolutePath,
        },
        new()
        {
            Path = "client_key_file", Type = ConfigValueType.String, Reload = ConfigReload.Live,
            Comment = "PEM private key of client_cert_file.",
            Get = h => h.ClientKeyFile, Set = (h, v) => h.ClientKeyFile = (string)v, Validate = OptionalAbsolutePath,
        },
    ];

    public static ConfigKey<NacelleConfig>? Find(string path) => All.FirstOrDefault(k => k.Path == path);

    /// <summary>Why <paramref name="host"/> cannot name a registry, or null: a host[:port] as in image names.</summary>
    public static string? InvalidRegistryHost(string host) =>
        host.Length == 0 || host.Contains('/') || host.Contains("://", StringComparison.Ordinal) || host.Any(char.IsWhiteSpace)
            ? $"'{host}' is not a registry host (host or host:port, as written in image names)"
            : null;

    /// <summary>A specific IP address: an unspecified one (0.0.0.0, ::) would listen everywhere and make URLs no client can use.</summary>
    private static string? StreamAddress(object value)
    {
        var text = (string)value;
        if (!System.Net.IPAddress.TryParse(text, out var address))
        {
            return $"'{text}' is not an IP address";
        }

        return address.Equals(System.Net.IPAddress.Any) || address.Equals(System.Net.IPAddress.IPv6Any)
            ? $"'{text}' is no specific address: it is also the host of the URLs handed out; name the address kubelet reaches"
            : null;
    }

    private static string? OptionalAbsolutePath(object value) => (string)value == string.Empty ? null : AbsolutePath(value);

    public static bool TryParseListenAddress(string value, out IPEndPoint endPoint, out string reason)
    {
        endPoint = new IPEndPoint(IPAddress.Loopback, 0);
        reason = string.Empty;
        var colon = value.LastIndexOf(':');
        if (colon <= 0 || colon == value.Length - 1)
        {
            reason = $"'{value}' is not host:port";
            return false;
        }

        var host = value[..colon];
        if (!int.TryParse(value.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            reason = $"'{value}': port must be a number from 1 to 65535";
            return false;
        }

        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            host = host[1..^1];
        }

        IPAddress? address;
        if (host == "localhost")
        {
            address = IPAddress.Loopback;
        }
        else if (!IPAddress.TryParse(host, out address))
        {
            reason = $"'{value}': host must be an IP address or localhost";
            return false;
        }

        endPoint = new IPEndPoint(address, port);
        return true;
    }

    private static bool IsHttpUrl(string value) =>
        Uri.TryCreate(value, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps);

    private static string? AbsolutePath(object value)
    {
        var path = (string)value;
        if (!path.StartsWith('/'))
        {
            return $"'{path}' is not an absolute path";
        }

        return path.Contains('\0') ? "path contains a NUL byte" : null;
    }

    private static string? SocketPath(object value)
    {
        var why = AbsolutePath(value);
        if (why is not null)
        {
            return why;
        }

        // sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
        var length = System.Text.Encoding.UTF8.GetByteCount((string)value);
        return length > 107 ? $"'{value}' is {length} bytes long; a unix socket path may be at most 107" : null;
    }

    private static string? DirectoryList(object value)
    {
        var list = (List<string>)value;
        if (list.Count == 0)
        {
            return "must name at least one directory";
        }

        return list.Select(AbsolutePath).FirstOrDefault(why => why is not null);
    }

    private static string? PodCidr(object value)
    {
        try
        {
            _ = Nacelle.Sandbox.Network.DefaultNetwork.ParsePodCidrs((string)value);
            return null;
        }
        catch (Nacelle.Common.NacelleException e)
        {
            return e.Message;
        }
    }

    /// <summary>Why a name cannot be a Linux network interface (IFNAMSIZ 16 with the NUL; no '/', ':' or white space).</summary>
    private static string? InterfaceName(object value)
    {
        var name = (string)value;
        if (name.Length == 0 || name is "." or "..")
        {
            return $"'{name}' is not an interface name";
        }

        if (System.Text.Encoding.UTF8.GetByteCount(name) > 15)
        {
            return $"'{name}' is longer than 15 bytes, the limit of a Linux interface name";
        }

        return name.Any(c => c is '/' or ':' or '\0' || char.IsWhiteSpace(c))
            ? $"'{name}' contains '/', ':' or white space, which a Linux interface name may not"
            : null;
    }

    private static string? MessageSize(object value) =>
        (long)value is < 4096 or > int.MaxValue ? $"{value} must be between 4096 and {int.MaxValue} bytes" : null;
}
