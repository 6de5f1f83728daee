using System.Diagnostics;
using Runtime.V1;

namespace Nacelle.Tests.EndToEnd.Infrastructure;

/// <summary>A daemon plus the pods made through it: on dispose every pod is removed through the daemon (which kills
/// its processes and unmounts its layers) before the daemon goes, even when the test failed.</summary>
internal sealed class PodSession(DaemonProcess daemon) : IAsyncDisposable
{
    public DaemonProcess Daemon { get; set; } = daemon;
    public RuntimeService.RuntimeServiceClient Runtime => Daemon.Client.Runtime;

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!Daemon.Process.HasExited)
            {
                foreach (var pod in (await Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items)
                {
                    await Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod.Id });
                }
            }
        }
        finally
        {
            await Daemon.DisposeAsync();
        }
    }
}

/// <summary>Waiting (bounded, 20 s) for what a container does in its own time: its state, a line in its CRI log.</summary>
internal static class CriWaits
{
    /// <summary>The container's status once it is in <paramref name="state"/>, or its last status after 20 s.</summary>
    public static async Task<ContainerStatus> WaitForStateAsync(RuntimeService.RuntimeServiceClient runtime, string id, ContainerState state)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var status = (await runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id })).Status;
            if (status.State == state || clock.Elapsed > TimeSpan.FromSeconds(20))
            {
                return status;
            }

            await Task.Delay(50);
        }
    }

    /// <summary>The log file's content once it holds <paramref name="text"/>, or what it holds after 20 s.</summary>
    public static async Task<string> WaitForLogAsync(string path, string text)
    {
        var clock = Stopwatch.StartNew();
        var content = "";
        while (clock.Elapsed < TimeSpan.FromSeconds(20))
        {
            content = File.Exists(path) ? await File.ReadAllTextAsync(path) : "";
            if (content.Contains(text, StringComparison.Ordinal))
            {
                break;
            }

            await Task.Delay(50);
        }

        return content;
    }
}
