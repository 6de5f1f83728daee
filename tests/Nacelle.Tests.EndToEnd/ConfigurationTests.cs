using Nacelle.Tests.EndToEnd.Infrastructure;
using Runtime.V1;

namespace Nacelle.Tests.EndToEnd;

/// <summary>The configuration as the nacelle executable sees it: refusal to start, config commands, drop-ins.</summary>
public sealed class ConfigurationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("nacelle-e2e-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task AnInvalidConfigRefusesToStartNamingTheKey()
    {
        await using var daemon = await DaemonProcess.StartAsync("[grpc]\nshutdown_timeout = \"forever\"\n", waitUntilServing: false);

        Assert.Equal(2, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains("invalid configuration", daemon.Output);
        Assert.Contains("grpc.shutdown_timeout: 'forever' is not a duration", daemon.Output);
        Assert.False(File.Exists(daemon.Socket));
    }

    [Fact]
    public async Task AFailedStartLeavesNoProcessOrDirectoryBehind()
    {
        var dir = Directory.CreateTempSubdirectory("nacelle-e2e-").FullName;
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            DaemonProcess.StartAsync("log_level = \"loud\"\n", directory: dir));
        Assert.Contains("log_level: 'loud' is not one of", e.Message);
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public async Task ABadFlagValueRefusesToStartNamingTheFlag()
    {
        await using var daemon = await DaemonProcess.StartAsync(waitUntilServing: false, extraArgs: ["--log-level", "chatty"]);

        Assert.Equal(2, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains("--log-level: log_level: 'chatty' is not one of", daemon.Output);
    }

    [Fact]
    public async Task TheDefaultConfigPassesCheckAndCheckFindsErrors()
    {
        var (exit, defaults, _) = await DaemonProcess.RunToExitAsync("config", "default");
        Assert.Equal(0, exit);
        Assert.Contains("[grpc]", defaults);
        Assert.Contains("socket = \"/run/nacelle/nacelle.sock\"", defaults);

        var good = Path.Combine(_dir, "config.toml");
        await File.WriteAllTextAsync(good, defaults);
        (exit, var stdout, _) = await DaemonProcess.RunToExitAsync("config", "check", good);
        Assert.Equal(0, exit);
        Assert.Contains("configuration is valid", stdout);

        // A drop-in beside it is checked too.
        Directory.CreateDirectory(Path.Combine(_dir, "config.d"));
        await File.WriteAllTextAsync(Path.Combine(_dir, "config.d", "10-metrics.toml"), "[metrics]\naddress = \"nowhere\"\n");
        (exit, _, var stderr) = await DaemonProcess.RunToExitAsync("config", "check", good);
        Assert.Equal(2, exit);
        Assert.Contains("10-metrics.toml: metrics.address: 'nowhere' is not host:port", stderr);
    }

    [Fact]
    public async Task DropInsChangeWhatTheDaemonServes()
    {
        var dropIns = Path.Combine(_dir, "config.d");
        Directory.CreateDirectory(dropIns);
        await File.WriteAllTextAsync(Path.Combine(dropIns, "50-grpc.toml"), "[grpc]\nshutdown_timeout = \"3s\"\n");

        await using var daemon = await DaemonProcess.StartAsync(extraArgs: ["--config-dir", dropIns]);
        var status = await daemon.Client.Runtime.StatusAsync(new StatusRequest { Verbose = true });
        Assert.Contains("\"shutdown_timeout\":\"3s\"", status.Info["config"]);
        Assert.Contains("50-grpc.toml", status.Info["runtime"]);
    }

    [Fact]
    public async Task ACorruptMetadataDatabaseIsAClearStartError()
    {
        var dir = Directory.CreateTempSubdirectory("nacelle-e2e-").FullName;
        Directory.CreateDirectory(Path.Combine(dir, "root"));
        await File.WriteAllTextAsync(Path.Combine(dir, "root", "metadata.db"), "this is not an SQLite database, it is a text file of some length");

        await using var daemon = await DaemonProcess.StartAsync(directory: dir, waitUntilServing: false);

        Assert.Equal(4, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60))); // state unusable
        Assert.Contains("nacelle: cannot start: root ", daemon.Output);
        Assert.Contains("metadata.db", daemon.Output);
        Assert.DoesNotContain("   at ", daemon.Output); // a message, not a stack trace
    }

    [Fact]
    public async Task UnknownCommandsAreUsageErrors()
    {
        var (exit, _, stderr) = await DaemonProcess.RunToExitAsync("--frobnicate");
        Assert.Equal(2, exit);
        Assert.Contains("unknown flag '--frobnicate'", stderr);
        Assert.Contains("Usage:", stderr);
    }
}
