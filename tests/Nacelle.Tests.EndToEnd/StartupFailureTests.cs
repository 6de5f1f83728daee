using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Nacelle.Tests.EndToEnd.Infrastructure;
using Nacelle.Tests.Support;

namespace Nacelle.Tests.EndToEnd;

/// <summary>
/// What an operator sees when nacelle cannot start: exactly one line on stderr naming the setting and the fix, the exit
/// status docs/configuration.md lists (2 configuration, 3 in use, 4 state directory), and no stack trace.
/// </summary>
public sealed class StartupFailureTests
{
    /// <summary>The whole output is one line starting with <paramref name="prefix"/>; returns it.</summary>
    private static string SingleLine(string output, string prefix)
    {
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var line = Assert.Single(lines);
        Assert.StartsWith(prefix, line, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", line, StringComparison.Ordinal);
        return line;
    }

    private static async Task<(int Exit, string Output)> StartAndWaitForExitAsync(string configToml = "", string? directory = null,
        IEnumerable<string>? extraArgs = null)
    {
        await using var daemon = await DaemonProcess.StartAsync(configToml, directory: directory, extraArgs: extraArgs, waitUntilServing: false);
        var exit = await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60));
        return (exit, daemon.Output);
    }

    [Fact]
    public async Task AMetricsPortInUseIsOneLineNamingMetricsAddress()
    {
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        var port = ((IPEndPoint)squatter.LocalEndpoint).Port;

        var dir = Directory.CreateTempSubdirectory("nacelle-e2e-").FullName;
        // The metrics address in a drop-in wins over the one DaemonProcess writes into the main file.
        var dropIns = Path.Combine(dir, "config.d");
        Directory.CreateDirectory(dropIns);
        await File.WriteAllTextAsync(Path.Combine(dropIns, "50-metrics.toml"), $"[metrics]\naddress = \"127.0.0.1:{port}\"\n");
        var (exit, output) = await StartAndWaitForExitAsync(directory: dir, extraArgs: ["--config-dir", dropIns]);

        Assert.Equal(3, exit);
        var line = SingleLine(output, "nacelle: cannot start: ");
        Assert.Contains($"metrics.address 127.0.0.1:{port} is already in use", line);
        Assert.Contains("set metrics.address to a free port or metrics.enabled = false", line);
        Assert.False(File.Exists(Path.Combine(dir, "nacelle.sock")), "the refused daemon left its socket behind");
    }

    [Fact]
    public async Task ASecondDaemonOnTheSameSocketIsOneLineNamingGrpcSocket()
    {
        await using var first = await DaemonProcess.StartAsync();
        var dir = Directory.CreateTempSubdirectory("nacelle-e2e-").FullName;
        try
        {
            var config = Path.Combine(dir, "config.toml");
            await File.WriteAllTextAsync(config, "[metrics]\nenabled = false\n");
            var (exit, stdout, stderr) = await DaemonProcess.RunToExitAsync(
                "--config", config, "--socket", first.Socket, "--root", Path.Combine(dir, "root"), "--state", Path.Combine(dir, "state"));

            Assert.Equal(3, exit);
            Assert.Equal(string.Empty, stdout);
            var line = SingleLine(stderr, "nacelle: cannot start: ");
            Assert.Contains($"grpc.socket {first.Socket}: another nacelle is running for this socket", line);
            Assert.Contains("give this daemon another socket (--socket or grpc.socket)", line);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }

        await first.Client.Runtime.VersionAsync(new Runtime.V1.VersionRequest()); // unharmed
    }

    [Fact]
    public async Task AConfigPathThatIsADirectoryIsOneLine()
    {
        var dir = Directory.CreateTempSubdirectory("nacelle-e2e-").FullName;
        var notAFile = Path.Combine(dir, "config-dir.toml");
        Directory.CreateDirectory(notAFile);
        var (exit, output) = await StartAndWaitForExitAsync(directory: dir, extraArgs: ["--config", notAFile]);

        Assert.Equal(2, exit);
        var line = SingleLine(output, "nacelle: invalid configuration: ");
        Assert.Contains($"{notAFile}: is a directory, not a configuration file; point --config at a TOML file", line);
    }

    [Fact]
    public async Task AnUnreadableConfigIsOneLine()
    {
        Assert.SkipUnless(Environment.UserName == "root" && File.Exists("/usr/bin/setpriv"),
            "needs root and setpriv (util-linux) to run the daemon as an unprivileged user");
        var bin = Environment.GetEnvironmentVariable("NACELLE_BIN");
        Assert.SkipWhen(string.IsNullOrEmpty(bin), "needs NACELLE_BIN (the AOT build, which `nobody` can run without a .NET home)");

        // root reads any file; the daemon run as `nobody` meets a file only its owner may read.
        var dir = Directory.CreateTempSubdirectory("nacelle-e2e-").FullName;
        try
        {
            File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
            var config = Path.Combine(dir, "config.toml");
            await File.WriteAllTextAsync(config, "log_level = \"info\"\n");
            File.SetUnixFileMode(config, UnixFileMode.UserRead | UnixFileMode.UserWrite);

            var run = TestProcesses.Run("/usr/bin/setpriv",
                "--reuid=65534", "--regid=65534", "--clear-groups", "--", bin!, "--config", config, "--socket", Path.Combine(dir, "s.sock"));

            Assert.Equal(2, run.Exit);
            Assert.Equal(string.Empty, run.Stdout);
            var line = SingleLine(run.Stderr, "nacelle: invalid configuration: ");
            Assert.Contains($"{config}: cannot read configuration file:", line);
            Assert.Contains("make it readable by the user nacelle runs as, or point --config at another file", line);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task ARootThatIsAFileIsOneLineNamingRoot()
    {
        var dir = Directory.CreateTempSubdirectory("nacelle-e2e-").FullName;
        await File.WriteAllTextAsync(Path.Combine(dir, "root"), "not a directory");
        var (exit, output) = await StartAndWaitForExitAsync(directory: dir);

        Assert.Equal(4, exit);
        var line = SingleLine(output, "nacelle: cannot start: ");
        Assert.Contains($"root {Path.Combine(dir, "root")}: exists and is not a directory; make it a writable directory or set root (--root) to one", line);
    }

    [Theory]
    [InlineData("root", "--root")]
    [InlineData("state", "--state")]
    public async Task AStateDirectoryOnAReadOnlyFileSystemIsOneLineNamingIt(string key, string flag)
    {
        Assert.SkipUnless(Environment.UserName == "root", "needs root to make a read-only bind mount");

        // A directory bind-mounted read-only onto itself, apart from the daemons' own directories.
        var readOnly = Directory.CreateTempSubdirectory("nacelle-e2e-ro-").FullName;
        Directory.CreateDirectory(Path.Combine(readOnly, "existing"));
        Check(TestProcesses.Run("mount", "--bind", readOnly, readOnly));
        try
        {
            Check(TestProcesses.Run("mount", "-o", "remount,bind,ro", readOnly));

            // Missing and not creatable...
            var missing = Path.Combine(readOnly, "missing");
            var (exit, output) = await StartAndWaitForExitAsync(extraArgs: [flag, missing]);
            Assert.Equal(4, exit);
            var line = SingleLine(output, "nacelle: cannot start: ");
            Assert.Contains($"{key} {missing}: cannot create the directory:", line);
            Assert.Contains($"set {key} ({flag}) to one", line);

            // ...or there but not writable.
            var existing = Path.Combine(readOnly, "existing");
            (exit, output) = await StartAndWaitForExitAsync(extraArgs: [flag, existing]);
            Assert.Equal(4, exit);
            line = SingleLine(output, "nacelle: cannot start: ");
            Assert.Contains($"{key} {existing}: cannot write there:", line);
            Assert.Contains("Read-only file system", line);
        }
        finally
        {
            TestProcesses.Run("umount", readOnly);
            Directory.Delete(readOnly, recursive: true);
        }
    }

    private static void Check((int Exit, string Stdout, string Stderr) run) =>
        Assert.True(run.Exit == 0, $"exit {run.Exit}: {run.Stderr}{run.Stdout}");
}
