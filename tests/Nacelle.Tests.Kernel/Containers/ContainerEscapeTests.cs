using System.IO.Pipes;
using System.Security.Cryptography;
using Nacelle.Common;
using Nacelle.ContainerCore.Cgroups;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Runtime;
using Nacelle.ContainerCore.Spawn;
using Nacelle.ContainerCore.Spec;

namespace Nacelle.Tests.Kernel.Containers;

/// <summary>The known runtime escapes, each tried against the spawn path.</summary>
public sealed class ContainerEscapeTests
{
    /// <summary>CVE-2019-5736 class: the helper a container can reach during setup (/proc/PID/exe) cannot be rewritten.</summary>
    [Fact]
    public async Task The_helper_reachable_from_the_container_is_a_sealed_memfd_that_cannot_be_overwritten()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var onDisk = SpawnHelperBinary.DefaultPath;
        var before = SHA256.HashData(File.ReadAllBytes(onDisk));
        var state = await scope.Runtime.CreateAsync("parked", scope.Spec("true"), scope.Root, SpawnStdio.Null);

        // While parked, the container process is still the helper: its exe is the memfd copy, not the file on disk.
        var exe = new FileInfo($"/proc/{state.Pid}/exe").LinkTarget!;
        Assert.StartsWith("/memfd:nacelle-spawn", exe);
        var allSeals = SpawnCalls.F_SEAL_SEAL | SpawnCalls.F_SEAL_SHRINK | SpawnCalls.F_SEAL_GROW | SpawnCalls.F_SEAL_WRITE;
        Assert.Equal(allSeals, SpawnHelperBinary.Shared.Seals);
        // Regression: the copy's fd must not be one the child rearranges (0-4) before it executes /proc/self/fd/N.
        Assert.True(SpawnHelperBinary.Shared.Fd >= SpawnHelperBinary.FirstFreeFd);

