using System.Diagnostics;
using Nacelle.Common;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Spawn;
using Nacelle.ContainerCore.Spec;

namespace Nacelle.Tests.Kernel.Containers;

/// <summary>
/// Mount propagation of a bind volume whose host source is a shared tmpfs the test makes: rshared (kubelet's
/// PROPAGATION_BIDIRECTIONAL) carries mounts both ways, rslave (HOST_TO_CONTAINER) from the host in only, rprivate
/// neither; a shared volume whose source is not on a shared mount is refused. Every mount is undone even on failure.
/// </summary>
public sealed class MountPropagationTests
{
    /// <summary>A shared tmpfs at &lt;scope&gt;/shared; disposing detaches it with everything mounted below it.</summary>
    private sealed class SharedVolume : IDisposable
    {
        public SharedVolume(string root)
        {
            Path = Directory.CreateDirectory(System.IO.Path.Combine(root, "shared")).FullName;
            Mounts.MountTmpfs(Path, "mode=755");
            Run("mount", "--make-shared", Path);
        }

        public string Path { get; }

        public void Dispose()
        {
            // Host-side mounts below it first (a mount the container made may have propagated here), then the volume.
            foreach (var below in new[] { "from-host", "from-container" })
            {
                while (Mounts.Unmount(System.IO.Path.Combine(Path, below)))
                {
                }
            }

            while (Mounts.Unmount(Path))
            {
            }
        }
    }

    private static void Run(string program, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(program, args) { RedirectStandardError = true })!;
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{program} {string.Join(' ', args)}: {error}");
    }

    private static async Task WaitForFileAsync(string path)
    {
        var clock = Stopwatch.StartNew();
        while (!File.Exists(path))
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"{path} did not appear");
            await Task.Delay(20);
        }
    }

    /// <summary>
    /// The container mounts a tmpfs under the volume and marks it, then waits for the host to mount one of its own and
    /// reports whether it sees it. Returns (the container's mount seen on the host, the host's mount seen inside).
    /// </summary>
    private static async Task<(bool OnHost, bool InContainer)> ExchangeMountsAsync(ContainerTestScope scope, SharedVolume volume, string propagation)
    {
        var spec = scope.Spec("""
            mkdir -p /vol/from-container /vol/from-host
            mount -t tmpfs tmpfs /vol/from-container && echo made > /vol/from-container/file && touch /vol/mounted
            i=0; while [ ! -e /vol/go ]; do sleep 0.05; i=$((i+1)); [ $i -gt 400 ] && exit 3; done
            if [ -e /vol/from-host/flag ]; then echo host_mount=seen; else echo host_mount=unseen; fi
            """);
        // mount(8) inside needs CAP_SYS_ADMIN (in its own mount namespace).
        foreach (var set in new[] { spec.Process!.Capabilities!.Bounding, spec.Process.Capabilities.Effective, spec.Process.Capabilities.Permitted })
        {
            set.Add("CAP_SYS_ADMIN");
        }

        spec.Mounts.Add(new SpecMount { Destination = "/vol", Type = "bind", Source = volume.Path, Options = ["rbind", propagation, "rw"] });
        if (propagation == "rshared")
        {
            spec.Linux!.RootfsPropagation = "rshared";
        }

        var id = ContainerTestScope.NewId();
        using var output = new CapturedOutput();
        await scope.Runtime.CreateAsync(id, spec, scope.Root, output.Stdio);
        output.CloseWriters();
        await scope.Runtime.StartAsync(id);
        await WaitForFileAsync(Path.Combine(volume.Path, "mounted"));
        var onHost = File.Exists(Path.Combine(volume.Path, "from-container", "file"));

        Mounts.MountTmpfs(Path.Combine(volume.Path, "from-host"), "mode=755");
        await File.WriteAllTextAsync(Path.Combine(volume.Path, "from-host", "flag"), "host");
        await File.WriteAllTextAsync(Path.Combine(volume.Path, "go"), "");
        var state = await scope.Runtime.WaitAsync(id).WaitAsync(TimeSpan.FromSeconds(30));
        var (stdout, stderr) = await output.ReadAllAsync();
        Assert.True(state.ExitCode == 0, $"exit {state.ExitCode}: {stderr}");
        return (onHost, ContainerTestScope.ParseLines(stdout)["host_mount"] == "seen");
    }

    [Theory]
    [InlineData("rshared", true, true)]
    [InlineData("rslave", false, true)]
    [InlineData("rprivate", false, false)]
    public async Task Volume_propagation_carries_mounts_as_its_mode_says(string propagation, bool containerToHost, bool hostToContainer)
    {
        Assert.True(ContainerTestScope.Available, "kernel tests run as root with /bin/busybox");
        await using var scope = new ContainerTestScope();
        using var volume = new SharedVolume(scope.Root);
        var (onHost, inContainer) = await ExchangeMountsAsync(scope, volume, propagation);
        Assert.Equal(containerToHost, onHost);
        Assert.Equal(hostToContainer, inContainer);
    }

    [Fact]
    public async Task A_shared_volume_whose_source_is_not_on_a_shared_mount_is_refused_naming_it()
    {
        Assert.True(ContainerTestScope.Available);
        await using var scope = new ContainerTestScope();
        var privateSource = Directory.CreateDirectory(Path.Combine(scope.Root, "private")).FullName;
        Mounts.MountTmpfs(privateSource, "mode=755");
        try
        {
            Run("mount", "--make-private", privateSource);
            var spec = scope.Spec("true");
            spec.Mounts.Add(new SpecMount { Destination = "/vol", Type = "bind", Source = privateSource, Options = ["rbind", "rshared"] });
            var error = await Assert.ThrowsAsync<NacelleException>(
                () => scope.Runtime.CreateAsync(ContainerTestScope.NewId(), spec, scope.Root, SpawnStdio.Null));
            Assert.Equal(ErrorKind.FailedPrecondition, error.Kind);
            Assert.Contains(privateSource, error.Message, StringComparison.Ordinal);
            Assert.Contains("shared mount", error.Message, StringComparison.Ordinal);
            Assert.Empty(scope.Runtime.List());
        }
        finally
        {
            Mounts.Unmount(privateSource);
        }
    }
}
