using Runtime.V1;

namespace Nacelle.Tests.EndToEnd.Fuzzing;

/// <summary>A pod as the fuzzer expects the daemon to have it.</summary>
internal sealed class FuzzPod(string id, PodSandboxConfig config)
{
    public string Id { get; } = id;

    /// <summary>The config RunPodSandbox was sent (CreateContainer repeats it as sandbox_config).</summary>
    public PodSandboxConfig Config { get; } = config;

    public bool HostNetwork => Config.Linux?.SecurityContext?.NamespaceOptions?.Network == NamespaceMode.Node;

    public bool Ready { get; set; } = true;

    public bool Removed { get; set; }

    /// <summary>A call about it ended without a definite answer (a deadline, concurrent calls): the daemon's word is taken
    /// at the next check.</summary>
    public bool Uncertain { get; set; }

    public override string ToString() => $"pod {Id[..12]} ({Config.Metadata?.Name})";
}

internal enum FuzzContainerState
{
    Created,
    Running,
    Exited,
}

/// <summary>A container as the fuzzer expects the daemon to have it.</summary>
internal sealed class FuzzContainer(string id, FuzzPod pod, string name, bool longRunning, string? logFile)
{
    /// <summary>Made from a valid config: it must start.</summary>
    public bool Valid { get; init; }

    public uint Attempt { get; init; }

    public string Id { get; } = id;

    public FuzzPod Pod { get; } = pod;

    public string Name { get; } = name;

    /// <summary>Its command runs until it is stopped (sleep): it must be running for as long as nobody stopped it.</summary>
    public bool LongRunning { get; } = longRunning;

    /// <summary>Where its CRI log must be (the pod's log_directory joined with log_path), or null without one.</summary>
    public string? LogFile { get; } = logFile;

    public FuzzContainerState State { get; set; } = FuzzContainerState.Created;

    public bool Removed { get; set; }

    public bool Uncertain { get; set; }

    /// <summary>Its resources were changed: a limit may have killed it.</summary>
    public bool MayHaveDied { get; set; }

    public override string ToString() => $"container {Id[..12]} ({Name}) of {Pod}";
}

/// <summary>Everything the fuzzer created and what it expects of it.</summary>
internal sealed class FuzzModel
{
    public List<FuzzPod> Pods { get; } = [];

    public List<FuzzContainer> Containers { get; } = [];

    /// <summary>Every id the daemon ever answered with (the leak checks look for all of them at the end).</summary>
    public HashSet<string> AllPodIds { get; } = new(StringComparer.Ordinal);

    public HashSet<string> AllContainerIds { get; } = new(StringComparer.Ordinal);

    /// <summary>The log directories RunPodSandbox accepted (the only places outside nacelle's own where files may appear).</summary>
    public HashSet<string> AcceptedLogDirectories { get; } = new(StringComparer.Ordinal);

    /// <summary>Every cgroup_parent a RunPodSandbox named, accepted or not: the caller's cgroup (kubelet makes and removes
    /// it), which nacelle may create on the way to the pod's own and leaves, as runc does.</summary>
    public HashSet<string> RequestedCgroupParents { get; } = new(StringComparer.Ordinal);

    /// <summary>A create ended without an answer: pods or containers the fuzzer never heard of may exist.</summary>
    public bool UnknownCreates { get; set; }

    /// <summary>Whether the test image is present (RemoveImage may remove it; PullImage brings it back).</summary>
    public bool ImagePresent { get; set; } = true;

    public IEnumerable<FuzzPod> LivePods => Pods.Where(p => !p.Removed);

    public IEnumerable<FuzzContainer> LiveContainers => Containers.Where(c => !c.Removed);

    public FuzzPod AddPod(string id, PodSandboxConfig config)
    {
        var pod = new FuzzPod(id, config);
        Pods.Add(pod);
        AllPodIds.Add(id);
        if (config.LogDirectory.Length > 0)
        {
            AcceptedLogDirectories.Add(config.LogDirectory);
        }

        return pod;
    }

    public FuzzContainer AddContainer(string id, FuzzPod pod, string name, bool longRunning, string? logFile, bool valid = false, uint attempt = 0)
    {
        var container = new FuzzContainer(id, pod, name, longRunning, logFile) { Valid = valid, Attempt = attempt };
        Containers.Add(container);
        AllContainerIds.Add(id);
        return container;
    }

    /// <summary>The live pods whose id starts with <paramref name="prefix"/>.</summary>
    public List<FuzzPod> PodsMatching(string prefix) =>
        prefix.Length == 0 ? [] : [.. LivePods.Where(p => p.Id.StartsWith(prefix, StringComparison.Ordinal))];

    public List<FuzzContainer> ContainersMatching(string prefix) =>
        prefix.Length == 0 ? [] : [.. LiveContainers.Where(c => c.Id.StartsWith(prefix, StringComparison.Ordinal))];

    /// <summary>Marks a pod (and its containers) uncertain: the next check takes the daemon's word.</summary>
    public void Unsettle(FuzzPod pod)
    {
        pod.Uncertain = true;
        foreach (var container in LiveContainers.Where(c => c.Pod == pod))
        {
            container.Uncertain = true;
        }
    }

    /// <summary>StopPodSandbox succeeded: not ready, every container stopped.</summary>
    public void Stopped(FuzzPod pod)
    {
        pod.Ready = false;
        foreach (var container in LiveContainers.Where(c => c.Pod == pod))
        {
            if (container.State == FuzzContainerState.Created)
            {
                container.Uncertain = true; // a runtime may keep it created or mark it exited
            }
            else
            {
                container.State = FuzzContainerState.Exited;
            }
        }
    }

    /// <summary>RemovePodSandbox succeeded: the pod and its containers are gone.</summary>
    public void Removed(FuzzPod pod)
    {
        pod.Removed = true;
        foreach (var container in LiveContainers.Where(c => c.Pod == pod))
        {
            container.Removed = true;
        }
    }
}
