using Nacelle.Common;
using Nacelle.ContainerCore.Runtime;
using Nacelle.ContainerCore.Spawn;
using Nacelle.ContainerCore.Spec;

namespace Nacelle.Tests.Kernel.Containers;

/// <summary>States, stage names, refusals and failures, and that kill + delete leave no process, cgroup or mount.</summary>
public sealed class ContainerCleanupTests
{
    private static bool ProcessExists(int pid) => Directory.Exists($"/proc/{pid}");

    private static IEnumerable<string> MountsUnder(string path) =>
        File.ReadLines("/proc/self/mountinfo").Where(line => line.Contains(path, StringComparison.Ordinal));

    [Fact]
    public async Task A_created_container_is_parked_and_ps_shows_the_stage()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var id = ContainerTestScope.NewId();
        var state = await scope.Runtime.CreateAsync(id, scope.Spec("exit 0"), scope.Root, SpawnStdio.Null);
        Assert.Equal(ContainerStatus.Created, state.Status);
        Assert.Equal("nsp:wait-start", File.ReadAllText($"/proc/{state.Pid}/comm").Trim());
        Assert.StartsWith("nacelle-spawn: wait-start", File.ReadAllText($"/proc/{state.Pid}/cmdline"));
        await scope.Runtime.StartAsync(id);
        var final = await scope.Runtime.WaitAsync(id).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, final.ExitCode);
        var again = await Assert.ThrowsAsync<NacelleException>(() => scope.Runtime.StartAsync(id));
        Assert.Equal(ErrorKind.FailedPrecondition, again.Kind);
    }

    [Fact]
    public async Task Kill_and_delete_leave_no_process_cgroup_mount_or_state()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var id = ContainerTestScope.NewId();
        var state = await scope.Runtime.CreateAsync(id, scope.Spec("sleep 100 & sleep 100"), scope.Root, SpawnStdio.Null);
        await scope.Runtime.StartAsync(id);
        var cgroup = scope.Cgroups.Open(state.CgroupPath);
        var procsFiles = cgroup.ProcsFiles;
        await Task.Delay(100);
        var pids = cgroup.Processes();
        Assert.True(pids.Count >= 2);

        var notStopped = await Assert.ThrowsAsync<NacelleException>(() => scope.Runtime.DeleteAsync(id));
        Assert.Equal(ErrorKind.FailedPrecondition, notStopped.Kind);

        scope.Runtime.Kill(id, 9);
        await scope.Runtime.WaitAsync(id).WaitAsync(TimeSpan.FromSeconds(10));
        await scope.Runtime.DeleteAsync(id);

        Assert.All(pids, pid => Assert.False(ProcessExists(pid), $"pid {pid} is still there"));
        Assert.All(procsFiles, file => Assert.False(Directory.Exists(Path.GetDirectoryName(file)), $"{file} is still there"));
        Assert.Empty(MountsUnder(scope.Rootfs));
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(scope.Root, "state")));
        Assert.Empty(scope.Runtime.List());
        var gone = Assert.Throws<NacelleException>(() => scope.Runtime.State(id));
        Assert.Equal(ErrorKind.NotFound, gone.Kind);
    }

    [Fact]
    public async Task Force_delete_of_a_running_container_kills_everything()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var id = ContainerTestScope.NewId();
        var state = await scope.Runtime.CreateAsync(id, scope.Spec("sleep 100"), scope.Root, SpawnStdio.Null);
        await scope.Runtime.StartAsync(id);
        await scope.Runtime.DeleteAsync(id, force: true);
        Assert.False(ProcessExists(state.Pid));
        Assert.Empty(scope.Runtime.List());
    }

    [Fact]
    public async Task A_missing_command_fails_at_create_naming_it_and_leaves_nothing()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var spec = SpecDefaults.Container(scope.Rootfs, ["no-such-command", "--flag"]);
        var error = await Assert.ThrowsAsync<SpawnException>(() => scope.Runtime.CreateAsync("missing", spec, scope.Root, SpawnStdio.Null));
        Assert.Equal(ErrorKind.FailedPrecondition, error.Kind);
        Assert.Equal("lookup", error.StageName);
        Assert.Equal(2, error.Errno);
        Assert.Contains("no-such-command", error.Message);
        Assert.Empty(scope.Runtime.List());
        Assert.False(Directory.Exists(Path.Combine(scope.Root, "state", "missing")));
        Assert.Empty(scope.Cgroups.Open(scope.CgroupParent).Processes());
    }

    [Fact]
    public async Task A_failing_stage_is_reported_with_its_name_and_errno()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var spec = scope.Spec("true");
        spec.Process!.Cwd = "/does/not/exist";
        var error = await Assert.ThrowsAsync<SpawnException>(() => scope.Runtime.CreateAsync("badcwd", spec, scope.Root, SpawnStdio.Null));
        Assert.Equal("cwd", error.StageName);
        Assert.Equal(2, error.Errno);
        Assert.Contains("/does/not/exist", error.Message);
        Assert.Empty(scope.Runtime.List());
    }

    public static TheoryData<string, Action<RuntimeSpec>> BadSpecs => new()
    {
        { "linux.namespaces[0].type", s => s.Linux!.Namespaces[0].Type = "bogus" },
        { "linux.namespaces", s => s.Linux!.Namespaces.RemoveAll(n => n.Type == "mount") },
        { "linux.namespaces[5].path", s => s.Linux!.Namespaces.Add(new SpecNamespace { Type = "cgroup", Path = "/no/such/ns" }) },
        { "root.path", s => s.Root!.Path = "/no/such/rootfs" },
        { "mounts[7].source", s => s.Mounts.Add(new SpecMount { Destination = "/x", Type = "bind", Source = "/no/such/source", Options = ["rbind"] }) },
        { "mounts[7].type", s => s.Mounts.Add(new SpecMount { Destination = "/x", Type = "nfs", Source = "server:/x" }) },
        { "process.capabilities.bounding", s => s.Process!.Capabilities!.Bounding.Add("CAP_NOT_A_THING") },
        { "process.rlimits[0].type", s => s.Process!.Rlimits[0].Type = "RLIMIT_BOGUS" },
        { "linux.sysctl.kernel.panic", s => s.Linux!.Sysctl["kernel.panic"] = "1" },
        { "linux.resources.memory.swap", s => s.Linux!.Resources = new SpecResources { Memory = new SpecMemory { Limit = 100 << 20, Swap = 1 << 20 } } },
        { "seccomp", s => s.Linux!.Seccomp = System.Text.Json.JsonDocument.Parse("""{"defaultAction":"SCMP_ACT_NOPE"}""").RootElement.Clone() },
    };

    [Theory]
    [MemberData(nameof(BadSpecs))]
    public async Task A_bad_spec_is_refused_naming_the_field_before_anything_is_created(string field, Action<RuntimeSpec> breakIt)
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var spec = scope.Spec("true");
        breakIt(spec);
        var error = await Assert.ThrowsAsync<NacelleException>(() => scope.Runtime.CreateAsync("bad", spec, scope.Root, SpawnStdio.Null));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains(field, error.Message);
        Assert.False(Directory.Exists(Path.Combine(scope.Root, "state", "bad")));
        Assert.Empty(scope.Runtime.List());
        Assert.DoesNotContain(scope.Cgroups.Layout.V1Controllers.Values, m => Directory.Exists(m + scope.CgroupParent + "/bad"));
    }

    [Fact]
    public async Task Duplicate_and_invalid_ids_are_refused()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        await scope.Runtime.CreateAsync("dup", scope.Spec("true"), scope.Root, SpawnStdio.Null);
        var dup = await Assert.ThrowsAsync<NacelleException>(() => scope.Runtime.CreateAsync("dup", scope.Spec("true"), scope.Root, SpawnStdio.Null));
        Assert.Equal(ErrorKind.AlreadyExists, dup.Kind);
        var bad = await Assert.ThrowsAsync<NacelleException>(() => scope.Runtime.CreateAsync("../evil", scope.Spec("true"), scope.Root, SpawnStdio.Null));
        Assert.Equal(ErrorKind.InvalidArgument, bad.Kind);
    }
}

