using Nacelle.CriServer.Configuration;
using Nacelle.CriServer.Hosting;

namespace Nacelle.Tests.Unit.Hosting;

public sealed class CommandLineTests
{
    [Fact]
    public void NoArgumentsRunsTheDaemonWithTheDefaultConfigLocation()
    {
        var run = Assert.IsType<Command.RunDaemon>(CommandLine.Parse([]));
        Assert.Equal("/etc/nacelle/config.toml", run.Sources.ConfigPath);
        Assert.False(run.Sources.ConfigPathExplicit);
        Assert.Equal("/etc/nacelle/config.d", run.Sources.DropInDirectory);
        Assert.Empty(run.Sources.Overrides);
    }

    [Fact]
    public void FlagsBecomeOverridesOfTheirKeys()
    {
        var run = Assert.IsType<Command.RunDaemon>(CommandLine.Parse(
            ["--config", "/tmp/n/c.toml", "--socket=/tmp/n.sock", "--root", "/tmp/r", "--state", "/tmp/s", "--log-level", "debug",
             "--default-network", "builtin"]));
        Assert.Equal("/tmp/n/c.toml", run.Sources.ConfigPath);
        Assert.True(run.Sources.ConfigPathExplicit);
        Assert.Equal("/tmp/n/config.d", run.Sources.DropInDirectory);
        Assert.Equal(
            [new ConfigOverride("--socket", "grpc.socket", "/tmp/n.sock"), new ConfigOverride("--root", "root", "/tmp/r"),
             new ConfigOverride("--state", "state", "/tmp/s"), new ConfigOverride("--log-level", "log_level", "debug"),
             new ConfigOverride("--default-network", "cni.default_network", "builtin")],
            run.Sources.Overrides);
    }

    [Fact]
    public void ConfigCommands()
    {
        Assert.IsType<Command.PrintDefaultConfig>(CommandLine.Parse(["config", "default"]));
        var check = Assert.IsType<Command.CheckConfig>(CommandLine.Parse(["config", "check", "/x/y.toml", "--config-dir", "/x/d"]));
        Assert.Equal("/x/y.toml", check.Sources.ConfigPath);
        Assert.True(check.Sources.ConfigPathExplicit);
        Assert.Equal("/x/d", check.Sources.DropInDirectory);
        var checkDefault = Assert.IsType<Command.CheckConfig>(CommandLine.Parse(["config", "check"]));
        Assert.False(checkDefault.Sources.ConfigPathExplicit);
        Assert.IsType<Command.PrintVersion>(CommandLine.Parse(["--version"]));
        Assert.IsType<Command.PrintHelp>(CommandLine.Parse(["--help"]));
    }

    [Theory]
    [InlineData("--sock", "unknown flag '--sock'")]
    [InlineData("--socket", "flag --socket needs a value")]
    [InlineData("frobnicate", "unknown command 'frobnicate'")]
    [InlineData("config", "expected `nacelle config default`")]
    public void BadCommandLinesAreUsageErrors(string args, string message)
    {
        var e = Assert.Throws<UsageException>(() => CommandLine.Parse(args.Split(' ')));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void ConfigCheckDoesNotTakeDaemonFlags()
    {
        Assert.Throws<UsageException>(() => CommandLine.Parse(["config", "check", "--socket", "/x"]));
    }
}
