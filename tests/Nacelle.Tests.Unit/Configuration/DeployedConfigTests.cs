using Nacelle.CriServer.Configuration;

namespace Nacelle.Tests.Unit.Configuration;

public sealed class DeployedConfigTests
{
    [Fact]
    public void TheShippedDefaultConfigIsExactlyWhatTheDaemonPrints()
    {
        var shipped = Nacelle.Tests.Support.SourceTree.PathOf("deploy", "config", "config.toml");
        Assert.True(File.Exists(shipped), $"{shipped} is missing");
        Assert.Equal(
            ConfigRenderer.ToToml(new NacelleConfig()),
            File.ReadAllText(shipped));
    }
}
