using Nacelle.ContainerCore.Spec;

namespace Nacelle.Bench.Cri;

/// <summary>A reference pod: its netns name and path, the pause container's id and pid, and its IP.</summary>
internal sealed record RuncPod(string Id, string NetnsName, string NetnsPath, int PausePid, string Ip);

/// <summary>
/// The reference: pods and containers built by hand with Debian's runc the way a containerd-like runtime does it (what
/// containerd 1.6's CRI plugin plus its runc shim run, minus the shim process and containerd's own bookkeeping).
/// A pod: <c>ip netns add</c>, CNI ADD (loopback, then the conflist), the OCI spec written, <c>runc run -d</c> of a
/// busybox <c>sleep</c> "pause" container in that netns. Its teardown: <c>runc delete --force</c>, CNI DEL,
/// <c>ip netns del</c>. A container: <c>runc create</c> + <c>runc start</c> joining the pause container's
/// network, ipc and uts namespaces.
/// </summary>
internal sealed class RuncReference(string runc, string work, CniRunner cni, string cgroupParent, string prefix)
{
    private readonly string _rootfs = Path.Combine(work, "runc-rootfs");
    private readonly string _state = Path.Combine(work, "runc-state");
    private readonly string _bundles = Path.Combine(work, "runc-bundles");

    /// <summary>A read-only busybox rootfs shared by every reference container (built once, untimed).</summary>
    public void Prepare()
    {
        foreach (var dir in new[] { "bin", "dev", "proc", "sys", "etc", "tmp", "run" })
        {
            Directory.CreateDirectory(Path.Combine(_rootfs, dir));
        }

        File.Copy("/usr/bin/busybox", Path.Combine(_rootfs, "bin", "busybox"), overwrite: true);
        foreach (var applet in new[] { "sh", "sleep", "echo" })
        {
            File.CreateSymbolicLink(Path.Combine(_rootfs, "bin", applet), "busybox");
        }

        Directory.CreateDirectory(_state);
        Directory.CreateDirectory(_bundles);
    }

    /// <summary>The steps a containerd-like RunPodSandbox does, timed by the caller as one.</summary>
    public async Task<RuncPod> RunPodAsync(string name)
    {
        var id = $"{prefix}-{name}";
        var netnsPath = "/var/run/netns/" + id;
        await Processes.RunAsync("ip", ["netns", "add", id]);
        var ip = await cni.AddAsync(id, netnsPath);
        var pid = await RunDetachedAsync(id, ["sleep", "2147483647"], spec => Join(spec, "network", netnsPath));
        return new RuncPod(id, id, netnsPath, pid, ip);
    }

    /// <summary>Stop and remove of a reference pod: the pause container killed and deleted, CNI DEL, the netns removed.</summary>
    public async Task RemovePodAsync(RuncPod pod)
    {
        await DeleteContainerAsync(pod.Id);
        await cni.DelAsync(pod.Id, pod.NetnsPath);
        await Processes.RunAsync("ip", ["netns", "del", pod.NetnsName]);
    }

    /// <summary><c>runc create</c> of a <c>sleep 3600</c> container in the pod's namespaces; returns its pid.</summary>
    public Task<int> CreateContainerAsync(RuncPod pod, string name) =>
        CreateAsync($"{pod.Id}-{name}", ["sleep", "3600"], spec =>
        {
            Join(spec, "network", pod.NetnsPath);
            Join(spec, "ipc", $"/proc/{pod.PausePid}/ns/ipc");
            Join(spec, "uts", $"/proc/{pod.PausePid}/ns/uts");
        }, detach: false);

    public async Task StartContainerAsync(RuncPod pod, string name) =>
        await Processes.RunAsync(runc, ["--root", _state, "start", $"{pod.Id}-{name}"]);

    /// <summary><c>runc exec</c> of <c>echo hi</c>, its output checked.</summary>
    public async Task ExecAsync(RuncPod pod, string name)
    {
        var result = await Processes.RunAsync(runc, ["--root", _state, "exec", $"{pod.Id}-{name}", "echo", "hi"]);
        if (result.Stdout != "hi\n")
        {
            throw new InvalidOperationException($"runc exec printed '{result.Stdout}'");
        }
    }

    public Task DeleteContainerAsync(RuncPod pod, string name) => DeleteContainerAsync($"{pod.Id}-{name}");

    /// <summary>Untimed cleanup after a failure: every container in this run's runc root, and this run's netns.</summary>
    public async Task CleanupAsync()
    {
        if (Directory.Exists(_state))
        {
            var list = await Processes.RunAsync(runc, ["--root", _state, "list", "-q"], check: false);
            foreach (var id in list.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                await Processes.RunAsync(runc, ["--root", _state, "delete", "--force", id], check: false);
            }
        }

        if (Directory.Exists("/var/run/netns"))
        {
            foreach (var path in Directory.GetFiles("/var/run/netns", prefix + "-*"))
            {
                try
                {
                    await cni.DelAsync(Path.GetFileName(path), path);
                }
                catch (InvalidOperationException e)
                {
                    Console.Error.WriteLine($"cleanup: CNI DEL {path}: {e.Message}");
                }

                await Processes.RunAsync("ip", ["netns", "del", Path.GetFileName(path)], check: false);
            }
        }
    }

    private Task DeleteContainerAsync(string id) => Processes.RunAsync(runc, ["--root", _state, "delete", "--force", id]);

    private async Task<int> RunDetachedAsync(string id, string[] args, Action<RuntimeSpec> configure) =>
        await CreateAsync(id, args, configure, detach: true);

    /// <summary>
    /// Writes the bundle's config.json (as a shim writes the spec it got) and runs <c>runc run -d</c> (pods) or
    /// <c>runc create</c> (containers, started later). Returns the container's pid from runc's --pid-file.
    /// </summary>
    private async Task<int> CreateAsync(string id, string[] args, Action<RuntimeSpec> configure, bool detach)
    {
        var bundle = Path.Combine(_bundles, id);
        Directory.CreateDirectory(bundle);
        var spec = SpecDefaults.Container(_rootfs, args);
        spec.Root!.Readonly = true;
        spec.Hostname = null;
        spec.Linux!.CgroupsPath = $"{cgroupParent}/{id}";
        configure(spec);
        await File.WriteAllTextAsync(Path.Combine(bundle, "config.json"), RuntimeSpecFile.Serialize(spec));
        var pidFile = Path.Combine(bundle, "pid");
        string[] command = detach ? ["run", "-d"] : ["create"];
        await Processes.RunAsync(runc, ["--root", _state, .. command, "--pid-file", pidFile, "--bundle", bundle, id], detached: true);
        return int.Parse(await File.ReadAllTextAsync(pidFile), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Makes the container join an existing namespace (by path) instead of creating one.</summary>
    private static void Join(RuntimeSpec spec, string type, string path)
    {
        spec.Linux!.Namespaces.RemoveAll(n => n.Type == type);
        spec.Linux.Namespaces.Add(new SpecNamespace { Type = type, Path = path });
        if (type == "uts")
        {
            spec.Hostname = null; // a joined uts namespace keeps the pod's hostname
        }
    }
}
