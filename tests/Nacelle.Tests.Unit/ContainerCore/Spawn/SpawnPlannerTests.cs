using System.Text.Json;
using Nacelle.Common;
using Nacelle.ContainerCore.Runtime;
using Nacelle.ContainerCore.Security.Seccomp;
using Nacelle.ContainerCore.Spawn;
using Nacelle.ContainerCore.Spec;
using Nacelle.Tests.Unit.ContainerCore.Security;

namespace Nacelle.Tests.Unit.ContainerCore.Spawn;

/// <summary>OCI spec -> spawn request: every decision the C helper later executes.</summary>
public sealed class SpawnPlannerTests : IDisposable
{
    private readonly string _bundle = Directory.CreateTempSubdirectory("nacelle-plan-").FullName;

    private static readonly HostFacts Privileged = new(true, 40, 0, _ => ulong.MaxValue);
    private static readonly HostFacts Hardened = new(false, 40, -500, r => r == 7 ? 4096UL : ulong.MaxValue);

    public SpawnPlannerTests() => Directory.CreateDirectory(Path.Combine(_bundle, "rootfs"));

    public void Dispose() => Directory.Delete(_bundle, recursive: true);

    private RuntimeSpec Spec() => SpecDefaults.Container("rootfs", ["/bin/true"]);

    private SpawnRequest Plan(RuntimeSpec spec, HostFacts? host = null, IReadOnlyDictionary<string, string>? v1 = null) =>
        SpawnPlanner.PlanContainer(spec, _bundle, host ?? Privileged, v1).Request;

    /// <summary>A spec's AppArmor profile, SELinux label or mount label is applied where the host enforces the module
    /// and refused where it does not (it used to be ignored: a container ran without a confinement it asked for).</summary>
    [Fact]
    public void Security_module_labels_are_refused_without_the_module_and_carried_to_the_helper_with_it()
    {
        var spec = Spec();
        spec.Process!.ApparmorProfile = "nacelle-default";
        var refused = Assert.Throws<NacelleException>(() => Plan(spec));
        Assert.Equal(ErrorKind.FailedPrecondition, refused.Kind);
        Assert.Contains("process.apparmorProfile", refused.Message, StringComparison.Ordinal);

        var withModules = Privileged with { Modules = new Nacelle.ContainerCore.Security.LinuxSecurityModules(AppArmor: true, SELinux: true) };
        spec.Process.SelinuxLabel = "system_u:system_r:container_t:s0:c1,c2";
        spec.Linux!.MountLabel = "system_u:object_r:container_file_t:s0:c1,c2";
        var request = Plan(spec, withModules);
        Assert.Equal("nacelle-default", request.AppArmorProfile);
        Assert.Equal("system_u:system_r:container_t:s0:c1,c2", request.SelinuxLabel);
        Assert.All(request.Mounts.Where(m => m.FsType is "tmpfs" or "devpts" or "mqueue"),
            m => Assert.Contains("context=\"system_u:object_r:container_file_t:s0:c1,c2\"", m.Data, StringComparison.Ordinal));
        Assert.DoesNotContain(request.Mounts.Where(m => m.FsType is "proc" or "sysfs"), m => m.Data.Contains("context=", StringComparison.Ordinal));

        var selinuxOnly = Spec();
        selinuxOnly.Linux!.MountLabel = "system_u:object_r:container_file_t:s0";
        Assert.Contains("linux.mountLabel", Assert.Throws<NacelleException>(() => Plan(selinuxOnly)).Message, StringComparison.Ordinal);
        selinuxOnly.Linux.MountLabel = null;
        selinuxOnly.Process!.ApparmorProfile = "bad\nchange_profile other";
        Assert.Equal(ErrorKind.InvalidArgument, Assert.Throws<NacelleException>(() => Plan(selinuxOnly, withModules)).Kind);
    }

