using System.Globalization;
using Nacelle.ContainerCore.Spawn;
using Nacelle.ContainerCore.Spec;

namespace Nacelle.Tests.Kernel.Containers;

/// <summary>
/// User namespaces at the core's level (OCI specs, no daemon): a container that creates one with the given maps, a
/// container that joins it and sees its volume through an idmapped mount, sysfs as the kernel allows it, and the
/// rootfs reached through the helper's copy even when its host directories are closed to the mapped ids.
/// </summary>
public sealed class UserNamespaceTests
{
    private const uint HostBase = 100000;
    private const uint Size = 65536;

    private static List<SpecIdMapping> Mapping() => [new() { ContainerId = 0, HostId = HostBase, Size = Size }];

    private static string Ns(string pid, string type) => new FileInfo($"/proc/{pid}/ns/{type}").LinkTarget!;

    /// <summary>A spec in a new user namespace (with its own network, ipc, uts, pid and mount namespaces).</summary>
    private static RuntimeSpec NewUserNamespace(ContainerTestScope scope, string script)
    {
        var spec = scope.Spec(script);
        spec.Linux!.Namespaces.Add(new SpecNamespace { Type = "user" });
        spec.Linux.UidMappings = Mapping();
        spec.Linux.GidMappings = Mapping();
        return spec;
    }

    private static string Field(string statusText, string name) =>
        statusText.Split('\n').First(l => l.StartsWith(name + ":", StringComparison.Ordinal))[(name.Length + 1)..].Trim();

    [Fact]
    public async Task A_new_user_namespace_has_exactly_the_maps_and_root_inside_is_the_mapped_uid_outside()
    {
        Assert.True(ContainerTestScope.Available, "kernel tests run as root with /bin/busybox");
        await using var scope = new ContainerTestScope();
        // The scope's root is a 0700 temp directory of the host's root: the container's root (host uid 100000) could
        // not walk to its rootfs; the helper's copy of it is what gets attached.
        var spec = NewUserNamespace(scope, """
            echo "uid_map=$(cat /proc/self/uid_map | tr -s ' ' | sed 's/^ //')"
            echo "gid_map=$(cat /proc/self/gid_map | tr -s ' ' | sed 's/^ //')"
            echo "uid=$(id -u)"
            echo "caps=$(grep CapEff /proc/self/status | cut -f2)"
            echo "sysfs=$(awk '$5 == "/sys" { i = 7; while ($i != "-") i++; print $3, $6, $(i + 1) }' /proc/self/mountinfo)"
            """);
        var id = ContainerTestScope.NewId();
        using var output = new CapturedOutput();
        var created = await scope.Runtime.CreateAsync(id, spec, scope.Root, output.Stdio);
        output.CloseWriters();
        var pid = created.Pid.ToString(CultureInfo.InvariantCulture);

        // Seen from the host while it waits to be started: its own user namespace, the maps as given, and its uid the
        // mapped one.
        Assert.NotEqual(Ns("self", "user"), Ns(pid, "user"));
        Assert.Equal($"0 {HostBase} {Size}", MapText($"/proc/{pid}/uid_map"));
        Assert.Equal($"0 {HostBase} {Size}", MapText($"/proc/{pid}/gid_map"));
        var status = File.ReadAllText($"/proc/{pid}/status");
        Assert.Equal($"{HostBase}", Field(status, "Uid").Split('\t')[0]);
        Assert.Equal($"{HostBase}", Field(status, "Gid").Split('\t')[0]);

        await scope.Runtime.StartAsync(id);
        var state = await scope.Runtime.WaitAsync(id).WaitAsync(TimeSpan.FromSeconds(30));
        var (stdout, stderr) = await output.ReadAllAsync();
        Assert.True(state.ExitCode == 0, stderr);
        var seen = ContainerTestScope.ParseLines(stdout);
        Assert.Equal($"0 {HostBase} {Size}", seen["uid_map"]);
        Assert.Equal($"0 {HostBase} {Size}", seen["gid_map"]);
        Assert.Equal("0", seen["uid"]);
        // The default capabilities, held in the user namespace only (namespaced).
        Assert.Equal($"{Capabilities(spec):x16}", seen["caps"]);
        // Its network namespace belongs to its user namespace: a sysfs of its own (not the host's superblock), read-only.
        var sysfs = seen["sysfs"].Split(' ');
        Assert.Equal("sysfs", sysfs[2]);
        Assert.StartsWith("ro,", sysfs[1], StringComparison.Ordinal);
        Assert.NotEqual(HostSysfsDevice(), sysfs[0]);
    }

