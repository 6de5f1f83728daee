using Nacelle.ContainerCore.Security;
using Nacelle.ContainerCore.Spawn;
using Nacelle.ContainerCore.Spec;
using Nacelle.Tests.Kernel.Containers;

namespace Nacelle.Tests.Kernel.Security;

/// <summary>
/// RuntimeDefault against the real kernel: syscall-probe (Probes/syscall-probe.c) calls each forbidden and each
/// allowed system call through the native, i386 (int $0x80) and x32 entry points inside containers made by
/// ContainerCore, and ordinary programs (busybox, Debian's python3, static Go binaries) run their usual work under it.
/// </summary>
public sealed class RuntimeDefaultTests
{
    /// <summary>Refused for a default container on every entry point (EPERM).</summary>
    internal static readonly string[] Refused =
    [
        "unshare-newuser", "clone-newuser-newnet", "keyctl", "add_key", "request_key", "personality-read-implies-exec",
        "mount", "umount2", "pivot_root", "bpf", "perf_event_open", "ptrace", "kexec_load", "kexec_file_load",
        "init_module", "finit_module", "delete_module", "socket-af_vsock", "setns", "reboot", "swapon", "acct",
        "settimeofday", "clock_settime", "iopl", "ioperm", "syslog", "userfaultfd", "open_by_handle_at", "fsopen",
        "move_mount", "quotactl", "io_uring_setup", "modify_ldt", "process_vm_readv", "kcmp", "pidfd_getfd",
        "set_mempolicy", "mbind", "move_pages", "vhangup", "sethostname", "fanotify_init", "lsm_set_self_attr", "tuxcall",
    ];

    /// <summary>ENOSYS: clone3 by rule (glibc falls back to clone), the others as newer than the profile.</summary>
    internal static readonly string[] Enosys = ["clone3", "nr-470", "nr-1000"];

    private static readonly string[] FilteredEntries = ["native", "i386"];

    private static IReadOnlyList<string> DefaultCaps => Capabilities.DefaultNames;

    [Fact]
    public async Task The_filter_itself_refuses_every_forbidden_call_on_every_entry_point()
    {
        Assert.True(ContainerTestScope.Available, "kernel tests run as root with /bin/busybox");
        await using var scope = new ContainerTestScope();
        // Every capability this process has, so the kernel's own capability checks pass: what is refused here is
        // refused by the filter (RuntimeDefault for the default capability set).
        var all = Probes.AllCapabilities();
        var filtered = await Probes.RunTableAsync(scope, Probes.TableSpec(scope, all, Probes.RuntimeDefault()));
        var kernel = await Probes.RunTableAsync(scope, Probes.TableSpec(scope, all, seccomp: null));

        foreach (var probe in Refused)
        {
            foreach (var entry in FilteredEntries)
            {
                if (!kernel.TryGetValue((entry, probe), out var reached))
                {
                    continue; // not a call of that ABI (kexec_file_load, tuxcall on i386)
                }

                Assert.True(filtered[(entry, probe)] == "EPERM", $"{entry} {probe}: {filtered[(entry, probe)]} under RuntimeDefault");
                Assert.True(reached != "EPERM", $"{entry} {probe}: the kernel itself answers EPERM, so the probe proves nothing");
            }
        }

        foreach (var entry in FilteredEntries)
        {
            Assert.Equal("ENOSYS", filtered[(entry, "clone3")]);
            Assert.Equal("EINVAL", kernel[(entry, "clone3")]);
            Assert.Equal("ENOSYS", filtered[(entry, "nr-470")]);
        }

        // x32 is not named by the profile: any x32 call kills the process. This kernel has x32 off (ENOSYS without a
        // filter); on a kernel with x32 on, the kernel column would show the calls working instead.
        var x32 = filtered.Where(r => r.Key.Entry == "x32").ToList();
        Assert.NotEmpty(x32);
        Assert.All(x32, r => Assert.True(r.Value == "SIGSYS", $"x32 {r.Key.Probe}: {r.Value}"));
        var x32Off = kernel[("x32", "getpid")] == "ENOSYS";
        Assert.True(x32Off || kernel[("x32", "getpid")] == "ok", $"x32 getpid without a filter: {kernel[("x32", "getpid")]}");
    }