    [Fact]
    public void New_namespaces_become_clone_flags_and_paths_become_joins()
    {
        var spec = Spec();
        var netns = Path.Combine(_bundle, "netns");
        File.WriteAllText(netns, string.Empty);
        spec.Linux!.Namespaces.RemoveAll(n => n.Type == "network");
        spec.Linux.Namespaces.Add(new SpecNamespace { Type = "network", Path = netns });
        var request = Plan(spec);
        Assert.Equal(MountFlags.CLONE_NEWPID | MountFlags.CLONE_NEWIPC | MountFlags.CLONE_NEWUTS | MountFlags.CLONE_NEWNS, request.CloneFlags);
        var join = Assert.Single(request.JoinNamespaces);
        Assert.Equal(MountFlags.CLONE_NEWNET, join.Type);
        Assert.Equal(netns, join.Path);
        Assert.True(request.Park);
        Assert.Equal(Path.Combine(_bundle, "rootfs"), request.Rootfs);
    }

    [Fact]
    public void Mount_options_become_flags_propagation_and_data()
    {
        var spec = Spec();
        var source = Path.Combine(_bundle, "data");
        Directory.CreateDirectory(source);
        var file = Path.Combine(_bundle, "hosts");
        File.WriteAllText(file, "x");
        spec.Mounts.Add(new SpecMount { Destination = "/data", Type = "bind", Source = source, Options = ["rbind", "ro", "nosuid", "rslave"] });
        spec.Mounts.Add(new SpecMount { Destination = "/etc//hosts/", Type = "bind", Source = file, Options = ["bind"] });
        spec.Mounts.Add(new SpecMount { Destination = "/ro-all", Type = "bind", Source = source, Options = ["rbind", "rro"] });
        var mounts = Plan(spec).Mounts;

        var proc = mounts.Single(m => m.Target == "/proc");
        Assert.Equal(SpawnProtocol.MountFs, proc.Kind);
        Assert.Equal(MountFlags.MS_NOSUID | MountFlags.MS_NOEXEC | MountFlags.MS_NODEV, proc.Flags);
        var dev = mounts.Single(m => m.Target == "/dev");
        Assert.Equal("mode=755,size=65536k", dev.Data);
        Assert.Equal(MountFlags.MS_NOSUID | MountFlags.MS_STRICTATIME, dev.Flags);

        var data = mounts.Single(m => m.Target == "/data");
        Assert.Equal(SpawnProtocol.MountBind, data.Kind);
        Assert.Equal(MountFlags.MS_BIND | MountFlags.MS_REC | MountFlags.MS_RDONLY | MountFlags.MS_NOSUID, data.Flags);
        Assert.Equal(MountFlags.MS_SLAVE | MountFlags.MS_REC, data.Propagation);
        Assert.False(data.TargetIsFile);

        var hosts = mounts.Single(m => m.Target == "/etc/hosts");
        Assert.True(hosts.TargetIsFile);
        Assert.Equal(MountFlags.MS_BIND, hosts.Flags);
        Assert.Equal(SpawnProtocol.MountBindRecursiveReadonly, mounts.Single(m => m.Target == "/ro-all").Kind);
    }

    [Fact]
    public void A_tmpfs_dev_gets_the_default_devices_and_links_and_spec_devices_win()
    {
        var spec = Spec();
        spec.Linux!.Devices.Add(new SpecDevice { Type = "c", Path = "/dev/null", Major = 1, Minor = 3, FileMode = 0b110_000_000 });
        spec.Linux.Devices.Add(new SpecDevice { Type = "b", Path = "/dev/sda", Major = 8, Minor = 0, Uid = 5, Gid = 6 });
        var request = Plan(spec);
        Assert.Equal(["/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/null", "/dev/sda"],
            request.Devices.Select(d => d.Path));
        Assert.Equal(0b110_000_000u, request.Devices.Single(d => d.Path == "/dev/null").Mode);
        var sda = request.Devices.Single(d => d.Path == "/dev/sda");
        Assert.Equal((0x6000u, 8u, 0u, 5u, 6u), (sda.Type, sda.Major, sda.Minor, sda.Uid, sda.Gid));
        Assert.Equal(0b110_110_110u, request.Devices.Single(d => d.Path == "/dev/zero").Mode);
        Assert.Contains(("pts/ptmx", "/dev/ptmx"), request.Symlinks);
        Assert.Contains(("/proc/self/fd", "/dev/fd"), request.Symlinks);

        spec.Mounts.RemoveAll(m => m.Destination.StartsWith("/dev", StringComparison.Ordinal));
        spec.Linux.Devices.Clear();
        Assert.Empty(Plan(spec).Devices);
    }

