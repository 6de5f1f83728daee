using Nacelle.ContainerCore.Security;
using Nacelle.ContainerCore.Security.Seccomp;
using Nacelle.ContainerCore.Spec;
using Nacelle.Tests.Kernel.Containers;
using Nacelle.Tests.Support;

namespace Nacelle.Tests.Kernel.Security;

/// <summary>
/// The programs the security tests run inside containers, built once per test run from the sources in Probes/:
/// syscall-probe (C, gcc -static: every probe through the native, i386 and x32 entry points) and goprobe (Go,
/// CGO_ENABLED=0: a static program), plus the helpers that put them into a container and read their answers.
/// </summary>
internal static class Probes
{
    private static readonly string Sources = Path.Combine(AppContext.BaseDirectory, "Security", "Probes");
    private static readonly Lazy<string> BuildDirectory = new(() =>
    {
        var directory = Directory.CreateTempSubdirectory("nacelle-probes-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Directory.Delete(directory, recursive: true);
        return directory;
    });
    private static readonly Lazy<string> SyscallProbe = new(BuildSyscallProbe);
    private static readonly Dictionary<string, Lazy<string>> GoProbes = new(StringComparer.Ordinal);

    public const string Go119 = "/usr/bin/go";
    public const string Go123 = "/usr/lib/go-1.23/bin/go";

    /// <summary>The static syscall-probe binary (gcc -static -O2).</summary>
    public static string SyscallProbePath => SyscallProbe.Value;

    /// <summary>The Python program of pyprobe.py.</summary>
    public static string PythonProbeSource => File.ReadAllText(Path.Combine(Sources, "pyprobe.py"));

    /// <summary>A static goprobe built by the Go toolchain at <paramref name="go"/>.</summary>
    public static string GoProbe(string go)
    {
        Lazy<string> build;
        lock (GoProbes)
        {
            if (!GoProbes.TryGetValue(go, out build!))
            {
                build = new Lazy<string>(() => BuildGoProbe(go));
                GoProbes[go] = build;
            }
        }

        return build.Value;
    }

    /// <summary>Copies <paramref name="binary"/> into the scope's rootfs as <paramref name="name"/> (mode 0755).</summary>
    public static string Install(ContainerTestScope scope, string binary, string name)
    {
        var target = Path.Combine(scope.Rootfs, name.TrimStart('/'));
        File.Copy(binary, target, overwrite: true);
        File.SetUnixFileMode(target, (UnixFileMode)0b111_101_101);
        return "/" + name.TrimStart('/');
    }

    /// <summary>A spec running the syscall probe's table with <paramref name="capabilities"/> (bounding, effective,
    /// permitted) and, when given, <paramref name="seccomp"/> as its linux.seccomp.</summary>
    public static RuntimeSpec TableSpec(ContainerTestScope scope, IReadOnlyList<string> capabilities, SeccompProfile? seccomp)
    {
        var probe = Install(scope, SyscallProbePath, "syscall-probe");
        var spec = SpecDefaults.Container(scope.Rootfs, [probe, "table"]);
        spec.Process!.Capabilities = new SpecCapabilities
        {
            Bounding = [.. capabilities],
            Effective = [.. capabilities],
            Permitted = [.. capabilities],
        };
        spec.Linux!.Seccomp = seccomp is null ? null : System.Text.Json.JsonDocument.Parse(seccomp.ToJson()).RootElement.Clone();
        return spec;
    }

    /// <summary>Runs the probe table in a container made from <paramref name="spec"/>; (entry, probe) -> result.</summary>
    public static async Task<Dictionary<(string Entry, string Probe), string>> RunTableAsync(ContainerTestScope scope, RuntimeSpec spec)
    {
        var (state, stdout, stderr) = await scope.RunAsync(spec, timeout: TimeSpan.FromSeconds(120));
        Assert.True(state.ExitCode == 0, $"syscall-probe exited {state.ExitCode}: {stderr}");
        return ParseTable(stdout);
    }

    public static Dictionary<(string Entry, string Probe), string> ParseTable(string output)
    {
        var table = new Dictionary<(string, string), string>();
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split(' ');
            Assert.True(parts.Length == 3, $"unexpected probe line: {line}");
            table[(parts[0], parts[1])] = parts[2];
        }

        Assert.True(table.Count > 200, $"the probe printed only {table.Count} results");
        return table;
    }

    /// <summary>Every capability this process holds (what "all" can mean for a container it starts).</summary>
    public static IReadOnlyList<string> AllCapabilities() =>
        Capabilities.ToNames(Capabilities.OfThisProcess() ?? Capabilities.ToMask(Capabilities.Names));

    /// <summary>The RuntimeDefault profile for the default capability set, on this host.</summary>
    public static SeccompProfile RuntimeDefault() => DefaultSeccompProfile.For([.. Capabilities.DefaultNames]);

    private static string BuildSyscallProbe()
    {
        var output = Path.Combine(BuildDirectory.Value, "syscall-probe");
        var (exit, _, stderr) = TestProcesses.Run(
            TimeSpan.FromMinutes(2), "gcc", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", output, Path.Combine(Sources, "syscall-probe.c"));
        Assert.True(exit == 0, $"gcc failed: {stderr}");
        return output;
    }

    private static string BuildGoProbe(string go)
    {
        var name = "goprobe-" + Path.GetFileName(Path.GetDirectoryName(Path.GetDirectoryName(go))!);
        var output = Path.Combine(BuildDirectory.Value, name);
        // The toolchain's build cache and telemetry in the tests' tool home, kept between runs (never under /root).
        var environment = ToolHome.GoEnvironment();
        environment["CGO_ENABLED"] = "0";
        environment["GOPROXY"] = "off";
        var (exit, stdout, stderr) = TestProcesses.Run(
            TimeSpan.FromMinutes(10),
            environment,
            go, "build", "-o", output, Path.Combine(Sources, "goprobe.go"));
        Assert.True(exit == 0, $"{go} build failed: {stdout}{stderr}");
        return output;
    }
}
