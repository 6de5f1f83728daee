using System.Globalization;
using Nacelle.ContainerCore.Spawn;
using Nacelle.ContainerCore.Spec;
using Nacelle.Tests.Kernel.Containers;

namespace Nacelle.Tests.Kernel.Security;

/// <summary>
/// The spawn helper is non-dumpable until execve: while a container process is parked before its program (created,
/// not started), another process in the same pid namespace cannot open its /proc/PID/exe (the helper binary), fds,
/// environ or mem. After execve the program is dumpable again exactly when the kernel's own rules say so.
/// </summary>
public sealed class HelperInspectionTests
{
    [Fact]
    public async Task A_parked_container_process_cannot_be_opened_through_proc_from_its_pid_namespace()
    {
        Assert.True(ContainerTestScope.Available, "kernel tests run as root with /bin/busybox");
        await using var scope = new ContainerTestScope();
        var probe = Probes.Install(scope, Probes.SyscallProbePath, "syscall-probe");

        // The inspector: root with the default capabilities, waiting for a process named "nsp:wait-start".
        var inspector = ContainerTestScope.NewId();
        using var output = new CapturedOutput();
        await scope.Runtime.CreateAsync(inspector, SpecDefaults.Container(scope.Rootfs, [probe, "inspect", "nsp:wait-start"]), scope.Root, output.Stdio);
        output.CloseWriters();
        await scope.Runtime.StartAsync(inspector);
        var inspectorPid = scope.Runtime.State(inspector).Pid.ToString(CultureInfo.InvariantCulture);

        // The parked one: created in the inspector's pid namespace, never started.
        var parked = ContainerTestScope.NewId();
        var spec = SpecDefaults.Container(scope.Rootfs, ["/bin/true"]);
        spec.Process!.Env.Add("SECRET=from-the-spec");
        spec.Linux!.Namespaces.RemoveAll(ns => ns.Type == "pid");
        spec.Linux.Namespaces.Add(new SpecNamespace { Type = "pid", Path = $"/proc/{inspectorPid}/ns/pid" });
        await scope.Runtime.CreateAsync(parked, spec, scope.Root, SpawnStdio.Null);

        var state = await scope.Runtime.WaitAsync(inspector).WaitAsync(TimeSpan.FromSeconds(60));
        var (stdout, stderr) = await output.ReadAllAsync();
        Assert.True(state.ExitCode == 0, $"inspector exited {state.ExitCode}: {stdout}{stderr}");
        var seen = ContainerTestScope.ParseLines(stdout);
        Assert.NotEqual("none", seen["found"]);
        foreach (var what in new[] { "exe", "exe-link", "fd-3", "fd-3-link", "environ", "mem" })
        {
            Assert.True(seen[what] is "EACCES" or "EPERM", $"{what}: {seen[what]} ({stdout})");
        }

        await scope.Runtime.DeleteAsync(parked, force: true);
    }

    [Fact]
    public async Task After_execve_a_program_is_dumpable_again_as_the_kernel_decides()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var probe = Probes.Install(scope, Probes.SyscallProbePath, "syscall-probe");

        // A readable program run by its owner's peer: dumpable again (PR_GET_DUMPABLE 1).
        var plain = await scope.ProbeAsync(SpecDefaults.Container(scope.Rootfs, [probe, "dumpable"]));
        Assert.Equal("1", plain["dumpable"]);

        // A program the user may execute but not read stays non-dumpable (the kernel's rule, not the helper's); without
        // capabilities, so CAP_DAC_OVERRIDE does not make it readable.
        var hidden = Path.Combine(scope.Rootfs, "hidden-probe");
        File.Copy(Probes.SyscallProbePath, hidden);
        File.SetUnixFileMode(hidden, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        var spec = SpecDefaults.Container(scope.Rootfs, ["/hidden-probe", "dumpable"]);
        spec.Process!.User = new SpecUser { Uid = 1000, Gid = 1000 };
        spec.Process.Capabilities = new SpecCapabilities();
        var unreadable = await scope.ProbeAsync(spec);
        Assert.Equal("0", unreadable["dumpable"]);
    }
}