/// <summary>A new runtime instance takes back what an earlier one left: running containers, never a reused pid.</summary>
public sealed class ContainerRecoveryTests
{
    [Fact]
    public async Task A_restarted_runtime_recovers_running_containers_and_can_stop_them()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var state = await scope.Runtime.CreateAsync("survivor", scope.Spec("sleep 100"), scope.Root, SpawnStdio.Null);
        await scope.Runtime.StartAsync("survivor");
        // The first instance goes away (as a restarted monitor's would); the container keeps running.
        await scope.Runtime.DisposeAsync();

        await using var second = new ContainerRuntime(new ContainerRuntimeOptions
        {
            StateDirectory = Path.Combine(scope.Root, "state"),
            Cgroups = scope.Cgroups,
        });
        var recovered = Assert.Single(second.Recover());
        Assert.Equal("survivor", recovered.Id);
        Assert.Equal(ContainerStatus.Running, recovered.Status);
        Assert.Equal(state.Pid, recovered.Pid);
        Assert.Contains("sleep", File.ReadAllText($"/proc/{state.Pid}/cmdline"));

        second.Kill("survivor", 9);
        var final = await second.WaitAsync("survivor").WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(ContainerStatus.Stopped, final.Status);
        await second.DeleteAsync("survivor");
        Assert.False(Directory.Exists(Path.Combine(scope.Root, "state", "survivor")));
    }

    [Fact]
    public async Task A_pid_now_used_by_another_process_is_not_mistaken_for_the_container()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        await scope.Runtime.CreateAsync("reused", scope.Spec("sleep 100"), scope.Root, SpawnStdio.Null);
        await scope.Runtime.StartAsync("reused");

        // Rewrite the saved state as if the container's pid had been reused by this test process.
        var statePath = Path.Combine(scope.Root, "state", "reused", "state.json");
        var text = File.ReadAllText(statePath);
        var pidLine = text.Split('\n').Single(l => l.Contains("\"Pid\":", StringComparison.Ordinal));
        File.WriteAllText(statePath, text.Replace(pidLine, $"  \"Pid\": {Environment.ProcessId},"));

        await using var second = new ContainerRuntime(new ContainerRuntimeOptions
        {
            StateDirectory = Path.Combine(scope.Root, "state"),
            Cgroups = scope.Cgroups,
        });
        var recovered = Assert.Single(second.Recover());
        Assert.Equal(ContainerStatus.Stopped, recovered.Status);
        var error = Assert.Throws<NacelleException>(() => second.Kill("reused", 15));
        Assert.Equal(ErrorKind.FailedPrecondition, error.Kind);
        Assert.True(Directory.Exists($"/proc/{Environment.ProcessId}"));
        await scope.Runtime.DeleteAsync("reused", force: true);
    }
}
