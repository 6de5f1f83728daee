using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Mounts;
using Nacelle.CriServer.Configuration;
using Nacelle.Sandbox.Handlers;

namespace Nacelle.Tests.Unit.Configuration;

/// <summary>[runtime.handlers.&lt;name&gt;] tables: parsing, refusals naming the key, rendering, and a handler's features
/// from an OCI runtime's `features` document.</summary>
public sealed class RuntimeHandlerConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("nacelle-handlers-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private NacelleConfig Load(string toml, string? dropIn = null)
    {
        var path = Path.Combine(_dir, "config.toml");
        File.WriteAllText(path, toml);
        if (dropIn is not null)
        {
            Directory.CreateDirectory(Path.Combine(_dir, "config.d"));
            File.WriteAllText(Path.Combine(_dir, "config.d", "50-handler.toml"), dropIn);
        }

        return ConfigLoader.Load(new ConfigSources(path, true, ConfigSources.DropInDirectoryFor(path), [])).Config;
    }

    [Fact]
    public void Handler_tables_are_read_merged_across_files_and_rendered_back()
    {
        var config = Load("""
            state = "/run/n"
            [runtime.handlers.runc]
            type = "oci"
            path = "/usr/sbin/runc"

            [runtime.handlers.crun]
            path = "/usr/bin/crun"
            root = "/run/crun-nacelle"
            args = ["--debug"]

            [runtime.handlers.fast]
            type = "nacelle"
            """, dropIn: "[runtime.handlers.runc]\nargs = [\"--debug\", \"--systemd-cgroup=false\"]\n");

        Assert.Equal(["crun", "fast", "runc"], config.Runtime.Handlers.Keys.ToArray());
        var runc = config.Runtime.Handlers["runc"];
        Assert.Equal(("oci", "/usr/sbin/runc", ""), (runc.Type, runc.Path, runc.Root));
        Assert.Equal(["--debug", "--systemd-cgroup=false"], runc.Args);
        Assert.Equal("/run/n/runtimes/runc", runc.EffectiveRoot(config.State, "runc"));
        Assert.Equal("/run/crun-nacelle", config.Runtime.Handlers["crun"].EffectiveRoot(config.State, "crun"));
        Assert.Equal("oci", config.Runtime.Handlers["crun"].Type);
        Assert.Equal("nacelle", config.Runtime.Handlers["fast"].Type);

        var again = new NacelleConfig();
        ConfigLoader.ApplyToml(again, ConfigRenderer.ToToml(config), "rendered", new HashSet<string>());
        Assert.Equal(ConfigRenderer.ToJson(config), ConfigRenderer.ToJson(again));
        Assert.Contains("\"runtime\":{\"handlers\":{\"crun\":{\"type\":\"oci\",\"path\":\"/usr/bin/crun\",\"root\":\"/run/crun-nacelle\",\"args\":[\"--debug\"]}",
            ConfigRenderer.ToJson(config));
    }

    [Fact]
    public void The_default_config_documents_handler_tables_with_a_commented_example()
    {
        var text = ConfigRenderer.ToToml(new NacelleConfig());
        Assert.Contains("# [runtime.handlers.runc]", text);
        Assert.Contains("# path = \"/usr/sbin/runc\"", text);
        Assert.Contains("# type = \"oci\"", text);
        Assert.Contains("RuntimeClass handlers", text);
        // The commented example parses as the handler it shows.
        var example = string.Join('\n', text.Split('\n').SkipWhile(l => l != "# [runtime.handlers.runc]")
            .Where(l => l.StartsWith("# ", StringComparison.Ordinal) && !l.StartsWith("# # ", StringComparison.Ordinal)).Select(l => l[2..]));
        var config = Load(example);
        Assert.Equal("/usr/sbin/runc", config.Runtime.Handlers["runc"].Path);
    }

    public static TheoryData<string, string, string> InvalidFiles => new()
    {
        { "[runtime.handlers.runc]\ntype = \"oci\"", "runtime.handlers.runc.path", "is required for type \"oci\"" },
        { "[runtime.handlers.runc]\ntype = \"shim\"\npath = \"/usr/sbin/runc\"", "runtime.handlers.runc.type", "'shim' is not one of oci, nacelle" },
        { "[runtime.handlers.runc]\npath = \"runc\"", "runtime.handlers.runc.path", "'runc' is not an absolute path" },
        { "[runtime.handlers.runc]\npath = \"/usr/sbin/runc\"\nroot = \"state\"", "runtime.handlers.runc.root", "'state' is not an absolute path" },
        { "[runtime.handlers.runc]\npath = \"/usr/sbin/runc\"\nargs = \"--debug\"", "runtime.handlers.runc.args", "expected an array of strings" },
        { "[runtime.handlers.runc]\npath = \"/usr/sbin/runc\"\nargs = [\"debug\"]", "runtime.handlers.runc.args", "'debug' is not an option" },
        { "[runtime.handlers.runc]\npath = \"/usr/sbin/runc\"\nshim = true", "runtime.handlers.runc.shim", "unknown key (handler tables take type, path, root, args)" },
        { "[runtime.handlers.nacelle]\ntype = \"nacelle\"", "runtime.handlers.nacelle", "the built-in handler's name" },
        { "[runtime.handlers.Kata_FC]\npath = \"/usr/bin/kata-runtime\"", "runtime.handlers.Kata_FC", "is not a handler name" },
        { "[runtime.handlers.fast]\ntype = \"nacelle\"\npath = \"/usr/sbin/runc\"", "runtime.handlers.fast.type", "path, root and args belong to type \"oci\"" },
        { "[runtime]\nhandler = 1", "runtime.handler", "unknown key" },
        { "[runtime]\nhandlers = 1", "runtime.handlers", "expected a table of handler tables" },
        { "runtime = 1", "runtime", "expected a table ([runtime])" },
        { "[runtime.handlers]\nrunc = \"/usr/sbin/runc\"", "runtime.handlers.runc", "expected a table" },
    };

    [Theory]
    [MemberData(nameof(InvalidFiles))]
    public void Invalid_handler_tables_name_the_key_and_the_reason(string toml, string key, string reason)
    {
        var e = Assert.Throws<ConfigException>(() => Load(toml + "\n"));
        Assert.Equal(key, e.Key);
        Assert.Contains(reason, e.Reason);
    }

    private static readonly ExternalRuntime Runc = new("runc", "/usr/sbin/runc", "/run/nacelle/runtimes/runc", []);
    private static readonly KernelFeatures Kernel = new(true, null, true, null);

    // As runc 1.1.5 (Debian bookworm) answers `runc features`, shortened: rro known, user namespaces, no mount idmaps.
    private const string Runc115 = """
        {"ociVersionMin":"1.0.0","ociVersionMax":"1.0.2-dev","mountOptions":["bind","ro","rro","rbind"],
         "linux":{"namespaces":["cgroup","ipc","mount","network","pid","user","uts"],"capabilities":["CAP_CHOWN"]}}
        """;

    // As runc 1.2 answers: idmapped mounts enabled.
    private const string Runc12 = """
        {"ociVersionMin":"1.0.0","ociVersionMax":"1.2.0","mountOptions":["rro"],
         "linux":{"namespaces":["user","pid"],"mountExtensions":{"idmap":{"enabled":true}}}}
        """;

    [Fact]
    public void Runc_1_1_has_recursive_read_only_mounts_but_not_user_namespaces()
    {
        var features = OciRuntimeFeatures.Parse(Runc, Runc115, Kernel);
        Assert.True(features.RecursiveReadOnlyMounts);
        Assert.False(features.UserNamespaces);
        Assert.Contains("idmapped mounts", features.UserNamespacesMissing);
    }

    [Fact]
    public void A_runtime_with_idmapped_mounts_has_user_namespaces_where_the_kernel_does()
    {
        Assert.True(OciRuntimeFeatures.Parse(Runc, Runc12, Kernel).UserNamespaces);
        var noUserns = new KernelFeatures(false, "no user namespaces here", false, "no mount_setattr");
        var features = OciRuntimeFeatures.Parse(Runc, Runc12, noUserns);
        Assert.False(features.UserNamespaces);
        Assert.False(features.RecursiveReadOnlyMounts);
        Assert.Equal("no user namespaces here", features.UserNamespacesMissing);
    }

    [Fact]
    public void A_features_document_without_rro_or_user_namespaces_offers_neither()
    {
        var features = OciRuntimeFeatures.Parse(Runc, """{"mountOptions":["ro"],"linux":{"namespaces":["pid"]}}""", Kernel);
        Assert.False(features.RecursiveReadOnlyMounts);
        Assert.Contains("does not support user namespaces", features.UserNamespacesMissing);
        Assert.False(OciRuntimeFeatures.Parse(Runc, "not json", Kernel).RecursiveReadOnlyMounts);
    }

    [Fact]
    public async Task A_missing_runtime_is_listed_unavailable_with_the_path()
    {
        var missing = Runc with { Name = "gone", Path = "/nonexistent/runc" };
        var handler = await OciRuntimeFeatures.ProbeAsync(missing, Kernel, TestContext.Current.CancellationToken);
        Assert.Equal(RuntimeHandlerKind.Oci, handler.Kind);
        Assert.Contains("/nonexistent/runc does not exist", handler.Unavailable);
        Assert.False(handler.Features.RecursiveReadOnlyMounts);
        var handlers = RuntimeHandlers.With(Kernel, [handler]);
        Assert.Equal(["", "nacelle", "gone"], handlers.All.Select(h => h.Name).ToArray());
        Assert.Same(missing, handlers.Resolve("gone").External);
        var e = Assert.Throws<Nacelle.Common.NacelleException>(() => handlers.Resolve("kata"));
        Assert.Equal(Nacelle.Common.ErrorKind.NotFound, e.Kind);
        Assert.Contains("'kata'", e.Message);
    }
}