    /// <summary>Found by the CRI fuzzer: a mount at /dev/null (or at a requested device's path) made the helper's
    /// mknod fail with EEXIST after the mount, and CreateContainer answered Internal. The mount takes the node's place.</summary>
    [Fact]
    public void A_mount_at_a_device_path_takes_the_place_of_the_device()
    {
        var spec = Spec();
        var source = Path.Combine(_bundle, "volume");
        Directory.CreateDirectory(source);
        spec.Linux!.Devices.Add(new SpecDevice { Type = "b", Path = "/dev/sda", Major = 8, Minor = 0 });
        spec.Mounts.Add(new SpecMount { Destination = "/dev/null", Type = "bind", Source = source, Options = ["rbind"] });
        spec.Mounts.Add(new SpecMount { Destination = "/dev/sda", Type = "bind", Source = source, Options = ["rbind"] });
        var request = Plan(spec);

        Assert.DoesNotContain(request.Devices, d => d.Path is "/dev/null" or "/dev/sda");
        Assert.Contains(request.Devices, d => d.Path == "/dev/zero");
        Assert.Contains(request.Mounts, m => m.Target == "/dev/null");
    }

    [Fact]
    public void The_cgroup_mount_is_cgroup2_on_v2_and_bound_hierarchies_on_v1()
    {
        var v2 = Plan(Spec()).Mounts.Single(m => m.Target == "/sys/fs/cgroup");
        Assert.Equal("cgroup2", v2.FsType);
        Assert.NotEqual(0UL, v2.Flags & MountFlags.MS_RDONLY);

        var v1 = new Dictionary<string, string> { ["memory"] = "/sys/fs/cgroup/memory/nacelle/c1", ["cpu,cpuacct"] = "/sys/fs/cgroup/cpu,cpuacct/nacelle/c1" };
        var mounts = Plan(Spec(), v1: v1).Mounts.Where(m => m.Target.StartsWith("/sys/fs/cgroup", StringComparison.Ordinal)).ToList();
        Assert.Equal(["/sys/fs/cgroup", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/memory"], mounts.Select(m => m.Target));
        Assert.Equal("tmpfs", mounts[0].FsType);
        Assert.Equal("/sys/fs/cgroup/memory/nacelle/c1", mounts[2].Source);
        Assert.All(mounts.Skip(1), m => Assert.NotEqual(0UL, m.Flags & MountFlags.MS_RDONLY));
    }

    [Fact]
    public void Process_settings_capabilities_rlimits_and_sysctls()
    {
        var spec = Spec();
        spec.Process!.User = new SpecUser { Uid = 7, Gid = 8, AdditionalGids = [9], Umask = 18 };
        spec.Process.Cwd = "/work";
        spec.Process.OomScoreAdj = 300;
        spec.Linux!.Sysctl["net.ipv4.ip_forward"] = "1";
        spec.Linux.Sysctl["net/ipv4/conf/eth0.100/forwarding"] = "0";
        var request = Plan(spec);
        Assert.Equal(new SpawnUser(7, 8, [9]).Uid, request.User!.Uid);
        Assert.Equal([9u], request.User.AdditionalGids);
        Assert.Equal(18u, request.Umask);
        Assert.Equal("/work", request.Cwd);
        Assert.Equal(["/bin/true"], request.Args);
        Assert.True(request.NoNewPrivileges);
        Assert.Equal(300, request.OomScoreAdj);
        Assert.Equal(new SpawnRlimit(7, 1024, 1024), Assert.Single(request.Rlimits));
        Assert.Contains(("net/ipv4/ip_forward", "1"), request.Sysctls);
        Assert.Contains(("net/ipv4/conf/eth0.100/forwarding", "0"), request.Sysctls);
        var defaults = Nacelle.ContainerCore.Security.Capabilities.ToMask(Nacelle.ContainerCore.Security.Capabilities.DefaultNames);
        Assert.Equal(defaults, request.Capabilities!.Value.Bounding);
        Assert.Equal(0UL, request.Capabilities.Value.Ambient);
        Assert.Equal(Nacelle.ContainerCore.Security.Capabilities.DefaultNames.Count, System.Numerics.BitOperations.PopCount(defaults));
    }

    [Fact]
    public void Without_CAP_SYS_RESOURCE_oom_score_adj_and_hard_limits_are_clamped_and_reported()
    {
        var spec = Spec();
        spec.Process!.OomScoreAdj = -999;
        spec.Process.Rlimits = [new SpecRlimit { Type = "RLIMIT_NOFILE", Soft = 10000, Hard = 20000 }];
        var plan = SpawnPlanner.PlanContainer(spec, _bundle, Hardened, null);
        Assert.Equal(-500, plan.Request.OomScoreAdj);
        Assert.Equal(new SpawnRlimit(7, 4096, 4096), Assert.Single(plan.Request.Rlimits));
        Assert.Equal(2, plan.Adjustments.Count);
        Assert.Contains(plan.Adjustments, a => a.Contains("oomScoreAdj -999 clamped to -500", StringComparison.Ordinal));
        Assert.Contains(plan.Adjustments, a => a.Contains("RLIMIT_NOFILE", StringComparison.Ordinal));

        spec.Process.OomScoreAdj = 100; // raising is always allowed
        Assert.Equal(100, SpawnPlanner.PlanContainer(spec, _bundle, Hardened, null).Request.OomScoreAdj);
    }

    [Fact]
    public void Root_propagation_shared_is_applied_after_pivot_root()
    {
        var spec = Spec();
        spec.Linux!.RootfsPropagation = "rshared";
        var shared = Plan(spec);
        Assert.Equal(MountFlags.MS_SLAVE | MountFlags.MS_REC, shared.PropagationBeforePivot);
        Assert.Equal(MountFlags.MS_SHARED | MountFlags.MS_REC, shared.PropagationAfterPivot);
        spec.Linux.RootfsPropagation = "private";
        var priv = Plan(spec);
        Assert.Equal(MountFlags.MS_PRIVATE, priv.PropagationBeforePivot);
        Assert.Equal(0UL, priv.PropagationAfterPivot);
    }

    [Fact]
    public void Seccomp_is_compiled_and_id_maps_are_rendered()
    {
        var spec = Spec();
        spec.Linux!.Seccomp = JsonDocument.Parse("""{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}""").RootElement.Clone();
        spec.Linux.Namespaces.Add(new SpecNamespace { Type = "user" });
        spec.Linux.UidMappings = [new SpecIdMapping { ContainerId = 0, HostId = 1000, Size = 10 }, new SpecIdMapping { ContainerId = 10, HostId = 5000, Size = 1 }];
        spec.Linux.GidMappings = [new SpecIdMapping { ContainerId = 0, HostId = 1000, Size = 10 }];
        var request = Plan(spec);
        Assert.NotNull(request.Seccomp);
        Assert.Equal(0, request.Seccomp.Filter.Length % 8);
        Assert.Equal("0 1000 10\n10 5000 1\n", request.UidMap);
        Assert.Equal("0 1000 10\n", request.GidMap);
        Assert.NotEqual(0UL, request.CloneFlags & MountFlags.CLONE_NEWUSER);
    }

    public static TheoryData<string, Action<RuntimeSpec>> Refusals => new()
    {
        { "a new mount namespace is required", s => s.Linux!.Namespaces.RemoveAll(n => n.Type == "mount") },
        { "time namespace is not supported", s => s.Linux!.Namespaces.Add(new SpecNamespace { Type = "time" }) },
        { "linux.namespaces[5].path", s => s.Linux!.Namespaces.Add(new SpecNamespace { Type = "cgroup", Path = "/nonexistent/ns" }) },
        { "mounts[7].source: '/nonexistent/src' does not exist", s => s.Mounts.Add(new SpecMount { Destination = "/x", Type = "bind", Source = "/nonexistent/src" }) },
        { "mounts[7].source: 'relative' is not an absolute path", s => s.Mounts.Add(new SpecMount { Destination = "/x", Type = "bind", Source = "relative" }) },
        { "mounts[7].options: 'size=1' is not a bind mount option", s => s.Mounts.Add(new SpecMount { Destination = "/x", Type = "bind", Source = "/", Options = ["size=1"] }) },
        { "root.path", s => s.Root!.Path = "missing-rootfs" },
        { "linux.devices[0].type", s => s.Linux!.Devices.Add(new SpecDevice { Type = "x", Path = "/dev/x" }) },
        { "linux.sysctl.net..x", s => { s.Linux!.Sysctl["net..x"] = "1"; } },
        { "process.capabilities.effective", s => s.Process!.Capabilities!.Effective.Add("CAP_BOGUS") },
    };

    [Fact]
    public void Runtime_default_is_compiled_for_the_helper_and_a_seccomp_section_that_is_no_object_is_refused()
    {
        var spec = Spec();
        spec.Linux!.Seccomp = JsonDocument.Parse(DefaultSeccompProfile.Json).RootElement.Clone();
        var filter = Plan(spec).Seccomp!.Filter;
        const uint x86_64 = SeccompConstants.AuditArchX86_64, i386 = SeccompConstants.AuditArchI386;
        Assert.Equal(SeccompConstants.RetErrno | 1, BpfInterpreter.Run(filter, x86_64, 250));   // keyctl
        Assert.Equal(SeccompConstants.RetErrno | 1, BpfInterpreter.Run(filter, i386, 288));     // keyctl, i386
        Assert.Equal(SeccompConstants.RetAllow, BpfInterpreter.Run(filter, x86_64, 39));        // getpid
        Assert.Same(filter, Plan(spec).Seccomp!.Filter); // compiled once for the same profile

        spec.Linux.Seccomp = JsonDocument.Parse("[]").RootElement.Clone();
        var error = Assert.Throws<NacelleException>(() => Plan(spec));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains("linux.seccomp", error.Message, StringComparison.Ordinal);

        spec.Linux.Seccomp = JsonDocument.Parse("null").RootElement.Clone();
        Assert.Null(Plan(spec).Seccomp);
    }

    [Theory]
    [MemberData(nameof(Refusals))]
    public void Unsupported_or_inconsistent_specs_are_refused_naming_the_field(string expected, Action<RuntimeSpec> breakIt)
    {
        var spec = Spec();
        breakIt(spec);
        var error = Assert.Throws<NacelleException>(() => Plan(spec));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void Exec_joins_every_namespace_of_the_container_through_its_init()
    {
        var spec = Spec();
        var process = new SpecProcess { Args = ["ls"], Env = ["PATH=/bin"], Cwd = "/" };
        var plan = SpawnPlanner.PlanExec(SpawnPlanner.ExecTemplateFor(spec, compileSeccomp: true), process, 4242, new FakeCgroup(), Privileged);
        Assert.False(plan.Request.Park);
        Assert.Equal(0UL, plan.Request.CloneFlags);
        Assert.Null(plan.Request.Rootfs);
        Assert.Equal(["/proc/4242/ns/pid", "/proc/4242/ns/net", "/proc/4242/ns/ipc", "/proc/4242/ns/uts", "/proc/4242/ns/mnt"],
            plan.Request.JoinNamespaces.Select(j => j.Path));
        Assert.Equal(["/fake-v1/tasks"], plan.Request.CgroupThreadFiles);
        Assert.Equal("/fake", plan.Request.CgroupCloneInto);
    }

    [Fact]
    public void Exec_gets_the_filter_compiled_for_its_container_without_the_containers_spec()
    {
        var spec = Spec();
        spec.Linux!.Seccomp = JsonDocument.Parse(DefaultSeccompProfile.Json).RootElement.Clone();
        spec.Linux.Namespaces.Add(new SpecNamespace { Type = "user" });
        spec.Linux.UidMappings.Add(new SpecIdMapping { ContainerId = 0, HostId = 100000, Size = 65536 });
        spec.Linux.GidMappings.Add(new SpecIdMapping { ContainerId = 0, HostId = 100000, Size = 65536 });
        var init = Plan(spec);
        var template = SpawnPlanner.ExecTemplateFor(spec, compileSeccomp: true);
        Assert.False(template.SeccompPending);
        Assert.True(template.InUserNamespace);

        // What the exec needs was taken when the template was made: changing the spec afterwards changes nothing.
        spec.Linux.Seccomp = null;
        spec.Linux.Namespaces.Clear();
        var process = new SpecProcess { Args = ["ls"], Env = ["PATH=/bin"], Cwd = "/" };
        var exec = SpawnPlanner.PlanExec(template, process, 4242, new FakeCgroup(), Privileged).Request;
        Assert.Same(init.Seccomp!.Filter, exec.Seccomp!.Filter);
        Assert.Equal(init.Seccomp.Flags, exec.Seccomp.Flags);
        Assert.Equal(["/proc/4242/ns/pid", "/proc/4242/ns/net", "/proc/4242/ns/ipc", "/proc/4242/ns/uts", "/proc/4242/ns/mnt", "/proc/4242/ns/user"],
            exec.JoinNamespaces.Select(j => j.Path));
    }

    [Fact]
    public void A_lazy_template_compiles_its_profile_at_the_first_exec_and_refuses_a_bad_one_each_time()
    {
        var spec = Spec();
        spec.Linux!.Seccomp = JsonDocument.Parse("""{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}""").RootElement.Clone();
        var template = SpawnPlanner.ExecTemplateFor(spec, compileSeccomp: false);
        Assert.True(template.SeccompPending);
        var process = new SpecProcess { Args = ["ls"], Env = ["PATH=/bin"], Cwd = "/" };
        var first = SpawnPlanner.PlanExec(template, process, 4242, new FakeCgroup(), Privileged).Request.Seccomp;
        Assert.False(template.SeccompPending);
        Assert.Same(first, SpawnPlanner.PlanExec(template, process, 4242, new FakeCgroup(), Privileged).Request.Seccomp);
        Assert.Equal(SeccompConstants.RetErrno | 1, BpfInterpreter.Run(first!.Filter, SeccompConstants.AuditArchX86_64, 83)); // mkdir

        spec.Linux.Seccomp = JsonDocument.Parse("""{"defaultAction":"SCMP_ACT_NONSENSE"}""").RootElement.Clone();
        var bad = SpawnPlanner.ExecTemplateFor(spec, compileSeccomp: false);
        for (var i = 0; i < 2; i++)
        {
            var error = Assert.Throws<NacelleException>(() => SpawnPlanner.PlanExec(bad, process, 4242, new FakeCgroup(), Privileged));
            Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        }

        Assert.True(bad.SeccompPending);

        // Forgotten (as a monitor does when it settles), a profile is compiled again for the next container; the
        // templates made before keep their filters.
        spec.Linux.Seccomp = JsonDocument.Parse("""{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}""").RootElement.Clone();
        var cached = Plan(spec).Seccomp!.Filter;
        Assert.Same(cached, Plan(spec).Seccomp!.Filter);
        SpawnPlanner.ForgetCompiledProfiles();
        var again = Plan(spec).Seccomp!.Filter;
        Assert.NotSame(cached, again);
        Assert.Equal(cached, again);
        Assert.Same(first.Filter, SpawnPlanner.PlanExec(template, process, 4242, new FakeCgroup(), Privileged).Request.Seccomp!.Filter);

        spec.Linux.Seccomp = null;
        Assert.Null(SpawnPlanner.PlanExec(SpawnPlanner.ExecTemplateFor(spec, compileSeccomp: false), process, 4242, new FakeCgroup(), Privileged).Request.Seccomp);
    }

    [Theory]
    [InlineData("1234 (sleep) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 98765 1000 100", 98765UL)]
    [InlineData("1234 (a) b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 555 1000 100", 555UL)]
    [InlineData("garbage", null)]
    public void The_start_time_comes_from_field_22_even_with_odd_command_names(string stat, ulong? expected)
        => Assert.Equal(expected, ProcessIdentity.ParseStartTime(stat));

    private sealed class FakeCgroup : Nacelle.ContainerCore.Cgroups.ICgroup
    {
        public string Path => "/fake";
        public bool IsUnified => true;
        public IReadOnlyList<string> ProcsFiles => ["/fake-v1/cgroup.procs", "/fake/cgroup.procs"];
        public IReadOnlyList<string> ThreadFiles => ["/fake-v1/tasks"];
        public string? CloneIntoDirectory => "/fake";
        public void Apply(Nacelle.ContainerCore.Cgroups.CgroupResources resources) => throw new NotSupportedException();
        public void AddProcess(int pid) => throw new NotSupportedException();
        public IReadOnlyList<int> Processes() => [];
        public Task FreezeAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;
        public Task ThawAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;
        public Task KillAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;
        public Nacelle.ContainerCore.Cgroups.CgroupStats Stats() => throw new NotSupportedException();
        public Nacelle.ContainerCore.Cgroups.CgroupUsage Usage(bool withProcessCount) => throw new NotSupportedException();
        public Nacelle.ContainerCore.Cgroups.CgroupOomStatus OomKills() => throw new NotSupportedException();
        public Task RemoveAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;
        public IReadOnlyList<string> ChildPaths() => [];
        public Microsoft.Win32.SafeHandles.SafeFileHandle OpenDirectory() => throw new NotSupportedException();
    }
    private static List<SpecIdMapping> PodMapping() => [new SpecIdMapping { ContainerId = 0, HostId = 65536, Size = 65536 }];

    private RuntimeSpec UserNamespaced(string? joinPath, string source)
    {
        var spec = Spec();
        spec.Linux!.Namespaces.Add(new SpecNamespace { Type = "user", Path = joinPath });
        spec.Linux.UidMappings = PodMapping();
        spec.Linux.GidMappings = PodMapping();
        spec.Mounts.Add(new SpecMount { Destination = "/etc/hosts", Type = "bind", Source = source, Options = ["rbind", "rprivate", "ro"] });
        return spec;
    }

    [Fact]
    public void A_new_user_namespace_gets_its_maps_and_the_helper_copies_the_rootfs_and_every_bind()
    {
        var hosts = Path.Combine(_bundle, "hosts");
        File.WriteAllText(hosts, "x");
        var request = Plan(UserNamespaced(null, hosts), v1: new Dictionary<string, string> { ["memory"] = "/sys/fs/cgroup/memory/x" });
        Assert.Equal(MountFlags.CLONE_NEWUSER, request.CloneFlags & MountFlags.CLONE_NEWUSER);
        Assert.Equal("0 65536 65536\n", request.UidMap);
        Assert.Equal("0 65536 65536\n", request.GidMap);
        Assert.True(request.RootfsDetached);
        Assert.All(request.Mounts.Where(m => (m.Kind & SpawnProtocol.MountKindMask) != SpawnProtocol.MountFs),
            m => Assert.Equal(SpawnProtocol.MountDetached, m.Kind & SpawnProtocol.MountDetached));
        Assert.Contains(request.Mounts, m => m.Target == "/sys/fs/cgroup/memory" && (m.Kind & SpawnProtocol.MountDetached) != 0);
        Assert.Equal(0u, request.Mounts.Single(m => m.Target == "/etc/hosts").Kind & SpawnProtocol.MountIdmap);
        // sysfs may be refused in a user namespace: the helper then binds the host's, read-only.
        Assert.Equal(SpawnProtocol.MountFs | SpawnProtocol.MountHostFallback, request.Mounts.Single(m => m.Target == "/sys").Kind);
        Assert.Equal(SpawnProtocol.MountFs, request.Mounts.Single(m => m.Target == "/proc").Kind);
    }

    [Fact]
    public void A_joined_user_namespace_writes_no_maps_and_idmaps_mounts_with_its_own_mappings_only()
    {
        var userns = Path.Combine(_bundle, "userns");
        File.WriteAllText(userns, string.Empty);
        var volume = Path.Combine(_bundle, "volume");
        Directory.CreateDirectory(volume);
        var spec = UserNamespaced(userns, volume);
        spec.Mounts[^1].UidMappings = PodMapping();
        spec.Mounts[^1].GidMappings = PodMapping();
        var request = Plan(spec);
        Assert.Null(request.UidMap);
        Assert.Null(request.GidMap);
        Assert.Equal(0UL, request.CloneFlags & MountFlags.CLONE_NEWUSER);
        Assert.Contains(request.JoinNamespaces, j => j.Type == MountFlags.CLONE_NEWUSER && j.Path == userns);
        var mount = request.Mounts.Single(m => m.Target == "/etc/hosts");
        Assert.Equal(SpawnProtocol.MountBind | SpawnProtocol.MountDetached | SpawnProtocol.MountIdmap, mount.Kind);

        spec.Mounts[^1].Options.Add("ridmap");
        Assert.Equal(SpawnProtocol.MountIdmapRecursive, Plan(spec).Mounts.Single(m => m.Target == "/etc/hosts").Kind & SpawnProtocol.MountIdmapRecursive);

        spec.Mounts[^1].UidMappings = [new SpecIdMapping { ContainerId = 0, HostId = 131072, Size = 65536 }];
        var error = Assert.Throws<NacelleException>(() => Plan(spec));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.StartsWith($"mounts[{spec.Mounts.Count - 1}].uidMappings: differ from linux.uidMappings", error.Message, StringComparison.Ordinal);

        // A new user namespace cannot idmap: the namespace does not exist yet when the helper copies the source.
        var created = UserNamespaced(null, volume);
        created.Mounts[^1].UidMappings = PodMapping();
        created.Mounts[^1].GidMappings = PodMapping();
        Assert.Contains("joins none", Assert.Throws<NacelleException>(() => Plan(created)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_shared_bind_is_copied_before_the_container_cuts_its_tree_and_needs_a_shared_source()
    {
        var volume = Path.Combine(_bundle, "volume");
        Directory.CreateDirectory(volume);
        var spec = Spec();
        spec.Mounts.Add(new SpecMount { Destination = "/vol", Type = "bind", Source = volume, Options = ["rbind", "rshared"] });
        var shared = Privileged with { MountOf = _ => new Nacelle.ContainerCore.Mounts.MountEntry(7, "/mnt", Shared: true, Slave: false) };
        var mount = Plan(spec, shared).Mounts.Single(m => m.Target == "/vol");
        Assert.Equal(SpawnProtocol.MountBind | SpawnProtocol.MountDetached, mount.Kind);
        Assert.Equal(MountFlags.MS_SHARED | MountFlags.MS_REC, mount.Propagation);

        var notShared = Privileged with { MountOf = _ => new Nacelle.ContainerCore.Mounts.MountEntry(7, "/mnt", Shared: false, Slave: true) };
        var error = Assert.Throws<NacelleException>(() => Plan(spec, notShared));
        Assert.Equal(ErrorKind.FailedPrecondition, error.Kind);
        Assert.Contains($"'{volume}' is on the mount at '/mnt', which is not shared", error.Message, StringComparison.Ordinal);

        // Never from a user namespace: its mounts must not reach the host.
        var userns = Path.Combine(_bundle, "userns");
        File.WriteAllText(userns, string.Empty);
        spec.Linux!.Namespaces.Add(new SpecNamespace { Type = "user", Path = userns });
        Assert.Equal(ErrorKind.InvalidArgument, Assert.Throws<NacelleException>(() => Plan(spec, shared)).Kind);

        // Private and slave binds are made in the container as before.
        spec = Spec();
        spec.Mounts.Add(new SpecMount { Destination = "/vol", Type = "bind", Source = volume, Options = ["rbind", "rslave"] });
        Assert.Equal(SpawnProtocol.MountBind, Plan(spec, notShared).Mounts.Single(m => m.Target == "/vol").Kind);
    }

    [Fact]
    public void Hard_limits_are_not_raised_inside_a_user_namespace_even_with_cap_sys_resource()
    {
        var hosts = Path.Combine(_bundle, "hosts");
        File.WriteAllText(hosts, "x");
        var spec = UserNamespaced(null, hosts);
        spec.Process!.Rlimits = [new SpecRlimit { Type = "RLIMIT_NOFILE", Soft = 1 << 20, Hard = 1 << 20 }];
        var host = Privileged with { HardLimit = r => r == 7 ? 4096UL : ulong.MaxValue };
        var plan = SpawnPlanner.PlanContainer(spec, _bundle, host, null);
        Assert.Equal(4096UL, plan.Request.Rlimits.Single().Hard);
        Assert.Contains(plan.Adjustments, a => a.Contains("inside a user namespace", StringComparison.Ordinal));
    }
}
