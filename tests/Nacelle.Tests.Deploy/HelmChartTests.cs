using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Nacelle.Tests.Support;

namespace Nacelle.Tests.Deploy;

/// <summary>
/// charts/nacelle rendered the way helm renders it (helm-render: Go's text/template with Debian's sprig and Helm's own
/// functions; no helm binary can be installed here), with its default values and with every values example of its
/// README. Each rendered object must pass the Kubernetes schema (kubernetes-models, npm) and have no field the API does
/// not know (Debian's python3-kubernetes models); the rendered config.toml must pass `nacelle config check`; the
/// installer script must pass shellcheck.
/// </summary>
public sealed partial class HelmChartTests : IClassFixture<HelmChartTests.Tools>
{
    private static readonly string Chart = SourceTree.PathOf("charts", "nacelle");
    private static readonly TimeSpan Slow = TimeSpan.FromMinutes(5);
    private readonly Tools _tools;

    public HelmChartTests(Tools tools) => _tools = tools;

    /// <summary>The renderer and the validators, built and installed once into a temporary directory.</summary>
    public sealed class Tools : IDisposable
    {
        public Tools()
        {
            Directory = System.IO.Directory.CreateTempSubdirectory("nacelle-chart-").FullName;
            Missing = new[] { "/usr/bin/go", "/usr/bin/npm", "/usr/bin/node", "/usr/bin/python3", "/usr/bin/shellcheck" }
                .Where(p => !File.Exists(p))
                .Concat(new[] { "/usr/share/gocode/src/github.com/Masterminds/sprig", "/usr/share/gocode/src/sigs.k8s.io/yaml",
                    "/usr/share/gocode/src/github.com/BurntSushi/toml", "/usr/lib/python3/dist-packages/kubernetes" }
                    .Where(p => !System.IO.Directory.Exists(p)))
                .ToList();
            if (Missing.Count > 0)
            {
                return;
            }

            // Debian's Go packages are laid out for GOPATH mode.
            Renderer = Path.Combine(Directory, "helm-render");
            var environment = ToolHome.GoEnvironment();
            var build = TestProcesses.Run(Slow, environment,
                "/usr/bin/go", "build", "-o", Renderer, SourceTree.PathOf("tests", "Nacelle.Tests.Deploy", "helm-render", "main.go"));
            BuildError = build.Exit == 0 ? null : $"go build of helm-render failed:\n{build.Stderr}{build.Stdout}";

            Validator = Path.Combine(Directory, "validate");
            System.IO.Directory.CreateDirectory(Validator);
            foreach (var file in new[] { "package.json", "package-lock.json", "validate.mjs", "strict_fields.py" })
            {
                File.Copy(SourceTree.PathOf("tests", "Nacelle.Tests.Deploy", "chart-validate", file), Path.Combine(Validator, file));
            }

            var npm = TestProcesses.Run(Slow, "/usr/bin/npm", "ci", "--prefix", Validator, "--cache", ToolHome.NpmCache, "--no-audit", "--no-fund");
            BuildError ??= npm.Exit == 0 ? null : $"npm ci of kubernetes-models failed:\n{npm.Stderr}{npm.Stdout}";
        }

        public string Directory { get; }

        public IReadOnlyList<string> Missing { get; }

        public string? BuildError { get; }

        public string Renderer { get; } = string.Empty;

        public string Validator { get; } = string.Empty;

