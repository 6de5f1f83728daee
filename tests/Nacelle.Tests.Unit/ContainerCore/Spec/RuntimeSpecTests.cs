using Nacelle.Common;
using Nacelle.ContainerCore.Spec;

namespace Nacelle.Tests.Unit.ContainerCore.Spec;

public sealed class RuntimeSpecTests
{
    // A complete spec of the kind CreateContainer will produce: every section the model covers.
    private const string Complete = """
        {
          "ociVersion": "1.2.0",
          "process": {
            "terminal": false,
            "user": { "uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [10, 20] },
            "args": ["/bin/sh", "-c", "echo hi"],
            "env": ["PATH=/usr/bin:/bin", "EMPTY="],
            "cwd": "/work",
            "capabilities": { "bounding": ["CAP_CHOWN", "CAP_KILL"], "effective": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN"] },
            "rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 4096, "soft": 1024 } ],
            "noNewPrivileges": true,
            "oomScoreAdj": 500
          },
          "root": { "path": "/var/lib/nacelle/containers/c1/rootfs", "readonly": true },
          "hostname": "pod-a",
          "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro", "rslave"] }
          ],
          "linux": {
            "namespaces": [ { "type": "pid" }, { "type": "mount" }, { "type": "ipc" }, { "type": "uts" },
                            { "type": "network", "path": "/run/nacelle/ns/pod-a/net" } ],
            "cgroupsPath": "/kubepods/besteffort/pod123/c1",
            "resources": {
              "devices": [ { "allow": false, "access": "rwm" }, { "allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm" } ],
              "memory": { "limit": 67108864, "swap": 134217728, "reservation": 33554432 },
              "cpu": { "shares": 512, "quota": 50000, "period": 100000, "cpus": "0-1" },
              "pids": { "limit": 100 },
              "hugepageLimits": [ { "pageSize": "2MB", "limit": 0 } ],
              "unified": { "memory.high": "60000000" }
            },
            "sysctl": { "kernel.shm_rmid_forced": "1" },
            "rootfsPropagation": "rprivate",
            "maskedPaths": ["/proc/kcore"],
            "readonlyPaths": ["/proc/sys"],
            "seccomp": { "defaultAction": "SCMP_ACT_ERRNO", "syscalls": [ { "names": ["read"], "action": "SCMP_ACT_ALLOW" } ] }
          },
          "annotations": { "io.kubernetes.cri.container-type": "container" },
          "somethingNacelleDoesNotKnow": { "ignored": true }
        }
        """;

    [Fact]
    public void ACompleteSpecParsesValidatesAndRoundTrips()
    {
        var spec = RuntimeSpecFile.Parse(Complete);
        SpecValidator.Validate(spec);

        Assert.Equal(["/bin/sh", "-c", "echo hi"], spec.Process!.Args);
        Assert.Equal(1000u, spec.Process.User.Uid);
        Assert.Equal([10u, 20u], spec.Process.User.AdditionalGids);
        Assert.Equal("RLIMIT_NOFILE", Assert.Single(spec.Process.Rlimits).Type);
        Assert.True(spec.Root!.Readonly);
        Assert.Equal(["rbind", "ro", "rslave"], spec.Mounts[2].Options);
        Assert.Equal("/run/nacelle/ns/pod-a/net", spec.Linux!.Namespaces[4].Path);
        Assert.Equal(67108864, spec.Linux.Resources!.Memory!.Limit);
        Assert.Equal(50000, spec.Linux.Resources.Cpu!.Quota);
        Assert.Equal("SCMP_ACT_ERRNO", spec.Linux.Seccomp!.Value.GetProperty("defaultAction").GetString());

        var again = RuntimeSpecFile.Parse(RuntimeSpecFile.Serialize(spec));
        Assert.Equal(RuntimeSpecFile.Serialize(spec), RuntimeSpecFile.Serialize(again));
    }

    [Fact]
    public void MalformedJsonIsInvalidArgumentWithThePath()
    {
        var e = Assert.Throws<NacelleException>(() => RuntimeSpecFile.Parse("""{ "process": { "args": 5 } }"""));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("$.process.args", e.Message);
    }

