using System.Globalization;
using System.Text.Json;
using Nacelle.ContainerCore.Runtime;
using Nacelle.ContainerCore.Security;
using Nacelle.ContainerCore.Spawn;
using Nacelle.ContainerCore.Spec;

namespace Nacelle.Tests.Kernel.Containers;

/// <summary>
/// What a process in a container sees of itself, checked from inside with busybox (the "probe"): namespaces, PID 1,
/// hostname, mounts, masked and read-only paths, capabilities, seccomp, no_new_privs, ids and rlimits.
/// </summary>
public sealed class ContainerIsolationTests
{
    private static string Ns(string pid, string type) => new FileInfo($"/proc/{pid}/ns/{type}").LinkTarget!;

    [Fact]
    public async Task New_namespaces_pid_1_hostname_and_domainname()
    {
        Assert.True(ContainerTestScope.Available, "kernel tests run as root with /bin/busybox");
        await using var scope = new ContainerTestScope();
        var spec = scope.Spec("""
            for t in pid net ipc uts mnt; do echo "$t=$(readlink /proc/self/ns/$t)"; done
            echo "self=$$"
            echo "host=$(hostname)"
            echo "domain=$(cat /proc/sys/kernel/domainname)"
            """);
        spec.Domainname = "example.test";
        var seen = await scope.ProbeAsync(spec);
        foreach (var type in new[] { "pid", "net", "ipc", "uts", "mnt" })
        {
            Assert.NotEqual(Ns("self", type), seen[type]);
        }

        Assert.Equal("1", seen["self"]);
        Assert.Equal("nacelle", seen["host"]);
        Assert.Equal("example.test", seen["domain"]);
    }

    [Fact]
    public async Task Joins_namespaces_given_by_path_and_shares_them_with_their_owner()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var holder = ContainerTestScope.NewId();
        await scope.Runtime.CreateAsync(holder, scope.Spec("sleep 60"), scope.Root, SpawnStdio.Null);
        await scope.Runtime.StartAsync(holder);
        var holderPid = scope.Runtime.State(holder).Pid.ToString(CultureInfo.InvariantCulture);

