using System.Text.Json;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Runtime.Oci;
using Nacelle.ContainerCore.Spec;

namespace Nacelle.Tests.Unit.ContainerCore.Runtime;

/// <summary>The bundle an external OCI runtime gets, and how a runtime command is put together and its errors read.</summary>
public sealed class OciBundleTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("nacelle-bundle-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static RuntimeSpec Spec() => new()
    {
        Process = new SpecProcess { Args = ["sleep", "1"], Env = ["PATH=/bin"], Cwd = "/" },
        Root = new SpecRoot { Path = "rootfs", Readonly = true },
        Hostname = "pod",
        Mounts = [new SpecMount { Destination = "/proc", Type = "proc", Source = "proc" }],
        Linux = new SpecLinux
        {
            Namespaces = [new SpecNamespace { Type = "network", Path = "/run/nacelle/ns/p/net" }, new SpecNamespace { Type = "mount" }],
            MaskedPaths = ["/proc/kcore"],
        },
        Annotations = { ["io.kubernetes.cri.container-type"] = "container" },
    };

    [Fact]
    public void The_bundle_is_the_spec_with_an_absolute_root_and_nacelles_cgroup()
    {
        var spec = Spec();
        var bundle = OciBundle.Write(Path.Combine(_dir, "bundle"), spec, "/run/nacelle/pods/p/containers/c", "/kubepods/pod1/c");

        var written = File.ReadAllText(Path.Combine(bundle, "config.json"));
        using var json = JsonDocument.Parse(written);
        var root = json.RootElement;
        Assert.Equal("/run/nacelle/pods/p/containers/c/rootfs", root.GetProperty("root").GetProperty("path").GetString());
        Assert.True(root.GetProperty("root").GetProperty("readonly").GetBoolean());
        Assert.Equal("/kubepods/pod1/c", root.GetProperty("linux").GetProperty("cgroupsPath").GetString());
        Assert.Equal("/run/nacelle/ns/p/net", root.GetProperty("linux").GetProperty("namespaces")[0].GetProperty("path").GetString());
        Assert.Equal("1.2.0", root.GetProperty("ociVersion").GetString());
        Assert.Equal(["sleep", "1"], root.GetProperty("process").GetProperty("args").EnumerateArray().Select(a => a.GetString()!).ToArray());
        Assert.Equal("pod", root.GetProperty("hostname").GetString());
        Assert.False(File.Exists(Path.Combine(bundle, "config.json.tmp")));

        // The caller's spec is left as it was.
        Assert.Equal("rootfs", spec.Root!.Path);
        Assert.Null(spec.Linux!.CgroupsPath);
    }

    [Fact]
    public void An_absolute_root_stays_and_a_spec_without_one_is_refused()
    {
        var spec = Spec();
        spec.Root!.Path = "/var/lib/nacelle/containers/c/rootfs";
        Assert.Equal("/var/lib/nacelle/containers/c/rootfs", OciBundle.Prepare(spec, "/elsewhere", "/c").Root!.Path);
        spec.Root = null;
        var e = Assert.Throws<Nacelle.Common.NacelleException>(() => OciBundle.Prepare(spec, "/b", "/c"));
        Assert.Contains("root.path", e.Message);
    }

    [Fact]
    public void Commands_carry_root_log_and_the_handlers_args_before_the_subcommand()
    {
        var runtime = new ExternalRuntime("runc", "/usr/sbin/runc", "/run/nacelle/runtimes/runc", ["--debug"]);
        Assert.Equal(
            ["/usr/sbin/runc", "--root", "/run/nacelle/runtimes/runc", "--log", "/s/runtime.log", "--log-format", "json", "--debug", "start", "c1"],
            OciRuntimeCommand.Arguments(runtime, "/s/runtime.log", ["start", "c1"]).ToArray());
    }

    [Fact]
    public void Runtime_errors_come_from_its_json_log_or_its_last_line()
    {
        Assert.Equal("container_linux.go:380: starting container process caused: exec: \"nope\": executable file not found in $PATH",
            OciRuntimeCommand.ParseError([
                """{"level":"info","msg":"nsexec-1[1]: child","time":"2026-01-01T00:00:00Z"}""",
                """{"level":"error","msg":"container_linux.go:380: starting container process caused: exec: \"nope\": executable file not found in $PATH","time":"2026-01-01T00:00:00Z"}""",
                "",
            ]));
        Assert.Equal("crun: cannot open `/x`: No such file or directory", OciRuntimeCommand.ParseError(["warning: x", "crun: cannot open `/x`: No such file or directory"]));
        Assert.Null(OciRuntimeCommand.ParseError([]));
    }
}
