namespace Nacelle.Sandbox.Network;

/// <summary>Where the CNI client looks for configuration and plugins, where it keeps its result cache, and its limits.</summary>
public sealed record CniOptions
{
    /// <summary>The default configuration directory (as containerd and CRI-O).</summary>
    public const string DefaultConfDir = "/etc/cni/net.d";

    /// <summary>The default plugin directories: the upstream location, then Debian's (containernetworking-plugins).</summary>
    public static readonly IReadOnlyList<string> DefaultBinDirs = ["/opt/cni/bin", "/usr/lib/cni"];

    /// <summary>The default result cache directory (as libcni).</summary>
    public const string DefaultCacheDir = "/var/lib/cni";

    /// <summary>The pod CIDR of the built-in default network until <see cref="CniNetwork.UpdatePodCidr"/> replaces it.</summary>
    public const string DefaultPodCidrValue = "10.88.0.0/16";

    /// <summary>The name of the built-in default network.</summary>
    public const string DefaultNetworkNameValue = "nacelle-default";

    /// <summary>The bridge of the built-in default network.</summary>
    public const string DefaultBridgeNameValue = "nacelle0";

    /// <summary>Directory scanned for <c>*.conf</c>, <c>*.conflist</c> and <c>*.json</c> in lexical order.</summary>
    public string ConfDir { get; init; } = DefaultConfDir;

    /// <summary>Directories searched, in order, for plugin executables (passed to plugins as CNI_PATH).</summary>
    public IReadOnlyList<string> BinDirs { get; init; } = DefaultBinDirs;

    /// <summary>Root of the result cache; results live under <c>results/</c> below it.</summary>
    public string CacheDir { get; init; } = DefaultCacheDir;

    /// <summary>How long one plugin invocation may run before it is killed.</summary>
    public TimeSpan PluginTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Whether the built-in default network is used when the conf dir holds no valid configuration.</summary>
    public bool EnableDefaultNetwork { get; init; } = true;

    /// <summary>Whether the built-in default network masquerades traffic leaving the pod range (the bridge plugin's ipMasq).</summary>
    public bool DefaultNetworkMasquerade { get; init; } = true;

    /// <summary>Pod CIDR(s) of the built-in default network (comma-separated for dual stack).</summary>
    public string DefaultPodCidr { get; init; } = DefaultPodCidrValue;

    /// <summary>Name of the built-in default network.</summary>
    public string DefaultNetworkName { get; init; } = DefaultNetworkNameValue;

    /// <summary>Linux bridge of the built-in default network.</summary>
    public string DefaultBridgeName { get; init; } = DefaultBridgeNameValue;

    /// <summary>host-local's data directory for the built-in default network; null leaves the plugin's default (/var/lib/cni/networks).</summary>
    public string? HostLocalDataDir { get; init; }

    /// <summary>Interface name of the pod network inside the pod.</summary>
    public string PodInterfaceName { get; init; } = "eth0";

    /// <summary>Whether a separate <c>lo</c> bring-up with the loopback plugin runs before the pod network (as containerd).</summary>
    public bool SetUpLoopback { get; init; } = true;

    /// <summary>Interval of the conf dir re-scan that backs up the file system watcher.</summary>
    public TimeSpan RescanInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Directory holding cached ADD results.</summary>
    public string ResultsDir => Path.Combine(CacheDir, "results");
}