    [Fact]
    public async Task A_default_container_gets_what_the_kernel_gives_for_every_allowed_call()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var filtered = await Probes.RunTableAsync(scope, Probes.TableSpec(scope, DefaultCaps, Probes.RuntimeDefault()));
        var unconfined = await Probes.RunTableAsync(scope, Probes.TableSpec(scope, DefaultCaps, seccomp: null));
        AssertRuntimeDefault(filtered, unconfined);
    }

    [Fact]
    public async Task An_exec_gets_the_same_filter_as_the_container()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var probe = Probes.Install(scope, Probes.SyscallProbePath, "syscall-probe");
        var id = ContainerTestScope.NewId();
        var spec = scope.Spec("sleep 60");
        spec.Linux!.Seccomp = System.Text.Json.JsonDocument.Parse(Probes.RuntimeDefault().ToJson()).RootElement.Clone();
        await scope.Runtime.CreateAsync(id, spec, scope.Root, SpawnStdio.Null);
        await scope.Runtime.StartAsync(id);

        using var output = new CapturedOutput();
        var process = new SpecProcess
        {
            Args = [probe, "table"],
            Env = ["PATH=/bin"],
            Cwd = "/",
            Capabilities = SpecDefaults.Capabilities(),
            NoNewPrivileges = true,
        };
        using var exec = await scope.Runtime.ExecAsync(id, process, output.Stdio);
        output.CloseWriters();
        var exit = await exec.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(120));
        var (stdout, stderr) = await output.ReadAllAsync();
        Assert.True(exit.ExitCode == 0, stderr);
        var unconfined = await Probes.RunTableAsync(scope, Probes.TableSpec(scope, DefaultCaps, seccomp: null));
        AssertRuntimeDefault(Probes.ParseTable(stdout), unconfined);
    }

    [Fact]
    public async Task Busybox_applets_run_under_runtime_default()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var spec = scope.Spec("""
            set -e
            ls -la / >/dev/null
            echo data > /tmp/f && cat /tmp/f | grep -q data && wc -c /tmp/f >/dev/null
            mkdir -p /tmp/d/e && touch /tmp/d/e/x && rm -r /tmp/d
            ps >/dev/null
            id -u >/dev/null
            hostname >/dev/null
            seq 1 200 | tr '\n' ' ' | cut -c1-10 | sed 's/ /,/g' | xargs echo >/dev/null
            head -c 4096 /dev/urandom | wc -c >/dev/null
            sleep 0.1 & wait
            dd if=/dev/zero of=/tmp/z bs=4k count=16 2>/dev/null
            stat -c %s /tmp/z >/dev/null
            mount | grep -q proc
            env >/dev/null
            ln -s /tmp/z /tmp/l && readlink /tmp/l >/dev/null
            chroot / /bin/true
            echo busybox=ok
            """);
        spec.Linux!.Seccomp = System.Text.Json.JsonDocument.Parse(Probes.RuntimeDefault().ToJson()).RootElement.Clone();
        var seen = await scope.ProbeAsync(spec);
        Assert.Equal("ok", seen["busybox"]);
    }

    [Fact]
    public async Task Debian_python3_runs_its_usual_work_under_runtime_default()
    {
        Assert.True(ContainerTestScope.Available);
        Assert.True(File.Exists("/usr/bin/python3"), "Debian's python3 is installed (scripts/install-deps.sh)");
        await using var scope = new ContainerTestScope();
        // A Debian root made from the host's files: /usr bound read-only, lib and lib64 pointing into it (merged /usr).
        File.CreateSymbolicLink(Path.Combine(scope.Rootfs, "lib"), "usr/lib");
        File.CreateSymbolicLink(Path.Combine(scope.Rootfs, "lib64"), "usr/lib64");
        File.WriteAllText(Path.Combine(scope.Rootfs, "tmp/pyprobe.py"), Probes.PythonProbeSource);
        var spec = SpecDefaults.Container(scope.Rootfs, ["/usr/bin/python3", "/tmp/pyprobe.py"]);
        spec.Mounts.Add(new SpecMount { Destination = "/usr", Type = "bind", Source = "/usr", Options = ["rbind", "ro", "nosuid", "nodev"] });
        spec.Linux!.Namespaces.RemoveAll(ns => ns.Type == "network"); // TCP on the host's loopback
        spec.Linux.Seccomp = System.Text.Json.JsonDocument.Parse(Probes.RuntimeDefault().ToJson()).RootElement.Clone();
        var (state, stdout, stderr) = await scope.RunAsync(spec, timeout: TimeSpan.FromSeconds(120));
        Assert.True(state.ExitCode == 0, $"python3 exited {state.ExitCode}: {stdout}{stderr}");
        Assert.StartsWith("python=ok", stdout.Trim());
    }

    public static TheoryData<string> GoToolchains => [Probes.Go119, Probes.Go123];

    [Theory]
    [MemberData(nameof(GoToolchains))]
    public async Task A_static_go_program_runs_its_usual_work_under_runtime_default(string go)
    {
        Assert.True(ContainerTestScope.Available);
        Assert.SkipUnless(File.Exists(go), $"{go} is not installed (scripts/install-deps.sh --test installs golang-go and golang-1.23-go)");
        var binary = Probes.GoProbe(go);
        await using var scope = new ContainerTestScope();
        var probe = Probes.Install(scope, binary, "goprobe");
        var spec = SpecDefaults.Container(scope.Rootfs, [probe]);
        spec.Linux!.Namespaces.RemoveAll(ns => ns.Type == "network");
        spec.Linux.Seccomp = System.Text.Json.JsonDocument.Parse(Probes.RuntimeDefault().ToJson()).RootElement.Clone();
        var (state, stdout, stderr) = await scope.RunAsync(spec, timeout: TimeSpan.FromSeconds(120));
        Assert.True(state.ExitCode == 0, $"goprobe exited {state.ExitCode}: {stdout}{stderr}");
        Assert.StartsWith("go=ok", stdout.Trim());
    }

    /// <summary>Refused calls EPERM and ENOSYS ones ENOSYS on native and i386, x32 killed, and every other call
    /// answered exactly as without a filter.</summary>
    private static void AssertRuntimeDefault(
        Dictionary<(string Entry, string Probe), string> filtered, Dictionary<(string Entry, string Probe), string> unconfined)
    {
        Assert.Equal(unconfined.Keys.Order(), filtered.Keys.Order());
        foreach (var ((entry, probe), got) in filtered)
        {
            var without = unconfined[(entry, probe)];
            var expected = entry == "x32" ? "SIGSYS"
                : Refused.Contains(probe) ? "EPERM"
                : Enosys.Contains(probe) ? "ENOSYS"
                : without;
            Assert.True(expected == got, $"{entry} {probe}: expected {expected}, got {got} (without a filter: {without})");
        }
    }
}
