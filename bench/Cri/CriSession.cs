using System.Diagnostics;
using System.Text.Json;
using Grpc.Core;
using Grpc.Net.Client;
using Runtime.V1;

namespace Nacelle.Bench.Cri;

/// <summary>
/// The CRI clients over the daemon's socket, plus what every benchmark needs: waiting for the daemon, the pod and
/// container configs kubelet would send, and the rpcs that answered Unimplemented (those rows are skipped).
/// </summary>
internal sealed class CriSession(string socketPath, string logDirectory, string cgroupParent) : IDisposable
{
    private readonly GrpcChannel _channel = CriChannel.ForUnixSocket(socketPath);
    private readonly HashSet<string> _unimplemented = [];

    public RuntimeService.RuntimeServiceClient Runtime => new(_channel);

    public Runtime.V1.ImageService.ImageServiceClient Images => new(_channel);

    public bool IsUnimplemented(string rpc) => _unimplemented.Contains(rpc);

    /// <summary>The cgroup parent of the pods this session makes.</summary>
    public string CgroupParent => cgroupParent;

    /// <summary>Runs <paramref name="call"/>; an Unimplemented answer marks <paramref name="rpc"/> skipped and returns false.</summary>
    public async Task<bool> TryAsync(string rpc, Func<Task> call)
    {
        if (_unimplemented.Contains(rpc))
        {
            return false;
        }

        try
        {
            await call();
            return true;
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Unimplemented)
        {
            _unimplemented.Add(rpc);
            Console.Error.WriteLine($"skipped: {rpc} unimplemented ({e.Status.Detail})");
            return false;
        }
    }

    /// <summary>Waits until Version answers and Status reports the network ready on <paramref name="networkName"/>.</summary>
    public async Task WaitUntilReadyAsync(string networkName)
    {
        var clock = Stopwatch.StartNew();
        var last = "no answer";
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            try
            {
                await Runtime.VersionAsync(new VersionRequest());
                var status = await Runtime.StatusAsync(new StatusRequest());
                var network = status.Status.Conditions.Single(c => c.Type == "NetworkReady");
                last = $"NetworkReady={network.Status}: {network.Reason} {network.Message}";
                if (network.Status && network.Message.Contains(networkName, StringComparison.Ordinal))
                {
                    return;
                }
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable)
            {
                last = e.Status.Detail;
            }

            await Task.Delay(50);
        }

        throw new TimeoutException($"the daemon was not ready on network {networkName} within 60 s ({last})");
    }

    /// <summary>Waits until Version answers (a runtime without the bench's network, such as the containerd reference).</summary>
    public async Task WaitUntilAnswersAsync()
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await Runtime.VersionAsync(new VersionRequest());
                return;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable && clock.Elapsed < TimeSpan.FromSeconds(60))
            {
                await Task.Delay(50);
            }
        }
    }

    /// <summary>A pod as kubelet sends it by default: pod network, pod ipc, per-container pid namespace.</summary>
    public PodSandboxConfig PodConfig(string name) => new()
    {
        Metadata = new PodSandboxMetadata { Name = name, Namespace = "bench", Uid = Guid.NewGuid().ToString(), Attempt = 0 },
        Hostname = name,
        LogDirectory = Path.Combine(logDirectory, name),
        Labels = { ["app"] = "nacelle-bench" },
        Linux = new LinuxPodSandboxConfig
        {
            CgroupParent = cgroupParent,
            SecurityContext = new LinuxSandboxSecurityContext
            {
                NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Pod, Pid = NamespaceMode.Container, Ipc = NamespaceMode.Pod },
            },
        },
    };

    /// <summary>A container running <c>sleep 3600</c> from <paramref name="image"/>.</summary>
    public static ContainerConfig ContainerConfig(string name, string image) => new()
    {
        Metadata = new ContainerMetadata { Name = name, Attempt = 0 },
        Image = new ImageSpec { Image = image },
        Command = { "sleep", "3600" },
        LogPath = name + ".log",
        Labels = { ["app"] = "nacelle-bench" },
    };

    /// <summary>A pod named <paramref name="name"/> (as <see cref="PodConfig"/> makes it) with one started container "app" of
    /// <paramref name="image"/> sleeping for good; returns their ids.</summary>
    public async Task<(string Pod, string Container)> RunSleepingPodAsync(string name, string image)
    {
        var config = PodConfig(name);
        Directory.CreateDirectory(config.LogDirectory);
        var podId = (await Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config })).PodSandboxId;
        var container = ContainerConfig("app", image);
        container.Command.Clear();
        container.Command.Add(["sleep", "2147483647"]);
        var containerId = (await Runtime.CreateContainerAsync(new CreateContainerRequest
        {
            PodSandboxId = podId, Config = container, SandboxConfig = config,
        })).ContainerId;
        await Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = containerId });
        return (podId, containerId);
    }

    /// <summary>The pids of a pod's monitor and pause-init, from PodSandboxStatus verbose info.</summary>
    public async Task<(int Monitor, int PauseInit, string Ip)> PodProcessesAsync(string podId)
    {
        var status = await Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = podId, Verbose = true });
        using var info = JsonDocument.Parse(status.Info["info"]);
        return (info.RootElement.GetProperty("monitorPid").GetInt32(), info.RootElement.GetProperty("pauseInitPid").GetInt32(),
            status.Status.Network?.Ip ?? string.Empty);
    }

    /// <summary>Stops and removes every container and pod this daemon has (untimed cleanup, also after failures).</summary>
    public async Task RemoveEverythingAsync()
    {
        await TryAsync("ListContainers", async () =>
        {
            foreach (var container in (await Runtime.ListContainersAsync(new ListContainersRequest())).Containers)
            {
                await TryAsync("StopContainer", async () =>
                    await Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = container.Id, Timeout = 0 }));
                await TryAsync("RemoveContainer", async () =>
                    await Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = container.Id }));
            }
        });
        foreach (var pod in (await Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items)
        {
            await Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod.Id });
            await Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod.Id });
        }
    }

    public void Dispose() => _channel.Dispose();
}
