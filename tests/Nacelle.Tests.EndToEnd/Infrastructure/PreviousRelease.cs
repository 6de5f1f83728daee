using Nacelle.Tests.Support;

namespace Nacelle.Tests.EndToEnd.Infrastructure;

/// <summary>
/// The programs of an earlier release, built from its git tag in this clone: the tag's tree is exported with
/// `git archive` (no worktree is registered, nothing in the clone changes) and its daemon and monitor are published
/// as Native AOT, as that release's scripts/build.sh does (the tag's own test projects are not built: only its
/// programs are needed). Built once per tag commit into artifacts/previous/&lt;tag&gt;-&lt;commit&gt;/ (ignored by git), so
/// a second run starts at once.
/// </summary>
internal static class PreviousRelease
{
    private static readonly TimeSpan BuildTimeout = TimeSpan.FromMinutes(30);
    private static readonly SemaphoreSlim Building = new(1, 1);

    /// <summary>The tag's commit, or null with why it cannot be had (not a git clone, or the tag is missing).</summary>
    public static (string? Commit, string Why) Find(string tag)
    {
        if (!Directory.Exists(SourceTree.PathOf(".git")) && !File.Exists(SourceTree.PathOf(".git")))
        {
            return (null, $"{SourceTree.Root} is not a git clone, so the tag {tag} of the previous release cannot be built");
        }

        var found = TestProcesses.Run("git", "-C", SourceTree.Root, "rev-parse", "--verify", "--quiet", $"refs/tags/{tag}^{{commit}}");
        return found.Exit == 0
            ? (found.Stdout.Trim(), string.Empty)
            : (null, $"the tag {tag} is not in this clone ({SourceTree.Root}); an upgrade from it needs it: clone with tags (git fetch --tags)");
    }

    /// <summary>The directory holding the tag's nacelle, nacelle-monitor, nacelle-spawn and nacelle-pause.</summary>
    public static async Task<string> BuildAsync(string tag, string commit)
    {
        var output = SourceTree.PathOf("artifacts", "previous", $"{tag}-{commit[..12]}");
        var done = Path.Combine(output, ".built");
        await Building.WaitAsync();
        try
        {
            if (File.Exists(done))
            {
                return output;
            }

            var source = Directory.CreateTempSubdirectory($"nacelle-{tag}-src-").FullName;
            try
            {
                var export = TestProcesses.Run(TimeSpan.FromMinutes(2), "sh", "-c",
                    $"git -C '{SourceTree.Root}' archive --format=tar {commit} | tar -x -C '{source}'");
                Assert.True(export.Exit == 0, $"git archive {tag} failed: {export.Stderr}");
                if (Directory.Exists(output))
                {
                    Directory.Delete(output, recursive: true);
                }

                foreach (var project in new[] { "src/CriServer/Nacelle.CriServer.csproj", "src/Monitor/Nacelle.Monitor.csproj" })
                {
                    string[] arguments = [.. CleanEnvironment, "dotnet", "publish", Path.Combine(source, project), "-c", "Release", "-r", "linux-x64", "-o", output, "-nologo"];
                    var publish = TestProcesses.Run(BuildTimeout, new Dictionary<string, string> { ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1", ["DOTNET_NOLOGO"] = "1" },
                        "env", arguments);
                    Assert.True(publish.Exit == 0, $"building {project} of {tag} failed ({publish.Exit}):\n{publish.Stdout}\n{publish.Stderr}");
                }

                foreach (var program in new[] { "nacelle", "nacelle-monitor", "nacelle-spawn", "nacelle-pause" })
                {
                    Assert.True(File.Exists(Path.Combine(output, program)), $"the {tag} build has no {program} in {output}");
                }

                await File.WriteAllTextAsync(done, commit);
                return output;
            }
            finally
            {
                Directory.Delete(source, recursive: true);
            }
        }
        finally
        {
            Building.Release();
        }
    }

    // The test host runs under `dotnet test`, whose MSBuild variables would point the nested build at this one's SDK
    // state: env(1) removes them, so the tag builds as from a shell.
    private static readonly string[] CleanEnvironment =
        ["-u", "MSBuildExtensionsPath", "-u", "MSBuildSDKsPath", "-u", "MSBUILD_EXE_PATH", "-u", "MSBuildLoadMicrosoftTargetsReadOnly"];
}
