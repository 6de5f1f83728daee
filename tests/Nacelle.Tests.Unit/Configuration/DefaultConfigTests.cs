using Nacelle.CriServer.Configuration;

namespace Nacelle.Tests.Unit.Configuration;

public sealed class DefaultConfigTests
{
    [Fact]
    public void DefaultConfigListsEveryKeyWithACommentAndParsesBackToTheDefaults()
    {
        var toml = ConfigRenderer.ToToml(new NacelleConfig());
        var lines = toml.Split('\n');

        foreach (var key in ConfigKeys.All)
        {
            // The key appears once, in its section, right after a comment line.
            var sectionStart = key.Section.Length == 0 ? 0 : Array.IndexOf(lines, $"[{key.Section}]");
            Assert.True(sectionStart >= 0, $"section [{key.Section}] missing");
            var index = Array.FindIndex(lines, sectionStart, l => l.StartsWith(key.Name + " = ", StringComparison.Ordinal));
            Assert.True(index > 0, $"{key.Path} missing from the default config");
            Assert.StartsWith("# ", lines[index - 1]);
        }

        var parsed = new NacelleConfig();
        var set = new HashSet<string>();
        ConfigLoader.ApplyToml(parsed, toml, "default", set);

        Assert.Equal(ConfigKeys.All.Count, set.Count);
        Assert.Equal(ConfigRenderer.ToJson(new NacelleConfig()), ConfigRenderer.ToJson(parsed));
    }

    [Fact]
    public void EffectiveConfigJsonIsNestedBySection()
    {
        var config = new NacelleConfig();
        config.Grpc.Socket = "/tmp/x.sock";
        config.Grpc.ShutdownTimeout = TimeSpan.FromMilliseconds(1500);

        using var json = System.Text.Json.JsonDocument.Parse(ConfigRenderer.ToJson(config));
        Assert.Equal("/tmp/x.sock", json.RootElement.GetProperty("grpc").GetProperty("socket").GetString());
        Assert.Equal("1s500ms", json.RootElement.GetProperty("grpc").GetProperty("shutdown_timeout").GetString());
        Assert.True(json.RootElement.GetProperty("metrics").GetProperty("enabled").GetBoolean());
        Assert.Equal("/var/lib/nacelle", json.RootElement.GetProperty("root").GetString());
    }

    [Theory]
    [InlineData("10s", 10_000)]
    [InlineData("500ms", 500)]
    [InlineData("1h30m", 5_400_000)]
    [InlineData("1.5s", 1_500)]
    [InlineData("2m5s250ms", 125_250)]
    public void DurationsParse(string text, long milliseconds)
    {
        Assert.True(Duration.TryParse(text, out var value));
        Assert.Equal(milliseconds, (long)value.TotalMilliseconds);
        Assert.True(Duration.TryParse(Duration.Format(value), out var again));
        Assert.Equal(value, again);
    }

    [Theory]
    [InlineData("")]
    [InlineData("10")]
    [InlineData("s")]
    [InlineData("10 s")]
    [InlineData("3d")]
    [InlineData("-5s")]
    public void BadDurationsAreRefused(string text) => Assert.False(Duration.TryParse(text, out _));
}
