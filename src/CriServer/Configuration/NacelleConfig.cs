using Nacelle.Sandbox.Network;

namespace Nacelle.CriServer.Configuration;

/// <summary>
/// The daemon's effective configuration. Defaults here are the embedded defaults; files, drop-ins and
/// flags are applied over them by <see cref="ConfigLoader"/> through the key table in <see cref="ConfigKeys"/>.
/// </summary>
public sealed class NacelleConfig
{
    public string Root { get; set; } = "/var/lib/nacelle";
    public string State { get; set; } = "/run/nacelle";
    public string LogLevel { get; set; } = "info";
    public string LogFormat { get; set; } = "text";
    public GrpcSection Grpc { get; } = new();
    public MetricsSection Metrics { get; } = new();
    public TracingSection Tracing { get; } = new();
    public CgroupSection Cgroup { get; } = new();
    public ImageSection Image { get; } = new();
    public RegistrySection Registry { get; } = new();
    public CniSection Cni { get; } = new();
    public StreamSection Stream { get; } = new();
    public RuntimeSection Runtime { get; } = new();

    public sealed class RuntimeSection
    {
        /// <summary>RuntimeClass handlers by name ([runtime.handlers.&lt;name&gt;]), besides the built-in "" and "nacelle".</summary>
        public SortedDictionary<string, RuntimeHandlerSection> Handlers { get; } = new(StringComparer.Ordinal);
    }

    public sealed class RuntimeHandlerSection
    {
        /// <summary>"oci" (an external OCI runtime) or "nacelle" (the built-in core under another name).</summary>
        public string Type { get; set; } = RuntimeHandlerTypes.Oci;

        /// <summary>The runtime's executable (type "oci"), an absolute path.</summary>
        public string Path { get; set; } = string.Empty;

        /// <summary>The runtime's state directory (its --root); empty: &lt;state&gt;/runtimes/&lt;name&gt;.</summary>
        public string Root { get; set; } = string.Empty;

        /// <summary>Global options given to the runtime before every command.</summary>
        public List<string> Args { get; set; } = [];

        /// <summary>The root in effect: <see cref="Root"/>, or &lt;state&gt;/runtimes/&lt;name&gt; when it is empty.</summary>
        public string EffectiveRoot(string state, string name) => Root.Length > 0 ? Root : System.IO.Path.Combine(state, "runtimes", name);
    }

    /// <summary>Values of runtime.handlers.&lt;name&gt;.type.</summary>
    public static class RuntimeHandlerTypes
    {
        public const string Oci = "oci";
        public const string BuiltIn = "nacelle";
    }

    public sealed class GrpcSection
    {
        public string Socket { get; set; } = "/run/nacelle/nacelle.sock";
        public long MaxRecvMessageSize { get; set; } = 16 * 1024 * 1024;
        public long MaxSendMessageSize { get; set; } = 16 * 1024 * 1024;
        public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(10);
    }

    public sealed class MetricsSection
    {
        public bool Enabled { get; set; } = true;
        public string Address { get; set; } = "127.0.0.1:9654";
    }

    public sealed class TracingSection
    {
        public bool Enabled { get; set; }
        public string Endpoint { get; set; } = string.Empty;
        public string Protocol { get; set; } = string.Empty;
        public double SamplingRatio { get; set; } = 1.0;
        public string ServiceName { get; set; } = "nacelle";
    }

    public sealed class StreamSection
    {
        public string Address { get; set; } = "127.0.0.1";
        public long Port { get; set; }
        public string CertFile { get; set; } = string.Empty;
        public string KeyFile { get; set; } = string.Empty;
        public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromHours(4);
        public TimeSpan CreationTimeout { get; set; } = TimeSpan.FromSeconds(30);
        public long MaxStreams { get; set; } = 256;
        public long MaxStreamsPerPod { get; set; } = 64;
    }

    public sealed class CgroupSection
    {
        public string Driver { get; set; } = "cgroupfs";
    }

    public sealed class ImageSection
    {
        public long MaxConcurrentDownloads { get; set; } = 3;

        /// <summary>Patterns of images reported as pinned and refused by RemoveImage.</summary>
        public List<string> PinnedImages { get; set; } = [];
    }

    public sealed class RegistrySection
    {
        public TimeSpan NoProgressTimeout { get; set; } = TimeSpan.FromMinutes(1);
        public long MaxAttempts { get; set; } = 4;

        /// <summary>Node credentials (Docker config.json); empty for none.</summary>
        public string AuthFile { get; set; } = string.Empty;

        /// <summary>Per-registry settings by host ("registry.example:5000", "docker.io").</summary>
        public SortedDictionary<string, RegistryHostSection> Hosts { get; } = new(StringComparer.Ordinal);
    }

    public sealed class RegistryHostSection
    {
        public List<string> Mirrors { get; set; } = [];

        /// <summary>The URL serving this registry instead of its own host; empty for the host itself.</summary>
        public string Server { get; set; } = string.Empty;

        /// <summary>Whether the origin (or <see cref="Server"/>) is tried after the mirrors.</summary>
        public bool Fallback { get; set; } = true;

        public bool PlainHttp { get; set; }
        public bool SkipVerify { get; set; }
        public string CaFile { get; set; } = string.Empty;
        public string ClientCertFile { get; set; } = string.Empty;
        public string ClientKeyFile { get; set; } = string.Empty;
    }

    public sealed class CniSection
    {
        public string ConfDir { get; set; } = CniOptions.DefaultConfDir;
        public List<string> BinDirs { get; set; } = [.. CniOptions.DefaultBinDirs];

        /// <summary>Result cache and the built-in network's IP allocations; empty means &lt;root&gt;/cni.</summary>
        public string CacheDir { get; set; } = string.Empty;

        public TimeSpan PluginTimeout { get; set; } = TimeSpan.FromSeconds(60);

        /// <summary>cni.default_network: no network of our own; the cluster's network add-on provides one.</summary>
        public const string NoDefaultNetwork = "none";

        /// <summary>cni.default_network: the built-in single-host network.</summary>
        public const string BuiltinNetwork = "builtin";

        /// <summary>What runs while the conf dir has no valid configuration: <see cref="NoDefaultNetwork"/> (the default) or <see cref="BuiltinNetwork"/>.</summary>
        public string DefaultNetwork { get; set; } = NoDefaultNetwork;

        /// <summary>Whether the built-in network masquerades traffic leaving the pod range.</summary>
        public bool DefaultMasquerade { get; set; } = true;

        public string DefaultPodCidr { get; set; } = CniOptions.DefaultPodCidrValue;
        public string DefaultBridge { get; set; } = CniOptions.DefaultBridgeNameValue;

        /// <summary>The cache directory in effect: <see cref="CacheDir"/>, or &lt;root&gt;/cni when it is empty.</summary>
        public string EffectiveCacheDir(string root) => CacheDir.Length > 0 ? CacheDir : System.IO.Path.Combine(root, "cni");
    }
}
