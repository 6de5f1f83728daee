using Nacelle.CriServer.Configuration;

namespace Nacelle.Tests.Unit.Configuration;

public sealed class ConfigLoaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("nacelle-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string relative, string text)
    {
        var path = Path.Combine(_dir, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    private ConfigSources Sources(string? config = null, params ConfigOverride[] overrides)
    {
        var path = config ?? Path.Combine(_dir, "config.toml");
        return new ConfigSources(path, config is not null, ConfigSources.DropInDirectoryFor(path), overrides);
    }

    [Fact]
    public void NoFileGivesTheEmbeddedDefaults()
    {
        var loaded = ConfigLoader.Load(Sources());

        Assert.Empty(loaded.Files);
        Assert.Empty(loaded.ExplicitKeys);
        Assert.Equal("/var/lib/nacelle", loaded.Config.Root);
        Assert.Equal("/run/nacelle", loaded.Config.State);
        Assert.Equal("/run/nacelle/nacelle.sock", loaded.Config.Grpc.Socket);
        Assert.Equal("info", loaded.Config.LogLevel);
        Assert.True(loaded.Config.Metrics.Enabled);
        Assert.False(loaded.Config.Tracing.Enabled);
        Assert.Equal("cgroupfs", loaded.Config.Cgroup.Driver);
    }

    [Fact]
    public void MainFileThenDropInsInLexicalOrderThenFlags()
    {
        var main = Write("config.toml", """
            root = "/srv/nacelle"
            log_level = "debug"
            [grpc]
            socket = "/run/a.sock"
            shutdown_timeout = "30s"
            [metrics]
            address = "127.0.0.1:9100"
            """);
        Write("config.d/20-late.toml", "[metrics]\naddress = \"127.0.0.1:9300\"\n");
        Write("config.d/10-early.toml", "[metrics]\naddress = \"127.0.0.1:9200\"\nenabled = false\n");
        Write("config.d/ignored.txt", "this is not toml");

        var loaded = ConfigLoader.Load(Sources(main, new ConfigOverride("--log-level", "log_level", "warn")));

        Assert.Equal([main, Path.Combine(_dir, "config.d/10-early.toml"), Path.Combine(_dir, "config.d/20-late.toml")], loaded.Files);
        Assert.Equal("/srv/nacelle", loaded.Config.Root);
        Assert.Equal("/run/a.sock", loaded.Config.Grpc.Socket);
        Assert.Equal(TimeSpan.FromSeconds(30), loaded.Config.Grpc.ShutdownTimeout);
        Assert.Equal("127.0.0.1:9300", loaded.Config.Metrics.Address); // the later drop-in wins
        Assert.False(loaded.Config.Metrics.Enabled);                    // kept from the earlier drop-in
        Assert.Equal("warn", loaded.Config.LogLevel);                   // the flag wins over the file
        Assert.Contains("metrics.address", loaded.ExplicitKeys);
        Assert.DoesNotContain("tracing.enabled", loaded.ExplicitKeys);
    }

    [Fact]
    public void AnExplicitConfigFileMustExist()
    {
        var missing = Path.Combine(_dir, "nope.toml");
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load(Sources(missing)));
        Assert.Equal(missing, e.Origin);
        Assert.Contains("does not exist", e.Message);
    }

    [Fact]
    public void FlagValuesAreValidatedLikeFileValues()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load(Sources(null, new ConfigOverride("--root", "root", "relative/dir"))));
        Assert.Equal("--root", e.Origin);
        Assert.Equal("root", e.Key);
        Assert.Contains("not an absolute path", e.Reason);
    }

    public static TheoryData<string, string, string> InvalidFiles => new()
    {
        // TOML text, the key the error must name, a fragment of the reason.
        { "root = \"var/lib\"", "root", "not an absolute path" },
        { "state = \"tmp\"", "state", "not an absolute path" },
        { "state = \"/var/lib/nacelle/\"", "state", "must differ from root" },
        { "log_level = \"loud\"", "log_level", "'loud' is not one of trace, debug, info, warn, error" },
        { "log_level = 3", "log_level", "expected a string, got the integer 3" },
        { "log_format = \"xml\"", "log_format", "not one of text, json" },
        { "rooot = \"/x\"", "rooot", "unknown key (did you mean 'root'?)" },
        { "[grpc]\nsocket = \"nacelle.sock\"", "grpc.socket", "not an absolute path" },
        { "[grpc]\nsocket = \"/" + new string('s', 120) + "\"", "grpc.socket", "at most 107" },
        { "[grpc]\nmax_recv_message_size = 10", "grpc.max_recv_message_size", "between 4096" },
        { "[grpc]\nmax_send_message_size = \"16M\"", "grpc.max_send_message_size", "expected an integer, got the string \"16M\"" },
        { "[grpc]\nshutdown_timeout = \"soon\"", "grpc.shutdown_timeout", "'soon' is not a duration" },
        { "[grpc]\nshutdown_timeout = \"1h\"", "grpc.shutdown_timeout", "between 0s and 10m" },
        { "[grpc]\nshutdown_timeout = 10", "grpc.shutdown_timeout", "expected a duration string" },
        { "[grpc]\nsockt = \"/x\"", "grpc.sockt", "unknown key (did you mean 'grpc.socket'?)" },
        { "grpc = 5", "grpc", "expected a table ([grpc]), got the integer 5" },
        { "[metrics]\nenabled = \"yes\"", "metrics.enabled", "expected a boolean (true or false), got the string \"yes\"" },
        { "[metrics]\naddress = \"127.0.0.1\"", "metrics.address", "is not host:port" },
        { "[metrics]\naddress = \"127.0.0.1:0\"", "metrics.address", "port must be a number from 1 to 65535" },
        { "[metrics]\naddress = \"127.0.0.1:70000\"", "metrics.address", "port must be a number from 1 to 65535" },
        { "[metrics]\naddress = \"example.com:9100\"", "metrics.address", "host must be an IP address or localhost" },
        { "[tracing]\nendpoint = \"collector:4317\"", "tracing.endpoint", "not an absolute http:// or https:// URL" },
        { "[tracing]\nprotocol = \"thrift\"", "tracing.protocol", "'thrift' is not one of grpc, http/protobuf" },
        { "[tracing]\nsampling_ratio = 1.5", "tracing.sampling_ratio", "1.5 is not between 0.0 and 1.0" },
        { "[tracing]\nsampling_ratio = -1", "tracing.sampling_ratio", "-1 is not between 0.0 and 1.0" },
        { "[tracing]\nservice_name = \" \"", "tracing.service_name", "must not be empty" },
        { "[cgroup]\ndriver = \"cgroupv2\"", "cgroup.driver", "'cgroupv2' is not a cgroup driver (cgroupfs, systemd)" },
        { "[cgroup]\ndriver = \"cgroupv3\"", "cgroup.driver", "'cgroupv3' is not a cgroup driver" },
        { "[unknown]\nx = 1", "unknown", "unknown key" },
        { "[image]\nmax_concurrent_downloads = 0", "image.max_concurrent_downloads", "between 1 and 32" },
        { "[registry]\nno_progress_timeout = \"10ms\"", "registry.no_progress_timeout", "between 1s and 1h" },
        { "[registry.hosts.\"https://r.example\"]\nplain_http = true", "registry.hosts.\"https://r.example\"", "not a registry host" },
        { "[registry.hosts.\"r.example\"]\nplaintext = true", "registry.hosts.\"r.example\".plaintext", "unknown key (registry tables take mirrors," },
        { "[registry.hosts.\"r.example\"]\nmirrors = \"https://m\"", "registry.hosts.\"r.example\".mirrors", "expected an array of strings, got the string" },
        { "[registry.hosts.\"r.example\"]\nmirrors = [\"m.example:5000\"]", "registry.hosts.\"r.example\".mirrors", "mirror 'm.example:5000' is not an absolute http" },
        { "[registry.hosts.\"r.example\"]\nca_file = \"ca.pem\"", "registry.hosts.\"r.example\".ca_file", "not an absolute path" },
        { "[registry]\nhosts = 3", "registry.hosts", "expected a table of registry tables" },
        { "[image]\npinned_images = [\"registry.k8s.io/pause:3.10\", \"*\"]", "image.pinned_images", "would pin every image" },
        { "[image]\npinned_images = [\"Pause\"]", "image.pinned_images", "must be lowercase" },
        { "[registry]\nauth_file = \"auth.json\"", "registry.auth_file", "'auth.json' is not an absolute path" },
        { "[registry.hosts.\"r.example\"]\nserver = \"r-copy.example\"", "registry.hosts.\"r.example\".server", "'r-copy.example' is not an absolute http:// or https:// URL" },
        { "[registry.hosts.\"r.example\"]\nfallback = false", "registry.hosts.\"r.example\".fallback", "false needs at least one mirror" },
        { "[registry.hosts.\"r.example\"]\nmirrors = [\"https://m.example\"]\nfallback = false\nserver = \"https://c.example\"", "registry.hosts.\"r.example\".server", "is never used with fallback = false" },
        { "[cni]\nconf_dir = \"net.d\"", "cni.conf_dir", "'net.d' is not an absolute path" },
        { "[cni]\nconf_dir = 5", "cni.conf_dir", "expected a string, got the integer 5" },
        { "[cni]\nbin_dirs = \"/usr/lib/cni\"", "cni.bin_dirs", "expected an array of strings, got the string" },
        { "[cni]\nbin_dirs = []", "cni.bin_dirs", "must name at least one directory" },
        { "[cni]\nbin_dirs = [\"/opt/cni/bin\", \"lib/cni\"]", "cni.bin_dirs", "'lib/cni' is not an absolute path" },
        { "[cni]\ncache_dir = \"cni-cache\"", "cni.cache_dir", "'cni-cache' is not an absolute path" },
        { "[cni]\nplugin_timeout = \"100ms\"", "cni.plugin_timeout", "between 1s and 10m" },
        { "[cni]\nplugin_timeout = \"1h\"", "cni.plugin_timeout", "between 1s and 10m" },
        { "[cni]\nplugin_timeout = \"forever\"", "cni.plugin_timeout", "'forever' is not a duration" },
        { "[cni]\ndefault_network = \"yes\"", "cni.default_network", "'yes' is not one of none, builtin" },
        { "[cni]\ndefault_network = 1", "cni.default_network", "expected a string, got the integer 1" },
        { "[cni]\ndefault_masquerade = \"on\"", "cni.default_masquerade", "expected a boolean (true or false), got the string \"on\"" },
        { "[cni]\ndefault_pod_cidr = \"10.88.0.0\"", "cni.default_pod_cidr", "pod CIDR '10.88.0.0' is not an address/prefix" },
        { "[cni]\ndefault_pod_cidr = \"10.88.0.1/16\"", "cni.default_pod_cidr", "has host bits set" },
        { "[cni]\ndefault_pod_cidr = \"10.88.0.0/31\"", "cni.default_pod_cidr", "prefix /31 must be within /8../30" },
        { "[cni]\ndefault_pod_cidr = \"10.88.0.0/16,10.89.0.0/16\"", "cni.default_pod_cidr", "two ranges of the same address family" },
        { "[cni]\ndefault_pod_cidr = \"\"", "cni.default_pod_cidr", "pod CIDR is empty" },
        { "[cni]\ndefault_bridge = \"\"", "cni.default_bridge", "is not an interface name" },
        { "[cni]\ndefault_bridge = \"a-very-long-bridge0\"", "cni.default_bridge", "longer than 15 bytes" },
        { "[cni]\ndefault_bridge = \"br/0\"", "cni.default_bridge", "contains '/', ':' or white space" },
        { "[cni]\ndefault_brige = \"br0\"", "cni.default_brige", "unknown key (did you mean 'cni.default_bridge'?)" },
        { "cni = true", "cni", "expected a table ([cni]), got the boolean true" },
        { "[stream]\naddress = \"localhost\"", "stream.address", "'localhost' is not an IP address" },
        { "[stream]\naddress = \"0.0.0.0\"", "stream.address", "no specific address" },
        { "[stream]\naddress = \"::\"", "stream.address", "no specific address" },
        { "[stream]\nport = 65536", "stream.port", "not a port" },
        { "[stream]\ncert_file = \"cert.pem\"", "stream.cert_file", "not an absolute path" },
        { "[stream]\ncert_file = \"/etc/nacelle/stream.pem\"", "stream.key_file", "go together" },
        { "[stream]\nkey_file = \"/etc/nacelle/stream-key.pem\"", "stream.cert_file", "go together" },
        { "[stream]\nidle_timeout = \"200h\"", "stream.idle_timeout", "between 0s and 168h" },
        { "[stream]\ncreation_timeout = \"0s\"", "stream.creation_timeout", "between 1s and 10m" },
        { "[stream]\nmax_streams = 0", "stream.max_streams", "between 1 and 65536" },
        { "[stream]\nmax_streams = 10\nmax_streams_per_pod = 11", "stream.max_streams_per_pod", "more than stream.max_streams (10)" },
    };

    [Theory]
    [MemberData(nameof(InvalidFiles))]
    public void InvalidValuesNameTheKeyAndTheReason(string toml, string key, string reason)
    {
        var path = Write("config.toml", toml + "\n");
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load(Sources(path)));

        Assert.Equal(key, e.Key);
        Assert.Contains(reason, e.Reason);
        Assert.Equal(path, e.Origin);
        Assert.StartsWith($"{path}: {key}: ", e.Message);
    }

    [Fact]
    public void ErrorsInDropInsNameTheDropIn()
    {
        var main = Write("config.toml", "log_level = \"debug\"\n");
        var dropIn = Write("config.d/50-bad.toml", "[metrics]\nenabled = 1\n");

        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load(Sources(main)));
        Assert.Equal(dropIn, e.Origin);
        Assert.Equal("metrics.enabled", e.Key);
    }

    [Theory]
    [InlineData("log_level = \n", "(1,")]            // missing value
    [InlineData("[grpc\nsocket = \"/x\"\n", "(1,")]   // unterminated table header
    [InlineData("root = \"/a\"\nroot = \"/b\"\n", "(2,1)")] // a key defined twice
    public void SyntaxErrorsGiveFileLineAndColumn(string toml, string position)
    {
        var path = Write("config.toml", toml);
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load(Sources(path)));

        Assert.Null(e.Key);
        Assert.Contains("invalid TOML", e.Reason);
        Assert.Contains(position, e.Reason);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void RegistryHostTablesMergeAcrossFiles()
    {
        var main = Write("config.toml", """
            [registry.hosts."registry.example:5000"]
            mirrors = ["https://mirror-a.example", "http://127.0.0.1:5001"]
            ca_file = "/etc/nacelle/certs/example-ca.pem"
            """);
        Write("config.d/50-insecure.toml", "[registry.hosts.\"registry.example:5000\"]\nskip_verify = true\n[registry.hosts.\"lab:80\"]\nplain_http = true\n");

        var config = ConfigLoader.Load(Sources(main)).Config;

        var host = config.Registry.Hosts["registry.example:5000"];
        Assert.Equal(["https://mirror-a.example", "http://127.0.0.1:5001"], host.Mirrors);
        Assert.Equal("/etc/nacelle/certs/example-ca.pem", host.CaFile);
        Assert.True(host.SkipVerify);
        Assert.False(host.PlainHttp);
        Assert.True(config.Registry.Hosts["lab:80"].PlainHttp);

        // Printed and parsed again, the tables survive.
        var again = new NacelleConfig();
        ConfigLoader.ApplyToml(again, ConfigRenderer.ToToml(config), "rendered", new HashSet<string>());
        Assert.Equal(ConfigRenderer.ToJson(config), ConfigRenderer.ToJson(again));
        Assert.Contains("\"hosts\":{\"lab:80\":{\"mirrors\":[],\"server\":\"\",\"fallback\":true,\"plain_http\":true", ConfigRenderer.ToJson(config));
    }

    [Fact]
    public void FloatKeysAcceptIntegers()
    {
        var path = Write("config.toml", "[tracing]\nsampling_ratio = 0\n");
        Assert.Equal(0.0, ConfigLoader.Load(Sources(path)).Config.Tracing.SamplingRatio);
    }

    [Theory]
    [InlineData("true", "builtin")]
    [InlineData("false", "none")]
    public void TheBooleanDefaultNetworkOfRelease010StillLoads(string written, string meant)
    {
        var path = Write("config.toml", $"[cni]\ndefault_network = {written}\n");

        Assert.Equal(meant, ConfigLoader.Load(Sources(path)).Config.Cni.DefaultNetwork);
    }

    [Fact]
    public void CniDefaultsAndOverrides()
    {
        var defaults = ConfigLoader.Load(Sources()).Config.Cni;
        Assert.Equal("/etc/cni/net.d", defaults.ConfDir);
        Assert.Equal(["/opt/cni/bin", "/usr/lib/cni"], defaults.BinDirs);
        Assert.Equal(string.Empty, defaults.CacheDir);
        Assert.Equal("/var/lib/nacelle/cni", defaults.EffectiveCacheDir("/var/lib/nacelle"));
        Assert.Equal(TimeSpan.FromSeconds(60), defaults.PluginTimeout);
        Assert.Equal("none", defaults.DefaultNetwork); // a node's runtime leaves pod networking to the cluster
        Assert.True(defaults.DefaultMasquerade);
        Assert.Equal("10.88.0.0/16", defaults.DefaultPodCidr);
        Assert.Equal("nacelle0", defaults.DefaultBridge);

        var path = Write("config.toml", """
            root = "/srv/nacelle"
            [cni]
            conf_dir = "/srv/cni/net.d"
            bin_dirs = ["/srv/cni/bin"]
            plugin_timeout = "15s"
            default_network = "builtin"
            default_masquerade = false
            default_pod_cidr = "10.244.0.0/16, fd00:244::/64"
            default_bridge = "cni0"
            """);
        var loaded = ConfigLoader.Load(Sources(path));
        var cni = loaded.Config.Cni;
        Assert.Equal("/srv/cni/net.d", cni.ConfDir);
        Assert.Equal(["/srv/cni/bin"], cni.BinDirs);
        Assert.Equal("/srv/nacelle/cni", cni.EffectiveCacheDir(loaded.Config.Root)); // follows root when not set
        Assert.Equal(TimeSpan.FromSeconds(15), cni.PluginTimeout);
        Assert.Equal("builtin", cni.DefaultNetwork);
        Assert.False(cni.DefaultMasquerade);
        Assert.Equal("10.244.0.0/16, fd00:244::/64", cni.DefaultPodCidr);
        Assert.Equal("cni0", cni.DefaultBridge);
        Assert.Contains("cni.bin_dirs", loaded.ExplicitKeys);

        using var json = System.Text.Json.JsonDocument.Parse(ConfigRenderer.ToJson(loaded.Config));
        var section = json.RootElement.GetProperty("cni");
        Assert.Equal("/srv/cni/net.d", section.GetProperty("conf_dir").GetString());
        Assert.Equal("15s", section.GetProperty("plugin_timeout").GetString());
        Assert.Equal("/srv/cni/bin", section.GetProperty("bin_dirs")[0].GetString());

        Write("config.d/50-cache.toml", "[cni]\ncache_dir = \"/srv/cni-cache\"\n");
        Assert.Equal("/srv/cni-cache", ConfigLoader.Load(Sources(path)).Config.Cni.EffectiveCacheDir("/srv/nacelle"));
    }

    [Fact]
    public void StreamDefaultsAndOverrides()
    {
        var defaults = ConfigLoader.Load(Sources()).Config.Stream;
        Assert.Equal(("127.0.0.1", 0L, "", ""), (defaults.Address, defaults.Port, defaults.CertFile, defaults.KeyFile));
        Assert.Equal((TimeSpan.FromHours(4), TimeSpan.FromSeconds(30)), (defaults.IdleTimeout, defaults.CreationTimeout));
        Assert.Equal((256L, 64L), (defaults.MaxStreams, defaults.MaxStreamsPerPod));

        var path = Write("config.toml", """
            [stream]
            address = "::1"
            port = 10250
            cert_file = "/etc/nacelle/stream.pem"
            key_file = "/etc/nacelle/stream-key.pem"
            idle_timeout = "0s"
            max_streams = 8
            max_streams_per_pod = 8
            """);
        var options = Nacelle.CriServer.Streaming.StreamingOptions.From(ConfigLoader.Load(Sources(path)).Config);
        Assert.Equal(System.Net.IPAddress.IPv6Loopback, options.Address);
        Assert.Equal((10250, TimeSpan.Zero, 8, 8), (options.Port, options.IdleTimeout, options.MaxStreams, options.MaxStreamsPerPod));
        Assert.Equal(("/etc/nacelle/stream.pem", "/etc/nacelle/stream-key.pem"), (options.CertFile, options.KeyFile));
        Assert.Equal(TimeSpan.FromMinutes(1), options.TokenLifetime);
    }
}
