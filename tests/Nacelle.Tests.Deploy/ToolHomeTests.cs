using System.Text.RegularExpressions;
using Nacelle.Tests.Support;

namespace Nacelle.Tests.Deploy;

/// <summary>
/// The tests' go and npm runs keep their caches and configuration in <see cref="ToolHome"/>, never in the user's home:
/// on a fresh machine a go build made /root/.cache and /root/.config while the CRI fuzzer ran, and the fuzzer, which
/// counts every new entry in /root as the daemon's doing, failed.
/// </summary>
public sealed partial class ToolHomeTests
{
    // A go build (the program a path or a variable: "/usr/bin/go", "go", go) or an npm run.
    [GeneratedRegex(@"""build"",\s*""-o""|""/usr/bin/npm""|new ProcessStartInfo\(""(?:go|npm)""\)")]
    private static partial Regex ToolRun();

    [Fact]
    public void EveryTestFileThatRunsGoOrNpmGivesItTheToolHome()
    {
        var files = Directory.EnumerateFiles(SourceTree.PathOf("tests"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains("/bin/", StringComparison.Ordinal) && !f.Contains("/obj/", StringComparison.Ordinal))
            .Select(f => (Path: Path.GetRelativePath(SourceTree.Root, f), Text: File.ReadAllText(f)))
            .Where(f => ToolRun().IsMatch(f.Text))
            .ToList();

        // The three that exist today: the seccomp probes, the SPDY client and the Helm renderer with its validator.
        Assert.True(files.Count >= 3, $"found {files.Count} files that run go or npm; the pattern no longer matches them");
        Assert.All(files, f => Assert.True(f.Text.Contains("ToolHome.", StringComparison.Ordinal),
            $"{f.Path} runs go or npm without ToolHome's environment or cache: on a fresh machine it writes into /root"));
    }

    [Theory]
    [InlineData("/usr/bin/go")]
    [InlineData("/usr/lib/go-1.23/bin/go")]
    public void GoGivenTheToolHomeKeepsItsCacheConfigurationAndTelemetryThere(string go)
    {
        Assert.SkipUnless(File.Exists(go), $"{go} is not installed (scripts/install-deps.sh --test installs golang-go and golang-1.23-go)");
        var env = TestProcesses.Run(TimeSpan.FromMinutes(1), ToolHome.GoEnvironment(), go, "env", "GOCACHE", "GOENV", "GOTELEMETRYDIR");
        Assert.True(env.Exit == 0, env.Stderr);

        // Go 1.19 has no telemetry (an empty line); 1.23 writes its counters under the configuration directory.
        var paths = env.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(paths.Length >= 2, env.Stdout);
        Assert.All(paths, path => Assert.StartsWith(ToolHome.Path + "/", path, StringComparison.Ordinal));
    }
}
