using Nacelle.CriServer.Configuration;

namespace Nacelle.Tests.Unit.Configuration;

public sealed class ConfigReloaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("nacelle-reload-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string ConfigPath => Path.Combine(_dir, "config.toml");

    private ConfigSources Sources(params ConfigOverride[] overrides) =>
        new(ConfigPath, true, ConfigSources.DropInDirectoryFor(ConfigPath), overrides);

    private (ConfigReloader Reloader, List<NacelleConfig> Prepared, List<NacelleConfig> Committed) Start(string toml, params ConfigOverride[] overrides)
    {
        File.WriteAllText(ConfigPath, toml);
        var sources = Sources(overrides);
        var reloader = new ConfigReloader(ConfigLoader.Load(sources), () => ConfigLoader.Load(sources));
        var prepared = new List<NacelleConfig>();
        var committed = new List<NacelleConfig>();
        reloader.Register(new ReloadParticipant("test", next =>
        {
            prepared.Add(next);
            return () => committed.Add(next);
        }));
        return (reloader, prepared, committed);
    }

    [Fact]
    public void LiveKeysAreAppliedAndRestartKeysKeepTheirRunningValues()
    {
        var (reloader, _, committed) = Start("root = \"/srv/a\"\nlog_level = \"info\"\n");
        File.WriteAllText(ConfigPath, """
            root = "/srv/b"
            log_level = "debug"
            [registry.hosts."registry.example:5000"]
            mirrors = ["https://mirror.example"]
            [cni]
            plugin_timeout = "5s"
            """);

        var outcome = reloader.Reload();

        Assert.Null(outcome.Refused);
        Assert.Equal(["log_level", "cni.plugin_timeout", "registry.hosts.\"registry.example:5000\""], outcome.Applied);
        Assert.Equal(["root"], outcome.Deferred);
        var inForce = Assert.Single(committed);
        Assert.Same(inForce, reloader.Current.Config);
        Assert.Equal("/srv/a", inForce.Root);
        Assert.Equal("debug", inForce.LogLevel);
        Assert.Equal(TimeSpan.FromSeconds(5), inForce.Cni.PluginTimeout);
        Assert.Equal(["https://mirror.example"], inForce.Registry.Hosts["registry.example:5000"].Mirrors);
        Assert.NotNull(reloader.ReloadedAt);
    }

    [Fact]
    public void AnInvalidFileIsRefusedNamingTheKeyAndNothingChanges()
    {
        var (reloader, prepared, committed) = Start("log_level = \"warn\"\n");
        var before = reloader.Current;
        File.WriteAllText(ConfigPath, "log_level = \"debug\"\n[registry]\nmax_attempts = 0\n");

        var outcome = reloader.Reload();

        Assert.NotNull(outcome.Refused);
        Assert.Equal("registry.max_attempts", outcome.Refused.Key);
        Assert.Contains(ConfigPath, outcome.Refused.Message);
        Assert.Empty(prepared);
        Assert.Empty(committed);
        Assert.Same(before, reloader.Current);
        Assert.Equal("warn", reloader.Current.Config.LogLevel);
        Assert.Null(reloader.ReloadedAt);
    }

    [Fact]
    public void AParticipantThatRefusesStopsEveryCommit()
    {
        var (reloader, _, committed) = Start("log_level = \"warn\"\n");
        reloader.Register(new ReloadParticipant("refuses", next =>
            throw new ConfigException(ConfigPath, "registry.auth_file", "credHelpers are refused")));
        File.WriteAllText(ConfigPath, "log_level = \"debug\"\n");

        var outcome = reloader.Reload();

        Assert.Equal("registry.auth_file", outcome.Refused?.Key);
        Assert.Empty(committed);
        Assert.Equal("warn", reloader.Current.Config.LogLevel);
    }

    [Fact]
    public void FlagsStillWinOverTheFilesAfterAReload()
    {
        var (reloader, _, _) = Start("log_level = \"warn\"\n", new ConfigOverride("--log-level", "log_level", "error"));
        File.WriteAllText(ConfigPath, "log_level = \"debug\"\n");

        var outcome = reloader.Reload();

        Assert.Null(outcome.Refused);
        Assert.Empty(outcome.Applied);
        Assert.Equal("error", reloader.Current.Config.LogLevel);
    }

    [Fact]
    public void NothingChangedCommitsNothing()
    {
        var (reloader, prepared, _) = Start("log_level = \"warn\"\n");

        var outcome = reloader.Reload();

        Assert.Null(outcome.Refused);
        Assert.Empty(outcome.Applied);
        Assert.Empty(outcome.Deferred);
        Assert.Empty(prepared);
    }

    [Fact]
    public void ChangedNamesRegistryTablesAddedRemovedAndEdited()
    {
        var before = new NacelleConfig();
        before.Registry.Hosts["a.example"] = new NacelleConfig.RegistryHostSection { Mirrors = ["https://m1"] };
        before.Registry.Hosts["gone.example"] = new NacelleConfig.RegistryHostSection();
        var after = new NacelleConfig { LogLevel = "debug" };
        after.Registry.Hosts["a.example"] = new NacelleConfig.RegistryHostSection { Mirrors = ["https://m1", "https://m2"], Fallback = false };
        after.Registry.Hosts["new.example"] = new NacelleConfig.RegistryHostSection();
        after.Cni.BinDirs = ["/opt/cni/bin"];

        Assert.Equal(
            ["log_level", "cni.bin_dirs", "registry.hosts.\"a.example\".mirrors", "registry.hosts.\"a.example\".fallback",
             "registry.hosts.\"gone.example\"", "registry.hosts.\"new.example\""],
            ConfigReloader.Changed(before, after));
    }

    [Fact]
    public void RuntimeHandlerChangesAreNamedAndWaitForARestart()
    {
        var (reloader, _, _) = Start("""
            [runtime.handlers.runc]
            type = "oci"
            path = "/usr/sbin/runc"
            """);
        File.WriteAllText(ConfigPath, """
            log_level = "debug"
            [runtime.handlers.runc]
            type = "oci"
            path = "/usr/local/sbin/runc"
            [runtime.handlers.crun]
            type = "oci"
            path = "/usr/bin/crun"
            """);

        var outcome = reloader.Reload();

        Assert.Null(outcome.Refused);
        Assert.Equal(["log_level"], outcome.Applied);
        Assert.Equal(["runtime.handlers.crun", "runtime.handlers.runc.path"], outcome.Deferred.Order(StringComparer.Ordinal));
        var inForce = reloader.Current.Config;
        Assert.Equal("debug", inForce.LogLevel);
        Assert.Equal(["runc"], inForce.Runtime.Handlers.Keys);
        Assert.Equal("/usr/sbin/runc", inForce.Runtime.Handlers["runc"].Path);
    }

    [Fact]
    public void EveryKeyDeclaresWhetherAReloadAppliesIt()
    {
        // The keys a reload applies are the ones docs/configuration.md lists as live; everything else waits for a restart.
        var live = ConfigKeys.All.Where(k => k.Reload == ConfigReload.Live).Select(k => k.Path).ToList();
        Assert.Contains("log_level", live);
        Assert.Contains("registry.auth_file", live);
        Assert.Contains("cni.conf_dir", live);
        Assert.DoesNotContain("grpc.socket", live);
        Assert.DoesNotContain("cni.cache_dir", live);
        Assert.DoesNotContain("cgroup.driver", live);
        Assert.All(ConfigKeys.RegistryHostKeys, k => Assert.Equal(ConfigReload.Live, k.Reload));
        var doc = File.ReadAllText(Path.Combine(Nacelle.Tests.Support.SourceTree.Root, "docs", "configuration.md"));
        foreach (var key in live)
        {
            Assert.Contains($"`{key}`", doc);
        }
    }
}