        public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);
    }

    private void RequireTools()
    {
        Assert.SkipWhen(_tools.Missing.Count > 0,
            $"needs {string.Join(", ", _tools.Missing)} (scripts/install-deps.sh --test installs them)");
        Assert.True(_tools.BuildError is null, _tools.BuildError);
    }

    /// <summary>Renders the chart with the values files given, as a JSON array of objects (helm template's output).</summary>
    private JsonArray Render(params string[] valueFiles)
    {
        var arguments = new List<string> { "-json", "-name", "nacelle", "-namespace", "kube-system" };
        foreach (var file in valueFiles)
        {
            arguments.AddRange(["-f", file]);
        }

        arguments.Add(Chart);
        var run = TestProcesses.Run(_tools.Renderer, [.. arguments]);
        Assert.True(run.Exit == 0, $"helm-render failed:\n{run.Stderr}");
        return JsonNode.Parse(run.Stdout)!.AsArray();
    }

    /// <summary>Both validators and `nacelle config check` on one rendering; returns the objects by kind.</summary>
    private Dictionary<string, JsonObject> Validate(JsonArray objects, string what)
    {
        var json = Path.Combine(_tools.Directory, $"rendered-{Guid.NewGuid():N}.json");
        File.WriteAllText(json, objects.ToJsonString());

        var schema = TestProcesses.Run(Slow, "/usr/bin/node", Path.Combine(_tools.Validator, "validate.mjs"), json);
        Assert.True(schema.Exit == 0, $"{what}: kubernetes-models refused an object:\n{schema.Stdout}{schema.Stderr}");
        Assert.Equal(objects.Count, schema.Stdout.Split('\n').Count(l => l.StartsWith("ok ", StringComparison.Ordinal)));
        var strict = TestProcesses.Run(Slow, "/usr/bin/python3", Path.Combine(_tools.Validator, "strict_fields.py"), json);
        Assert.True(strict.Exit == 0, $"{what}: fields the Kubernetes API does not know:\n{strict.Stdout}{strict.Stderr}");

        var byKind = objects.Select(o => o!.AsObject()).ToDictionary(o => o["kind"]!.GetValue<string>());
        var config = byKind["ConfigMap"]["data"]!["config.toml"]!.GetValue<string>();
        var bin = Environment.GetEnvironmentVariable("NACELLE_BIN");
        if (!string.IsNullOrEmpty(bin))
        {
            var file = Path.Combine(_tools.Directory, $"config-{Guid.NewGuid():N}.toml");
            File.WriteAllText(file, config);
            var check = TestProcesses.Run(bin, "config", "check", file);
            Assert.True(check.Exit == 0, $"{what}: nacelle refuses the rendered config.toml:\n{check.Stderr}\n{config}");
        }

        return byKind;
    }

    [GeneratedRegex("```yaml\\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex YamlBlock();

    [Fact]
    public void TheDefaultValuesRenderAValidInstaller()
    {
        RequireTools();
        var objects = Validate(Render(), "default values");
        Assert.Equal(["ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet", "Role", "RoleBinding", "ServiceAccount"], objects.Keys.Order());

        var pod = objects["DaemonSet"]["spec"]!["template"]!["spec"]!.AsObject();
        Assert.True(pod["hostPID"]!.GetValue<bool>()); // nsenter into PID 1 runs the host's systemctl
        var container = pod["containers"]![0]!.AsObject();
        Assert.True(container["securityContext"]!["privileged"]!.GetValue<bool>());
        Assert.Equal("nacelle-installer:0.1.0", container["image"]!.GetValue<string>()); // the chart's appVersion
        Assert.Equal(["/bin/sh", "/installer/installer.sh", "stop"], container["lifecycle"]!["preStop"]!["exec"]!["command"]!.AsArray().Select(a => a!.GetValue<string>()));
        var hostPaths = pod["volumes"]!.AsArray().Where(v => v!["hostPath"] is not null).ToDictionary(v => v!["name"]!.GetValue<string>(), v => v!["hostPath"]!["path"]!.GetValue<string>());
        Assert.Equal("/usr/local/lib/nacelle", hostPaths["host-bin"]);
        Assert.Equal("/etc/nacelle", hostPaths["host-config"]);
        Assert.Equal("/etc/systemd/system", hostPaths["host-units"]);
        Assert.Equal("/run/nacelle", hostPaths["host-run"]);
        Assert.Equal("Exists", pod["tolerations"]![0]!["operator"]!.GetValue<string>());

        // RBAC: patch its own node (the label), read its own DaemonSet (uninstall or not).
        var nodeRule = objects["ClusterRole"]["rules"]![0]!;
        Assert.Equal(["nodes"], nodeRule["resources"]!.AsArray().Select(r => r!.GetValue<string>()));
        Assert.Contains("patch", nodeRule["verbs"]!.AsArray().Select(v => v!.GetValue<string>()));
        Assert.Equal(["nacelle"], objects["Role"]["rules"]![0]!["resourceNames"]!.AsArray().Select(r => r!.GetValue<string>()));

        // The node configuration: no built-in network.
        Assert.Contains("default_network = \"none\"", objects["ConfigMap"]["data"]!["config.toml"]!.GetValue<string>());
    }

    [Fact]
    public void EveryValuesExampleInTheReadmeRendersValidObjects()
    {
        RequireTools();
        var examples = YamlBlock().Matches(File.ReadAllText(Path.Combine(Chart, "README.md"))).Select(m => m.Groups[1].Value).ToList();
        Assert.True(examples.Count >= 2, "the chart README shows its values examples in ```yaml blocks");
        var defaults = Render();
        foreach (var (example, index) in examples.Select((e, i) => (e, i)))
        {
            var file = Path.Combine(_tools.Directory, $"readme-{index}.yaml");
            File.WriteAllText(file, example);
            var rendered = Render(file);
            Validate(rendered, $"README example {index + 1}");

            // A configuration change changes the pod template (so the installer pods roll and install it).
            string Checksum(JsonArray objects) => objects.Single(o => o!["kind"]!.GetValue<string>() == "DaemonSet")!
                ["spec"]!["template"]!["metadata"]!["annotations"]!["checksum/config"]!.GetValue<string>();
            Assert.NotEqual(Checksum(defaults), Checksum(rendered));
        }
    }

    [Fact]
    public void AnInvalidConfigurationIsCaughtByTheCheckTheInstallerRuns()
    {
        RequireTools();
        Assert.SkipWhen(string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NACELLE_BIN")), "needs NACELLE_BIN (scripts/test.sh sets it)");
        var file = Path.Combine(_tools.Directory, "bad.yaml");
        File.WriteAllText(file, "config:\n  cni:\n    default_network: bridge\n");
        var config = Render(file).Single(o => o!["kind"]!.GetValue<string>() == "ConfigMap")!["data"]!["config.toml"]!.GetValue<string>();
        var toml = Path.Combine(_tools.Directory, "bad.toml");
        File.WriteAllText(toml, config);
        var check = TestProcesses.Run(Environment.GetEnvironmentVariable("NACELLE_BIN")!, "config", "check", toml);
        Assert.Equal(2, check.Exit);
        Assert.Contains("cni.default_network: 'bridge' is not one of none, builtin", check.Stderr);
    }

    [Fact]
    public void TheInstallerScriptPassesShellcheck()
    {
        RequireTools();
        var run = TestProcesses.Run("/usr/bin/shellcheck", "--shell=sh", Path.Combine(Chart, "files", "installer.sh"));
        Assert.True(run.Exit == 0, run.Stdout + run.Stderr);
    }

    [Fact]
    public void TheChartsVersionsAreNacellesVersion()
    {
        var props = File.ReadAllText(SourceTree.PathOf("Directory.Build.props"));
        var version = Regex.Match(props, "<Version>([^<]+)</Version>").Groups[1].Value;
        var chart = File.ReadAllText(Path.Combine(Chart, "Chart.yaml"));
        Assert.Matches($"(?m)^version: {Regex.Escape(version)}$", chart);
        Assert.Matches($"(?m)^appVersion: \"{Regex.Escape(version)}\"$", chart);
    }
}