    private static string MapText(string path) =>
        string.Join(' ', File.ReadAllText(path).Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries));

    private static string HostSysfsDevice() =>
        File.ReadLines("/proc/self/mountinfo").Select(l => l.Split(' ')).First(f => f[4] == "/sys")[2];

    private static ulong Capabilities(RuntimeSpec spec) =>
        Nacelle.ContainerCore.Security.Capabilities.ToMask(spec.Process!.Capabilities!.Effective, 63, "effective");

    [Fact]
    public async Task Sysfs_falls_back_to_the_hosts_read_only_when_the_network_namespace_is_not_the_user_namespaces()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var spec = NewUserNamespace(scope, """
            echo "sysfs=$(awk '$5 == "/sys" { i = 7; while ($i != "-") i++; print $3, $6, $(i + 1) }' /proc/self/mountinfo)"
            if touch /sys/kernel/nacelle-probe 2>/dev/null; then echo writable=yes; else echo writable=no; fi
            """);
        // The node's network namespace: the kernel refuses a sysfs to a user namespace that does not own it.
        spec.Linux!.Namespaces.RemoveAll(n => n.Type == "network");
        var seen = await scope.ProbeAsync(spec);
        // The host's own sysfs (same superblock), bound read-only.
        var fields = seen["sysfs"].Split(' ');
        Assert.Equal(HostSysfsDevice(), fields[0]);
        Assert.StartsWith("ro,", fields[1], StringComparison.Ordinal);
        Assert.Equal("sysfs", fields[2]);
        Assert.Equal("no", seen["writable"]);
    }

    [Fact]
    public async Task A_container_joining_the_user_namespace_sees_its_volume_through_an_idmapped_mount()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var holder = ContainerTestScope.NewId();
        await scope.Runtime.CreateAsync(holder, NewUserNamespace(scope, "sleep 60"), scope.Root, SpawnStdio.Null);
        await scope.Runtime.StartAsync(holder);
        var holderPid = scope.Runtime.State(holder).Pid.ToString(CultureInfo.InvariantCulture);

        // A volume owned by the host's root, with a directory owned by uid 1000; nothing in it is chowned.
        var volume = Directory.CreateDirectory(Path.Combine(scope.Root, "volume")).FullName;
        Directory.CreateDirectory(Path.Combine(volume, "user"));
        Nacelle.ContainerCore.Interop.FileSystemCalls.ChangeOwner(Path.Combine(volume, "user"), 1000, 1000);

        RuntimeSpec Joining(string script, uint uid)
        {
            var spec = scope.Spec(script);
            spec.Hostname = null;
            spec.Process!.User = new SpecUser { Uid = uid, Gid = uid };
            spec.Linux!.Namespaces =
            [
                new() { Type = "user", Path = $"/proc/{holderPid}/ns/user" },
                new() { Type = "network", Path = $"/proc/{holderPid}/ns/net" },
                new() { Type = "ipc", Path = $"/proc/{holderPid}/ns/ipc" },
                new() { Type = "uts", Path = $"/proc/{holderPid}/ns/uts" },
                new() { Type = "pid" },
                new() { Type = "mount" },
            ];
            spec.Linux.UidMappings = Mapping();
            spec.Linux.GidMappings = Mapping();
            spec.Mounts.Add(new SpecMount
            {
                Destination = "/data", Type = "bind", Source = volume, Options = ["rbind", "rprivate", "rw"],
                UidMappings = Mapping(), GidMappings = Mapping(),
            });
            return spec;
        }

        var asRoot = await scope.ProbeAsync(Joining("""
            echo "userns=$(readlink /proc/self/ns/user)"
            echo "uid_map=$(cat /proc/self/uid_map | tr -s ' ' | sed 's/^ //')"
            echo "owner=$(stat -c %u:%g /data)"
            echo "user_owner=$(stat -c %u:%g /data/user)"
            echo written > /data/by-root && echo wrote=yes
            """, 0));
        Assert.Equal(Ns(holderPid, "user"), asRoot["userns"]);
        Assert.Equal($"0 {HostBase} {Size}", asRoot["uid_map"]);
        // Through the idmapped mount the host's root is the container's root, uid 1000 is 1000.
        Assert.Equal("0:0", asRoot["owner"]);
        Assert.Equal("1000:1000", asRoot["user_owner"]);
        Assert.Equal("yes", asRoot["wrote"]);

        var asUser = await scope.ProbeAsync(Joining("echo hi > /data/user/by-user && echo wrote=yes", 1000));
        Assert.Equal("yes", asUser["wrote"]);

        // On the host the files have the container's ids (as kubelet expects of an idmapped volume), not the mapped ones.
        var byRoot = Nacelle.ContainerCore.Interop.FileSystemCalls.Status(Path.Combine(volume, "by-root"))!.Value;
        Assert.Equal((0u, 0u), (byRoot.Uid, byRoot.Gid));
        var byUser = Nacelle.ContainerCore.Interop.FileSystemCalls.Status(Path.Combine(volume, "user", "by-user"))!.Value;
        Assert.Equal((1000u, 1000u), (byUser.Uid, byUser.Gid));
    }

    [Fact]
    public async Task An_idmapped_mount_is_refused_unless_it_carries_the_joined_namespaces_mappings()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var spec = NewUserNamespace(scope, "true");
        spec.Mounts.Add(new SpecMount
        {
            Destination = "/data", Type = "bind", Source = scope.Root, Options = ["rbind"],
            UidMappings = Mapping(), GidMappings = Mapping(),
        });
        var error = await Assert.ThrowsAsync<Nacelle.Common.NacelleException>(
            () => scope.Runtime.CreateAsync(ContainerTestScope.NewId(), spec, scope.Root, SpawnStdio.Null));
        Assert.Equal(Nacelle.Common.ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains("uidMappings", error.Message, StringComparison.Ordinal);
        Assert.Empty(scope.Runtime.List());
    }
}