        // What an attacker would do as root in the container: open /proc/PID/exe for writing and overwrite it.
        var attempt = Record.Exception(() =>
        {
            using var stream = new FileStream($"/proc/{state.Pid}/exe", FileMode.Open, FileAccess.Write);
            stream.Write("#!/bin/sh\necho pwned\n"u8);
            stream.Flush();
        });
        Assert.NotNull(attempt);
        Assert.True(attempt is IOException or UnauthorizedAccessException, attempt.ToString());
        Assert.Equal(before, SHA256.HashData(File.ReadAllBytes(onDisk)));
        await scope.Runtime.DeleteAsync("parked", force: true);
    }

    /// <summary>A monitor takes over the daemon's copy of the helper only if nobody can change it: a memfd with all four
    /// seals. A memfd that can still be written, or the file on disk, is refused (and closed).</summary>
    [Fact]
    public void Only_a_fully_sealed_memfd_is_taken_over_as_the_spawn_helper()
    {
        using var loaded = SpawnHelperBinary.Load(SpawnHelperBinary.DefaultPath);
        using (var adopted = SpawnHelperBinary.Adopt(Release(SpawnCalls.DuplicateAtLeast(loaded.Handle, 3))))
        {
            Assert.True(adopted.Fd >= SpawnHelperBinary.FirstFreeFd);
            Assert.Equal(loaded.Seals, adopted.Seals);
            Assert.Equal(File.ReadAllBytes(SpawnHelperBinary.DefaultPath), File.ReadAllBytes(adopted.ExecPath));
        }

        using var writable = SpawnCalls.CreateMemoryFile("nacelle-spawn", allowSealing: true);
        RandomAccess.Write(writable, File.ReadAllBytes(SpawnHelperBinary.DefaultPath), 0);
        SpawnCalls.AddSeals(writable, SpawnCalls.F_SEAL_SHRINK | SpawnCalls.F_SEAL_GROW);
        var unsealed = Assert.Throws<NacelleException>(() => SpawnHelperBinary.Adopt(Release(SpawnCalls.DuplicateAtLeast(writable, 3))));
        Assert.Contains("is not a sealed copy of the spawn helper", unsealed.Message, StringComparison.Ordinal);

        using var onDisk = File.OpenHandle(SpawnHelperBinary.DefaultPath);
        var file = Assert.Throws<NacelleException>(() => SpawnHelperBinary.Adopt(Release(SpawnCalls.DuplicateAtLeast(onDisk, 3))));
        Assert.Contains("is not a sealed copy of the spawn helper", file.Message, StringComparison.Ordinal);
    }

    /// <summary>The fd number of <paramref name="handle"/>, which from now on belongs to whoever takes it.</summary>
    private static int Release(Microsoft.Win32.SafeHandles.SafeFileHandle handle)
    {
        var fd = (int)handle.DangerousGetHandle();
        handle.SetHandleAsInvalid();
        return fd;
    }

    /// <summary>CVE-2024-21626 class: no fd of the host process and no host working directory reaches the container.</summary>
    [Fact]
    public async Task No_host_fd_or_working_directory_leaks_into_the_container()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        // An inheritable (not close-on-exec) fd in this process, and a working directory on the host.
        using var inheritable = new AnonymousPipeServerStream(PipeDirection.Out, HandleInheritability.Inheritable);
        var leaked = inheritable.ClientSafePipeHandle.DangerousGetHandle().ToInt32();
        var cwd = Environment.CurrentDirectory;
        Environment.CurrentDirectory = scope.Root;
        try
        {
            var spec = scope.Spec("ls /proc/self/fd; echo \"cwd=$(readlink /proc/self/cwd)\"; echo \"root=$(readlink /proc/self/root)\"");
            var (state, stdout, stderr) = await scope.RunAsync(spec);
            Assert.True(state.ExitCode == 0, stderr);
            var fds = stdout.Split('\n').TakeWhile(l => !l.StartsWith("cwd=", StringComparison.Ordinal)).Where(l => l.Length > 0).ToList();
            // 0-2 are stdio, 3 is ls's own handle on /proc/self/fd.
            Assert.Equal(["0", "1", "2", "3"], fds);
            Assert.DoesNotContain(leaked.ToString(System.Globalization.CultureInfo.InvariantCulture), fds.Skip(4));
            Assert.Contains("cwd=/\n", stdout);
            Assert.Contains("root=/\n", stdout);
        }
        finally
        {
            Environment.CurrentDirectory = cwd;
        }
    }

    /// <summary>CVE-2021-30465 class: a mount target that is a symlink in the image is resolved inside the rootfs.</summary>
    [Fact]
    public async Task A_symlinked_mount_target_is_resolved_inside_the_rootfs()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var outside = Path.Combine(Path.GetTempPath(), "nacelle-escape-" + Guid.NewGuid().ToString("N")[..8]);
        var source = Directory.CreateTempSubdirectory("nacelle-ct-src-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(source, "marker"), "mounted");
            // The image ships /data/link -> ../../..<outside>: followed on the host, it would leave the rootfs.
            File.CreateSymbolicLink(Path.Combine(scope.Rootfs, "data/link"), "../../../../../../.." + outside);
            var spec = scope.Spec($"cat {outside}/marker; echo; cat /data/link/marker");
            spec.Mounts.Add(new SpecMount { Destination = "/data/link", Type = "bind", Source = source, Options = ["rbind", "ro"] });
            var (state, stdout, stderr) = await scope.RunAsync(spec);
            Assert.True(state.ExitCode == 0, stderr);
            Assert.Equal("mounted\nmounted", stdout.Trim());
            // The mount point was created inside the rootfs, and nothing at all outside it.
            Assert.True(Directory.Exists(scope.Rootfs + outside));
            Assert.False(Directory.Exists(outside));
        }
        finally
        {
            Directory.Delete(source, recursive: true);
            if (Directory.Exists(outside))
            {
                Directory.Delete(outside, recursive: true);
            }
        }
    }

    [Fact]
    public async Task The_process_is_in_its_cgroup_before_its_first_instruction()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        // cat is the program's first action: /proc/self/cgroup must already name the container's cgroup.
        var spec = SpecDefaults.Container(scope.Rootfs, ["/bin/cat", "/proc/1/cgroup"]);
        spec.Linux!.Namespaces.RemoveAll(n => n.Type == "cgroup");
        var (state, stdout, stderr) = await scope.RunAsync(spec, id: "cgfirst");
        Assert.True(state.ExitCode == 0, stderr);
        var memory = stdout.Split('\n').Single(l => l.Contains(":memory:", StringComparison.Ordinal));
        Assert.EndsWith(scope.CgroupParent + "/cgfirst", memory);
        // Every hierarchy, the cgroup2 one too (a hybrid node's twin, which the child is cloned into, or the unified
        // hierarchy): the v1 ones the helper joined by thread, the cgroup2 one at the clone.
        var ours = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.Contains(":name=", StringComparison.Ordinal)).ToList();
        Assert.Equal(CgroupLayout.Detect().UnifiedMount is not null,
            ours.Any(l => l.StartsWith("0::", StringComparison.Ordinal))); // a cgroup2 line whenever the host has one
        Assert.All(ours, line => Assert.EndsWith(scope.CgroupParent + "/cgfirst", line));
    }

    [Fact]
    public async Task A_new_user_namespace_gets_the_maps_written_by_the_parent()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var spec = scope.Spec("""
            echo "uid_map=$(cat /proc/self/uid_map | tr -s ' ')"
            echo "gid_map=$(cat /proc/self/gid_map | tr -s ' ')"
            echo "id=$(id -u):$(id -g)"
            """);
        spec.Linux!.Namespaces.Add(new SpecNamespace { Type = "user" });
        spec.Linux.UidMappings = [new SpecIdMapping { ContainerId = 0, HostId = 100000, Size = 65536 }];
        spec.Linux.GidMappings = [new SpecIdMapping { ContainerId = 0, HostId = 100000, Size = 65536 }];
        // sysfs and cgroup file systems need privileges this user namespace does not own (no new net namespace
        // ownership problem here: the network namespace is created inside it); keep the probe to proc and tmpfs.
        spec.Mounts.RemoveAll(m => m.Type is "sysfs" or "cgroup" or "mqueue");
        spec.Linux.MaskedPaths.RemoveAll(p => p.StartsWith("/sys", StringComparison.Ordinal));
        // The rootfs belongs to host root, which is unmapped: its (temp, 0700) parent must let others through.
        File.SetUnixFileMode(scope.Root, (UnixFileMode)0b111_101_101);
        var seen = await scope.ProbeAsync(spec);
        Assert.Equal("0 100000 65536", seen["uid_map"]);
        Assert.Equal("0 100000 65536", seen["gid_map"]);
        Assert.Equal("0:0", seen["id"]);
    }
}
