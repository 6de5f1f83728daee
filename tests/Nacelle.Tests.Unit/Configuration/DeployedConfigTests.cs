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

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Cri.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"no Cri.sln above {AppContext.BaseDirectory}");
    }
}
