using System.Diagnostics;
using Nacelle.ContainerCore.Interop;
using Nacelle.Tests.EndToEnd.Infrastructure;
using Nacelle.Tests.Support;
using Runtime.V1;

namespace Nacelle.Tests.EndToEnd;

/// <summary>
/// The Debian package as an operator uses it: scripts/package.sh builds it from the Native AOT build, lintian finds
/// nothing it has not been told about, `dpkg -i` installs exactly the expected files and a daemon that runs pods,
/// `dpkg -r` stops the daemon but leaves its pods and state, `dpkg -P` refuses while pods run and, once they are gone,
/// leaves nothing behind: no file, directory, unit, enablement link, user or group. The machine's own nacelle (if
/// any) is never touched: the test skips when one is installed or its directories exist.
/// </summary>
[Collection(SystemDirectoryTests.Collection)]
public sealed class DebianPackageTests
{
    private static readonly TimeSpan Slow = TimeSpan.FromMinutes(5);

    // Paths the package or its daemon own; none may exist before the test, and none after the purge.
    private static readonly string[] OwnedPaths =
    [
        "/etc/nacelle", "/usr/lib/nacelle", "/usr/bin/nacelle", "/var/lib/nacelle", "/run/nacelle",
        "/lib/systemd/system/nacelle.service", "/usr/share/doc/nacelle", "/usr/share/man/man8/nacelle.8.gz",
        "/usr/share/lintian/overrides/nacelle", "/etc/systemd/system/multi-user.target.wants/nacelle.service",
    ];

    private static readonly string[] ExpectedFiles =
    [
        "/etc/nacelle/config.toml",
        "/lib/systemd/system/nacelle.service",
        "/usr/bin/nacelle",
        "/usr/lib/nacelle/libe_sqlite3.so",
        "/usr/lib/nacelle/nacelle",
        "/usr/lib/nacelle/nacelle-monitor",
        "/usr/lib/nacelle/nacelle-pause",
        "/usr/lib/nacelle/nacelle-spawn",
        "/usr/share/doc/nacelle/changelog.Debian.gz",
        "/usr/share/doc/nacelle/copyright",
        "/usr/share/lintian/overrides/nacelle",
        "/usr/share/man/man8/nacelle.8.gz",
    ];

    private static (int Exit, string Stdout, string Stderr) Run(string file, params string[] arguments) =>
        TestProcesses.Run(Slow, file, arguments);

    private static string Check((int Exit, string Stdout, string Stderr) run, string what)
    {
        Assert.True(run.Exit == 0, $"{what} failed ({run.Exit}):\n{run.Stderr}\n{run.Stdout}");
        return run.Stdout;
    }

    private static string PackageStatus() =>
        Run("dpkg-query", "-W", "-f=${db:Status-Abbrev}", "nacelle") is { Exit: 0 } r ? r.Stdout.Trim() : "not-installed";

    /// <summary>What the machine holds that an installation could leave behind: users, groups, units and their links.</summary>
    private static string MachineSnapshot()
    {
        static IEnumerable<string> Tree(string dir) => Directory.Exists(dir)
            ? Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            : [];
        return string.Join('\n', [
            File.ReadAllText("/etc/passwd"), File.ReadAllText("/etc/group"),
            .. Tree("/etc/systemd/system"), .. Tree("/var/lib/systemd/deb-systemd-helper-enabled"),
            .. Tree("/var/lib/systemd/deb-systemd-helper-masked"), .. Tree("/lib/systemd/system").Where(p => p.Contains("nacelle", StringComparison.Ordinal)),
        ]);
    }

    private static IEnumerable<int> ProcessesRunning(string executablePrefix)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
            {
                continue;
            }

            string? target = null;
            try
            {
                target = new FileInfo(Path.Combine(dir, "exe")).LinkTarget;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }

            if (target?.StartsWith(executablePrefix, StringComparison.Ordinal) == true)
            {
                yield return pid;
            }
        }
    }

    /// <summary>The installed daemon, on the package's own configuration (metrics off, so a busy port cannot matter).</summary>
    private static async Task<(Process Daemon, CriClient Client)> StartInstalledDaemonAsync()
    {
        Directory.CreateDirectory("/etc/nacelle/config.d");
        await File.WriteAllTextAsync("/etc/nacelle/config.d/90-package-test.toml", "[metrics]\nenabled = false\n");
        var info = new ProcessStartInfo("/usr/bin/nacelle") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        var daemon = Process.Start(info)!;
        daemon.BeginErrorReadLine();
        daemon.BeginOutputReadLine();
        var client = new CriClient("/run/nacelle/nacelle.sock");
        var clock = Stopwatch.StartNew();
        while (true)
        {
            Assert.False(daemon.HasExited, "the installed daemon exited at start");
            try
            {
                await client.Runtime.VersionAsync(new VersionRequest(), deadline: DateTime.UtcNow.AddSeconds(5));
                return (daemon, client);
            }
            catch (Grpc.Core.RpcException) when (clock.Elapsed < TimeSpan.FromSeconds(60))
            {
                await Task.Delay(50);
            }
        }
    }

    private static async Task StopAsync(Process daemon, CriClient client)
    {
        client.Dispose();
        Signals.Send(daemon.Id, Signals.SIGTERM);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await daemon.WaitForExitAsync(timeout.Token);
        daemon.Dispose();
    }

    [Fact]
    public async Task BuildLintInstallRemoveAndPurgeLeavingNothingBehind()
    {
        Assert.SkipUnless(Environment.UserName == "root", "installs a package: needs root");
        foreach (var tool in new[] { "/usr/bin/dpkg-deb", "/usr/bin/dpkg-shlibdeps", "/usr/bin/lintian", "/usr/bin/strip" })
        {
            Assert.SkipUnless(File.Exists(tool), $"needs {tool} (scripts/install-deps.sh --test installs it)");
        }

        var artifacts = SourceTree.PathOf("artifacts", "nacelle");
        Assert.SkipUnless(Environment.GetEnvironmentVariable("NACELLE_BIN") == Path.Combine(artifacts, "nacelle"),
            $"packages the Native AOT build: run through scripts/test.sh (NACELLE_BIN={Path.Combine(artifacts, "nacelle")})");
        var status = PackageStatus();
        Assert.SkipWhen(status != "not-installed" && !status.StartsWith("un", StringComparison.Ordinal),
            $"a nacelle package is installed on this machine for real (dpkg status '{status}'); this test does not touch it");
        var present = OwnedPaths.Where(p => File.Exists(p) || Directory.Exists(p)).ToList();
        Assert.SkipWhen(present.Count > 0, $"this machine has its own nacelle files ({string.Join(", ", present)}); this test does not touch them");

        var before = MachineSnapshot();
        var output = Directory.CreateTempSubdirectory("nacelle-deb-").FullName;
        var cgroupParent = "/nacelle-deb-" + Guid.NewGuid().ToString("N")[..8];
        Process? daemon = null;
        try
        {
            Check(TestProcesses.Run(Slow, "bash", SourceTree.PathOf("scripts", "package.sh"), "--no-build", "--output", output), "scripts/package.sh");
            var deb = Assert.Single(Directory.GetFiles(output, "nacelle_*_amd64.deb"));
            var version = Check(Run(Path.Combine(artifacts, "nacelle"), "version"), "nacelle version").Trim();

            // lintian: nothing but what deploy/debian/lintian-overrides explains. It leaves its ELF cache (mldbm-elf-*)
            // in its TMPDIR: this test's own directory, which goes with the test.
            var lintTemp = Directory.CreateDirectory(Path.Combine(output, "lintian-tmp")).FullName;
            var environment = new Dictionary<string, string> { ["TMPDIR"] = lintTemp };
            var lint = TestProcesses.Run(Slow, environment, "lintian", "--pedantic", deb);
            var findings = (lint.Stdout + lint.Stderr).Split('\n').Where(l => l.Length > 1 && l[1] == ':' && l[0] is 'E' or 'W' or 'I' or 'P').ToList();
            Assert.True(findings.Count == 0 && lint.Exit == 0, $"lintian ({lint.Exit}):\n{string.Join('\n', findings)}\n{lint.Stderr}");
            var fields = Check(Run("dpkg-deb", "-f", deb, "Depends", "Recommends"), "dpkg-deb -f");
            Assert.Contains("libc6 (>= ", fields);
            Assert.Contains("libssl3", fields); // loaded at run time for TLS to registries
            Assert.Contains("Recommends: containernetworking-plugins, iptables", fields);

            // Install: exactly the expected files, a working command, the node configuration as a conffile.
            Check(Run("dpkg", "-i", deb), "dpkg -i");
            var files = Check(Run("dpkg-query", "-L", "nacelle"), "dpkg -L").Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Where(File.Exists).Order(StringComparer.Ordinal); // files and links to files; no directories
            Assert.Equal(ExpectedFiles, files);
            Assert.Equal(version, Check(Run("/usr/bin/nacelle", "version"), "/usr/bin/nacelle version").Trim());
            Assert.Equal("/etc/nacelle/config.toml", Check(Run("dpkg-query", "-W", "-f=${Conffiles}", "nacelle"), "conffiles").Trim().Split(' ')[0]);
            Assert.Equal(Check(Run("/usr/bin/nacelle", "config", "default"), "config default"), await File.ReadAllTextAsync("/etc/nacelle/config.toml"));
            Assert.Contains("default_network = \"none\"", await File.ReadAllTextAsync("/etc/nacelle/config.toml"));
            Check(Run("/usr/bin/nacelle", "config", "check"), "nacelle config check");
            Assert.Equal("/lib/systemd/system/nacelle.service", new FileInfo("/etc/systemd/system/multi-user.target.wants/nacelle.service").LinkTarget);

            // The installed daemon runs a pod; its monitor is the installed one.
            var (started, client) = await StartInstalledDaemonAsync();
            daemon = started;
            var pod = (await client.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = HostNetworkPod(cgroupParent) })).PodSandboxId;
            var monitors = ProcessesRunning("/usr/lib/nacelle/nacelle-monitor").ToList();
            Assert.Single(monitors);
            await StopAsync(daemon, client);
            daemon = null;

            // Remove: the daemon's files go, its pod and state stay (a removal never takes a node's workloads down).
            Check(Run("dpkg", "-r", "nacelle"), "dpkg -r");
            Assert.False(File.Exists("/usr/lib/nacelle/nacelle"));
            Assert.True(Directory.Exists($"/proc/{monitors[0]}"), "dpkg -r killed the pod's monitor");
            Assert.True(Directory.Exists("/var/lib/nacelle") && Directory.Exists("/run/nacelle"));
            Assert.True(File.Exists("/etc/nacelle/config.toml"), "dpkg -r removed the conffile");

            // Purge while the pod runs: refused, saying why, with everything in place to finish later.
            var refused = Run("dpkg", "-P", "nacelle");
            Assert.NotEqual(0, refused.Exit);
            Assert.Contains("not purging: 1 pod monitor(s) still run", refused.Stderr);
            Assert.True(Directory.Exists($"/proc/{monitors[0]}"));
            Assert.True(Directory.Exists("/var/lib/nacelle"));
            Assert.Equal("pc", PackageStatus()); // purge asked, configuration files kept: the purge can be run again

            // As the message says: reinstall, remove the pods, purge again.
            Check(Run("dpkg", "-i", deb), "dpkg -i (again)");
            (started, client) = await StartInstalledDaemonAsync();
            daemon = started;
            await client.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod });
            await client.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod });
            await StopAsync(daemon, client);
            daemon = null;
            Check(Run("dpkg", "-P", "nacelle"), "dpkg -P");

            Assert.Equal("not-installed", PackageStatus());
            Assert.DoesNotContain(OwnedPaths, p => File.Exists(p) || Directory.Exists(p));
            Assert.Empty(ProcessesRunning("/usr/lib/nacelle/"));
            Assert.Empty(MountsBelowState());
            Assert.Equal(before, MachineSnapshot());
        }
        finally
        {
            // Whatever happened above, the machine is left as it was found; a cleanup failure never hides the test's.
            Cleanup(daemon, cgroupParent, output);
        }
    }

    private static void Cleanup(Process? daemon, string cgroupParent, string output)
    {
        void Try(Action step)
        {
            try
            {
                step();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
            {
                Console.Error.WriteLine($"DebianPackageTests cleanup: {e.Message}");
            }
        }

        if (daemon is { HasExited: false })
        {
            Signals.Send(daemon.Id, Signals.SIGKILL);
        }

        // The pod's monitor and everything in its cgroup (pause-init), by pid.
        var pids = ProcessesRunning("/usr/lib/nacelle/").ToList();
        var procs = $"/sys/fs/cgroup/pids{cgroupParent}";
        if (Directory.Exists(procs))
        {
            pids.AddRange(Directory.EnumerateFiles(procs, "cgroup.procs", SearchOption.AllDirectories)
                .SelectMany(File.ReadAllLines).Select(int.Parse));
        }

        foreach (var pid in pids.Distinct())
        {
            Signals.Send(pid, Signals.SIGKILL);
        }

        Thread.Sleep(200);
        foreach (var mount in MountsBelowState().OrderByDescending(m => m.Length))
        {
            Run("umount", "-l", mount);
        }

        if (PackageStatus() != "not-installed")
        {
            Run("dpkg", "--purge", "--force-all", "nacelle");
        }

        foreach (var path in new[] { "/etc/nacelle", "/var/lib/nacelle", "/run/nacelle" }.Where(Directory.Exists))
        {
            Try(() => Directory.Delete(path, recursive: true));
        }

        Try(() => TestCgroups.RemoveTree(cgroupParent));
        Try(() => Directory.Delete(output, recursive: true));
    }

    private static IEnumerable<string> MountsBelowState() =>
        File.ReadAllLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4])
            .Where(m => m is "/run/nacelle" or "/var/lib/nacelle"
                || m.StartsWith("/run/nacelle/", StringComparison.Ordinal) || m.StartsWith("/var/lib/nacelle/", StringComparison.Ordinal))
            .ToList();

    private static PodSandboxConfig HostNetworkPod(string cgroupParent) => new()
    {
        Metadata = new PodSandboxMetadata { Name = "deb", Namespace = "package-test", Uid = Guid.NewGuid().ToString(), Attempt = 1 },
        LogDirectory = "/tmp",
        Linux = new LinuxPodSandboxConfig
        {
            CgroupParent = cgroupParent,
            SecurityContext = new LinuxSandboxSecurityContext
            {
                NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node, Pid = NamespaceMode.Pod, Ipc = NamespaceMode.Pod },
            },
        },
    };
}