    public static TheoryData<string, string> Refusals => new()
    {
        // A JSON edit applied to the complete spec, and the start of the message it must produce.
        { "\"ociVersion\": \"1.2.0\"|\"ociVersion\": \"0.9\"", "ociVersion: '0.9' is not a 1.x" },
        { "\"args\": [\"/bin/sh\", \"-c\", \"echo hi\"]|\"args\": []", "process.args: must name the program" },
        { "\"cwd\": \"/work\"|\"cwd\": \"work\"", "process.cwd: 'work' is not an absolute path" },
        { "\"EMPTY=\"|\"NOEQUALS\"", "process.env[1]: 'NOEQUALS' is not NAME=value" },
        { "\"RLIMIT_NOFILE\"|\"RLIMIT_FILES\"", "process.rlimits[0].type: 'RLIMIT_FILES' is not a resource limit" },
        { "\"hard\": 4096, \"soft\": 1024|\"hard\": 10, \"soft\": 1024", "process.rlimits[0]: soft limit 1024 exceeds hard limit 10" },
        { "\"oomScoreAdj\": 500|\"oomScoreAdj\": 5000", "process.oomScoreAdj: 5000 is outside" },
        { "\"path\": \"/var/lib/nacelle/containers/c1/rootfs\"|\"path\": \"\"", "root.path: is required" },
        { "{ \"type\": \"uts\" },|", "hostname: needs a uts namespace" },
        { "{ \"type\": \"ipc\" }|{ \"type\": \"ipc\" }, { \"type\": \"ipc\" }", "linux.namespaces[3].type: the ipc namespace is listed twice" },
        { "{ \"type\": \"pid\" }|{ \"type\": \"pidd\" }", "linux.namespaces[0].type: 'pidd' is not a namespace type" },
        { "\"path\": \"/run/nacelle/ns/pod-a/net\"|\"path\": \"run/net\"", "linux.namespaces[4].path: 'run/net' is not an absolute path" },
        { "\"destination\": \"/data\"|\"destination\": \"/data/../../etc\"", "mounts[2].destination: '/data/../../etc' climbs" },
        { "\"destination\": \"/proc\"|\"destination\": \"proc\"", "mounts[0].destination: 'proc' is not an absolute path" },
        { "\"type\": \"proc\", \"source\": \"proc\"|\"type\": \"nfs\", \"source\": \"server:/x\"", "mounts[0].type: 'nfs' is not a supported mount type" },
        { "\"type\": \"bind\", \"source\": \"/srv/data\"|\"type\": \"bind\"", "mounts[2].source: a bind mount needs a source" },
        { "\"kernel.shm_rmid_forced\": \"1\"|\"vm.swappiness\": \"1\"", "linux.sysctl.vm.swappiness: is not namespaced" },
        { "{ \"type\": \"ipc\" },|", "linux.sysctl.kernel.shm_rmid_forced: needs a new ipc namespace" },
        { "\"path\": \"/run/nacelle/ns/pod-a/net\"|\"path\": \"/run/x\"", "" }, // joined netns: fine on its own ...
        { "\"rprivate\"|\"rsideways\"", "linux.rootfsPropagation: 'rsideways' is not a propagation mode" },
        { "\"/proc/kcore\"|\"proc/kcore\"", "linux.maskedPaths[0]: 'proc/kcore' is not an absolute path" },
        { "\"swap\": 134217728|\"swap\": 1000", "linux.resources.memory.swap: 1000 is less than the memory limit" },
        { "\"shares\": 512|\"shares\": 1", "linux.resources.cpu.shares: 1 is below the minimum of 2" },
        { "\"period\": 100000|\"period\": 10", "linux.resources.cpu.period: 10 µs is outside" },
        { "\"pids\": { \"limit\": 100 }|\"pids\": { \"limit\": 0 }", "linux.resources.pids.limit: 0 is neither" },
        { "\"access\": \"rwm\" }, { \"allow\": true|\"access\": \"rwx\" }, { \"allow\": true", "linux.resources.devices[0].access: 'rwx'" },
        { "\"memory.high\"|\"../memory.high\"", "linux.resources.unified.../memory.high: is not a cgroup v2 interface file" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void InconsistentOrUnsupportedSpecsAreRefusedNamingTheField(string edit, string message)
    {
        var parts = edit.Split('|');
        Assert.Contains(parts[0], Complete);
        var spec = RuntimeSpecFile.Parse(Complete.Replace(parts[0], parts[1], StringComparison.Ordinal));

        if (message.Length == 0)
        {
            SpecValidator.Validate(spec);
            return;
        }

        var e = Assert.Throws<NacelleException>(() => SpecValidator.Validate(spec));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.StartsWith(message, e.Message);
    }

    [Fact]
    public void NetworkSysctlsNeedANewNetworkNamespaceNotAJoinedOneOnly()
    {
        // A pod's containers join the pod's netns; the sysctl belongs to the sandbox, not to them.
        var spec = RuntimeSpecFile.Parse(Complete);
        var e = Assert.Throws<NacelleException>(() =>
        {
            spec.Linux!.Sysctl = new() { ["net.core.somaxconn"] = "1024" };
            SpecValidator.Validate(spec);
        });
        Assert.StartsWith("linux.sysctl.net.core.somaxconn: needs a new network namespace", e.Message);
    }

    [Fact]
    public void UserNamespacesAndMappingsGoTogether()
    {
        var spec = RuntimeSpecFile.Parse(Complete);
        spec.Linux!.UidMappings = [new SpecIdMapping { ContainerId = 0, HostId = 100000, Size = 65536 }];
        Assert.StartsWith("linux.uidMappings: id mappings need a user namespace",
            Assert.Throws<NacelleException>(() => SpecValidator.Validate(spec)).Message);

        spec.Linux.Namespaces.Add(new SpecNamespace { Type = "user" });
        Assert.StartsWith("linux.uidMappings: a new user namespace needs uid and gid mappings",
            Assert.Throws<NacelleException>(() => SpecValidator.Validate(spec)).Message);

        spec.Linux.GidMappings = [new SpecIdMapping { ContainerId = 0, HostId = 100000, Size = 65536 }];
        SpecValidator.Validate(spec);

        // A joined namespace may carry its mappings (containerd sends them, runc checks them).
        spec.Linux.Namespaces[^1].Path = "/proc/1/ns/user";
        SpecValidator.Validate(spec);
    }

    [Theory]
    [InlineData(0u, 100000u, 0u, "linux.uidMappings[1].size: must be at least 1")]
    [InlineData(65536u, 100000u, 10u, "linux.uidMappings[1]: host ids 100000..100009 overlap linux.uidMappings[0]")]
    [InlineData(100u, 300000u, 10u, "linux.uidMappings[1]: container ids 100..109 overlap linux.uidMappings[0]")]
    [InlineData(70000u, 4294967290u, 10u, "linux.uidMappings[1]: 70000+10 (container) or 4294967290+10 (host) ends past the id space (2^32)")]
    public void Mappings_the_kernel_would_refuse_are_refused_naming_the_line(uint containerId, uint hostId, uint size, string message)
    {
        var spec = RuntimeSpecFile.Parse(Complete);
        spec.Linux!.Namespaces.Add(new SpecNamespace { Type = "user" });
        spec.Linux.UidMappings =
        [
            new SpecIdMapping { ContainerId = 0, HostId = 100000, Size = 65536 },
            new SpecIdMapping { ContainerId = containerId, HostId = hostId, Size = size },
        ];
        spec.Linux.GidMappings = [new SpecIdMapping { ContainerId = 0, HostId = 100000, Size = 65536 }];
        Assert.Equal(message, Assert.Throws<NacelleException>(() => SpecValidator.Validate(spec)).Message);
    }

    [Fact]
    public void An_idmapped_mount_is_a_bind_with_both_mappings()
    {
        var spec = RuntimeSpecFile.Parse(Complete);
        spec.Mounts.Add(new SpecMount { Destination = "/t", Type = "tmpfs", Source = "tmpfs", UidMappings = [new SpecIdMapping { Size = 1 }] });
        Assert.StartsWith($"mounts[{spec.Mounts.Count - 1}].uidMappings: only a bind mount can be idmapped",
            Assert.Throws<NacelleException>(() => SpecValidator.Validate(spec)).Message);

        spec.Mounts[^1] = new SpecMount { Destination = "/t", Type = "bind", Source = "/srv", UidMappings = [new SpecIdMapping { Size = 1 }] };
        Assert.StartsWith($"mounts[{spec.Mounts.Count - 1}].uidMappings: an idmapped mount needs both",
            Assert.Throws<NacelleException>(() => SpecValidator.Validate(spec)).Message);
    }
}
