using Nacelle.CriServer.Configuration;

namespace Nacelle.Tests.Unit.Configuration;

public sealed class DeployedConfigTests
{
    [Fact]
    public void TheShippedDefaultConfigIsExactlyWhatTheDaemonPrints()
    {
        var shipped = Path.Combine(RepositoryRoot(), "deploy", "config", "config.toml");
        Assert.True(File.Exists(shipped), $"{shipped} is missing");
        Assert.Equal(
            ConfigRenderer.ToToml(new NacelleConfig()),
            File.ReadAllText(shipped));
    }

    // Above the test binaries, or, when they are built elsewhere (--artifacts-path), above this source file.
    private static string RepositoryRoot([System.Runtime.CompilerServices.CallerFilePath] string sourceFile = "")
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Path.GetDirectoryName(sourceFile) ?? string.Empty })
        {
            for (var dir = start.Length > 0 ? new DirectoryInfo(start) : null; dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Cri.sln")))
                {
                    return dir.FullName;
                }
            }
        }

        throw new InvalidOperationException($"no Cri.sln above {AppContext.BaseDirectory} or {sourceFile}");
    }
}
