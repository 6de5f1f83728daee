using System.Text;
using Microsoft.Win32.SafeHandles;
using Nacelle.ContainerCore.Cgroups;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Runtime;
using Nacelle.ContainerCore.Spawn;
using Nacelle.ContainerCore.Spec;

namespace Nacelle.Tests.Kernel.Containers;

/// <summary>
/// A busybox root file system in a temp directory, a <see cref="ContainerRuntime"/> with a private state directory
/// and test cgroup parent, and cleanup that deletes (force) every container, removes the parent cgroups and the
/// directories even when the test failed.
/// </summary>
internal sealed class ContainerTestScope : IAsyncDisposable
{
    public const string Busybox = "/bin/busybox";

    private static readonly string[] Applets =
        ["sh", "cat", "ls", "echo", "id", "hostname", "true", "false", "sleep", "grep", "readlink", "mount", "touch",
         "stat", "ulimit", "head", "wc", "dd", "mkdir", "rm", "ps", "kill", "nsenter", "wget", "env", "chroot", "ln", "seq", "tr", "cut", "sed", "xargs", "tail", "awk"];

    public ContainerTestScope()
    {
        Root = Directory.CreateTempSubdirectory("nacelle-ct-").FullName;
        Rootfs = Path.Combine(Root, "rootfs");
        CgroupParent = "/nacelle-test-" + Guid.NewGuid().ToString("N")[..12];
        BuildRootfs(Rootfs);
        Cgroups = new CgroupManager(CgroupLayout.Detect(), CgroupParent);
        Runtime = new ContainerRuntime(new ContainerRuntimeOptions
        {
            StateDirectory = Path.Combine(Root, "state"),
            Cgroups = Cgroups,
        });
    }

    public string Root { get; }

    public string Rootfs { get; }

    public string CgroupParent { get; }

    public CgroupManager Cgroups { get; }

    public ContainerRuntime Runtime { get; }

    public static bool Available => Environment.UserName == "root" && File.Exists(Busybox);

    /// <summary>A default spec (runc spec's defaults) running <paramref name="script"/> with busybox sh.</summary>
    public RuntimeSpec Spec(string script) => SpecDefaults.Container(Rootfs, ["/bin/sh", "-c", script]);

    public static string NewId() => "t" + Guid.NewGuid().ToString("N")[..12];

    /// <summary>Creates, starts and waits for a container; returns its state and what it wrote to stdout/stderr.</summary>
    public async Task<(ContainerState State, string Stdout, string Stderr)> RunAsync(RuntimeSpec spec, string? id = null, TimeSpan? timeout = null)
    {
        id ??= NewId();
        using var output = new CapturedOutput();
        await Runtime.CreateAsync(id, spec, Root, output.Stdio);
        output.CloseWriters();
        await Runtime.StartAsync(id);
        var state = await Runtime.WaitAsync(id).WaitAsync(timeout ?? TimeSpan.FromSeconds(30));
        var (stdout, stderr) = await output.ReadAllAsync();
        await Runtime.DeleteAsync(id, force: true);
        return (state, stdout, stderr);
    }

    /// <summary>
    /// The probe: runs <paramref name="spec"/>, requires exit code 0 (failing with its stderr otherwise) and returns
    /// the "key=value" lines it printed (the last value of a key wins).
    /// </summary>
    public async Task<Dictionary<string, string>> ProbeAsync(RuntimeSpec spec)
    {
        var (state, stdout, stderr) = await RunAsync(spec);
        Assert.True(state.ExitCode == 0, $"probe exited {state.ExitCode}: {stderr}");
        return ParseLines(stdout);
    }

    public static Dictionary<string, string> ParseLines(string output) =>
        output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split('=', 2))
            .Where(parts => parts.Length == 2)
            .GroupBy(parts => parts[0])
            .ToDictionary(g => g.Key, g => g.Last()[1].Trim(), StringComparer.Ordinal);

    public async ValueTask DisposeAsync()
    {
        foreach (var state in Runtime.List())
        {
            try
            {
                await Runtime.DeleteAsync(state.Id, force: true);
            }
            catch (Exception)
            {
                // best effort: the cgroup removal below reports leftovers
            }
        }

        await Runtime.DisposeAsync();
        try
        {
            await Cgroups.Open(CgroupParent).RemoveAsync();
        }
        catch (Exception)
        {
            // already gone
        }

        Directory.Delete(Root, recursive: true);
    }

    private static void BuildRootfs(string rootfs)
    {
        foreach (var dir in new[] { "bin", "etc", "proc", "sys", "dev", "tmp", "root", "home/user", "data" })
        {
            Directory.CreateDirectory(Path.Combine(rootfs, dir));
        }

        File.Copy(Busybox, Path.Combine(rootfs, "bin/busybox"));
        foreach (var applet in Applets)
        {
            File.CreateSymbolicLink(Path.Combine(rootfs, "bin", applet), "busybox");
        }

        File.WriteAllText(Path.Combine(rootfs, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n");
        File.WriteAllText(Path.Combine(rootfs, "etc/group"), "root:x:0:\nuser:x:1000:\nextra:x:2000:user\n");
    }
}

/// <summary>Pipes for a container's stdout and stderr, read to the end after it exits.</summary>
internal sealed class CapturedOutput : IDisposable
{
    private readonly AnonymousPipeServerStreamPair _out = new();
    private readonly AnonymousPipeServerStreamPair _err = new();

    public SpawnStdio Stdio => new(null, _out.Writer, _err.Writer);

    /// <summary>Closes this process's copies of the write ends, so the reads end when the container's copies close.</summary>
    public void CloseWriters()
    {
        _out.CloseWriter();
        _err.CloseWriter();
    }

    public async Task<(string Stdout, string Stderr)> ReadAllAsync()
    {
        var stdout = _out.ReadToEndAsync();
        var stderr = _err.ReadToEndAsync();
        return (await stdout, await stderr);
    }

    public void Dispose()
    {
        _out.Dispose();
        _err.Dispose();
    }

    private sealed class AnonymousPipeServerStreamPair : IDisposable
    {
        private readonly System.IO.Pipes.AnonymousPipeServerStream _server = new(System.IO.Pipes.PipeDirection.In);

        public AnonymousPipeServerStreamPair()
        {
            Writer = new SafeFileHandle(_server.ClientSafePipeHandle.DangerousGetHandle(), ownsHandle: false);
        }

        public SafeFileHandle Writer { get; }

        public void CloseWriter() => _server.DisposeLocalCopyOfClientHandle();

        public async Task<string> ReadToEndAsync()
        {
            using var reader = new StreamReader(_server, Encoding.UTF8);
            return await reader.ReadToEndAsync();
        }

        public void Dispose() => _server.Dispose();
    }
}