        var spec = scope.Spec("for t in pid net ipc uts mnt; do echo \"$t=$(readlink /proc/self/ns/$t)\"; done");
        spec.Hostname = null;
        spec.Linux!.Namespaces =
        [
            new() { Type = "network", Path = $"/proc/{holderPid}/ns/net" },
            new() { Type = "ipc", Path = $"/proc/{holderPid}/ns/ipc" },
            new() { Type = "uts", Path = $"/proc/{holderPid}/ns/uts" },
            new() { Type = "pid" },
            new() { Type = "mount" },
        ];
        var seen = await scope.ProbeAsync(spec);
        Assert.Equal(Ns(holderPid, "net"), seen["net"]);
        Assert.Equal(Ns(holderPid, "ipc"), seen["ipc"]);
        Assert.Equal(Ns(holderPid, "uts"), seen["uts"]);
        Assert.NotEqual(Ns(holderPid, "pid"), seen["pid"]);
        Assert.NotEqual(Ns(holderPid, "mnt"), seen["mnt"]);
    }

    [Fact]
    public async Task Mounts_devices_and_links_are_as_specified()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var shared = Directory.CreateTempSubdirectory("nacelle-ct-src-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(shared, "hello.txt"), "from the host");
            var spec = scope.Spec("""
                cat /proc/mounts | while read src dst type opts rest; do echo "mount:$dst=$type,$opts"; done
                echo "null=$(stat -c '%F %t,%T %a' /dev/null)"
                echo "ptmx=$(readlink /dev/ptmx)"
                echo "fd=$(readlink /dev/fd)"
                echo "stdout=$(readlink /dev/stdout)"
                echo "shared=$(cat /data/shared/hello.txt)"
                touch /data/shared/x 2>/dev/null && echo "shared_write=yes" || echo "shared_write=no"
                touch /tmp/x && echo "rootfs_write=yes" || echo "rootfs_write=no"
                """);
            spec.Mounts.Add(new SpecMount { Destination = "/data/shared", Type = "bind", Source = shared, Options = ["rbind", "ro", "nosuid"] });
            var seen = await scope.ProbeAsync(spec);
            Assert.StartsWith("proc,", seen["mount:/proc"]);
            Assert.StartsWith("tmpfs,", seen["mount:/dev"]);
            Assert.StartsWith("devpts,", seen["mount:/dev/pts"]);
            Assert.StartsWith("tmpfs,", seen["mount:/dev/shm"]);
            Assert.StartsWith("mqueue,", seen["mount:/dev/mqueue"]);
            Assert.StartsWith("sysfs,ro", seen["mount:/sys"]);
            Assert.Contains("ro", seen["mount:/data/shared"].Split(','));
            Assert.Equal("character special file 1,3 666", seen["null"]);
            Assert.Equal("pts/ptmx", seen["ptmx"]);
            Assert.Equal("/proc/self/fd", seen["fd"]);
            Assert.Equal("/proc/self/fd/1", seen["stdout"]);
            Assert.Equal("from the host", seen["shared"]);
            Assert.Equal("no", seen["shared_write"]);
            Assert.Equal("yes", seen["rootfs_write"]);
            Assert.False(File.Exists(Path.Combine(shared, "x")));
        }
        finally
        {
            Directory.Delete(shared, recursive: true);
        }
    }

    [Fact]
    public async Task Masked_and_readonly_paths_and_a_readonly_root()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var spec = scope.Spec("""
            echo "timer_list=$(wc -c < /proc/timer_list)"
            echo "keys=$(wc -c < /proc/keys)"
            echo "firmware=$(ls /sys/firmware | wc -l)"
            echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo "procsys_write=yes" || echo "procsys_write=no"
            touch /newfile 2>/dev/null && echo "root_write=yes" || echo "root_write=no"
            touch /dev/shm/ok && echo "shm_write=yes" || echo "shm_write=no"
            """);
        spec.Root!.Readonly = true;
        var seen = await scope.ProbeAsync(spec);
        Assert.NotEmpty(File.ReadAllText("/proc/timer_list")); // the host sees it; the container sees an empty file
        Assert.Equal("0", seen["timer_list"]);
        Assert.Equal("0", seen["keys"]);
        Assert.Equal("0", seen["firmware"]);
        Assert.Equal("no", seen["procsys_write"]);
        Assert.Equal("no", seen["root_write"]);
        Assert.Equal("yes", seen["shm_write"]);
        Assert.False(File.Exists(Path.Combine(scope.Rootfs, "newfile")));
    }

    /// <summary>Found by the CRI fuzzer: a volume over /sys whose "firmware" was a symlink to a directory failed the
    /// container's setup with Internal (the link's own type sent a /dev/null bind onto the directory it names: ENOTDIR).
    /// The masked path is what it names, so its directory is hidden under an empty tmpfs.</summary>
    [Fact]
    public async Task A_masked_path_that_is_a_symlink_to_a_directory_is_masked_as_a_directory()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var volume = Directory.CreateTempSubdirectory("nacelle-ct-sys-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(volume, "fw"));
            File.WriteAllText(Path.Combine(volume, "fw", "secret"), "x");
            File.CreateSymbolicLink(Path.Combine(volume, "firmware"), "fw");
            var spec = scope.Spec("""echo "firmware=$(ls /sys/firmware/ | wc -l)"; echo "fw=$(ls /sys/fw | wc -l)" """);
            Assert.Contains("/sys/firmware", spec.Linux!.MaskedPaths);
            spec.Mounts.Add(new SpecMount { Destination = "/sys", Type = "bind", Source = volume, Options = ["rbind", "ro"] });
            var seen = await scope.ProbeAsync(spec);
            Assert.Equal("0", seen["firmware"]);
            Assert.Equal("0", seen["fw"]);
            Assert.True(File.Exists(Path.Combine(volume, "fw", "secret"))); // hidden from the container, untouched on the host
        }
        finally
        {
            Directory.Delete(volume, recursive: true);
        }
    }

    [Fact]
    public async Task Capabilities_user_groups_no_new_privs_and_rlimits()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var spec = scope.Spec("""
            grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|Uid|Gid|Groups|NoNewPrivs):' /proc/self/status | sed 's/:[[:space:]]*/=/'
            echo "nofile=$(ulimit -n)"
            echo "umask=$(umask)"
            """);
        var process = spec.Process!;
        process.User = new SpecUser { Uid = 1000, Gid = 1000, AdditionalGids = [2000, 3000], Umask = 23 }; // umask 0027
        process.Capabilities = new SpecCapabilities
        {
            Bounding = ["CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_CHOWN"],
            Permitted = ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
            Effective = ["CAP_NET_BIND_SERVICE"],
            Inheritable = ["CAP_NET_BIND_SERVICE"],
            Ambient = ["CAP_NET_BIND_SERVICE"],
        };
        process.Rlimits = [new SpecRlimit { Type = "RLIMIT_NOFILE", Soft = 321, Hard = 654 }];
        var seen = await scope.ProbeAsync(spec);
        string Hex(params string[] names) => Capabilities.ToMask(names).ToString("x16", CultureInfo.InvariantCulture);
        Assert.Equal(Hex("CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_CHOWN"), seen["CapBnd"]);
        // After execve a non-root process without file capabilities keeps only its ambient set (permitted and effective).
        Assert.Equal(Hex("CAP_NET_BIND_SERVICE"), seen["CapPrm"]);
        Assert.Equal(Hex("CAP_NET_BIND_SERVICE"), seen["CapEff"]);
        Assert.Equal(Hex("CAP_NET_BIND_SERVICE"), seen["CapInh"]);
        Assert.Equal(Hex("CAP_NET_BIND_SERVICE"), seen["CapAmb"]);
        Assert.Equal("1000\t1000\t1000\t1000", seen["Uid"]);
        Assert.Equal("1000\t1000\t1000\t1000", seen["Gid"]);
        Assert.Equal("2000 3000", seen["Groups"]);
        Assert.Equal("1", seen["NoNewPrivs"]);
        Assert.Equal("321", seen["nofile"]);
        Assert.Equal("0027", seen["umask"]);
    }

    [Fact]
    public async Task Without_no_new_privs_the_flag_is_clear_and_root_keeps_the_default_capabilities()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var spec = scope.Spec("grep -E '^(CapEff|NoNewPrivs):' /proc/self/status | sed 's/:[[:space:]]*/=/'");
        spec.Process!.NoNewPrivileges = false;
        var seen = await scope.ProbeAsync(spec);
        Assert.Equal("0", seen["NoNewPrivs"]);
        Assert.Equal(Capabilities.ToMask(Capabilities.DefaultNames).ToString("x16", CultureInfo.InvariantCulture), seen["CapEff"]);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Seccomp_filter_is_installed_and_a_blocked_syscall_fails_with_EPERM(bool noNewPrivileges)
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var spec = scope.Spec("""
            grep '^Seccomp:' /proc/self/status | sed 's/:[[:space:]]*/=/'
            mkdir /tmp/blocked 2>/tmp/err; echo "mkdir=$?"; echo "err=$(cat /tmp/err)"
            """);
        spec.Process!.NoNewPrivileges = noNewPrivileges;
        spec.Linux!.Seccomp = JsonDocument.Parse("""
            { "defaultAction": "SCMP_ACT_ALLOW",
              "syscalls": [ { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO" } ] }
            """).RootElement.Clone();
        var seen = await scope.ProbeAsync(spec);
        Assert.Equal("2", seen["Seccomp"]);
        Assert.Equal("1", seen["mkdir"]);
        Assert.Contains("Operation not permitted", seen["err"]);
    }

    [Fact]
    public async Task Sysctls_apply_inside_the_container_namespace_only()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var hostValue = File.ReadAllText("/proc/sys/net/ipv4/ip_unprivileged_port_start").Trim();
        var spec = scope.Spec("echo \"port=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)\"");
        // /proc/sys is among the read-only paths: the sysctls are written before it becomes read-only.
        Assert.Contains("/proc/sys", spec.Linux!.ReadonlyPaths);
        spec.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"] = "80";
        Assert.Equal("80", (await scope.ProbeAsync(spec))["port"]);
        Assert.Equal(hostValue, File.ReadAllText("/proc/sys/net/ipv4/ip_unprivileged_port_start").Trim());
    }
}

/// <summary>Without CAP_SYS_RESOURCE (this CI machine, hardened nodes) limits the node cannot grant are clamped, not fatal.</summary>
public sealed class ContainerClampTests
{
    [Fact]
    public async Task Oom_score_adj_and_hard_rlimits_are_clamped_to_what_this_process_may_grant()
    {
        Assert.True(ContainerTestScope.Available);
        var host = HostFacts.Detect();
        await using var scope = new ContainerTestScope();
        var spec = scope.Spec("echo \"oom=$(cat /proc/self/oom_score_adj)\"; echo \"nofile=$(ulimit -Hn)\"");
        spec.Process!.OomScoreAdj = -998;
        spec.Process.Rlimits = [new SpecRlimit { Type = "RLIMIT_NOFILE", Soft = 1024, Hard = 1UL << 40 }];
        var seen = await scope.ProbeAsync(spec);
        if (host.HasSysResource)
        {
            Assert.Equal("-998", seen["oom"]);
        }
        else
        {
            Assert.Equal($"{host.OwnOomScoreAdj}", seen["oom"]);
            Assert.Equal($"{host.HardLimit(7)}", seen["nofile"]);
        }
    }
}
