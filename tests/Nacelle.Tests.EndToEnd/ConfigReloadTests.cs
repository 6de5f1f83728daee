using System.Diagnostics;
using Grpc.Core;
using Nacelle.ContainerCore.Interop;
using Nacelle.Tests.EndToEnd.Infrastructure;
using Nacelle.Tests.Support.Registry;
using Runtime.V1;

namespace Nacelle.Tests.EndToEnd;

/// <summary>
/// SIGHUP as `systemctl reload nacelle` sends it: the daemon re-reads its files and applies the live keys while a
/// client holds the socket and an event stream open; an invalid file is refused with one line and changes nothing.
/// </summary>
public sealed class ConfigReloadTests
{
    [Fact]
    public async Task SighupPullsThroughANewMirrorAndRaisesTheLogLevelWithoutDroppingTheSocketOrAStream()
    {
        await using var origin = await RegistryServer.StartAsync();
        await using var mirror = await RegistryServer.StartAsync();
        PushedImage app;
        using (var pusher = mirror.CreatePusher())
        {
            app = await TestImages.PushBusyboxAsync(pusher, "e2e/reloaded", "1.0");
        }

        await using var originProxy = await TestProxy.StartAsync(origin.BaseUri);
        await using var daemon = await DaemonProcess.StartAsync("log_level = \"info\"\n");
        var configPath = Path.Combine(daemon.WorkDirectory, "config.toml");
        var startConfig = await File.ReadAllTextAsync(configPath);
        var runtime = daemon.Client.Runtime;
        var images = daemon.Client.Images;
        var image = new ImageSpec { Image = $"{originProxy.Host}/e2e/reloaded:1.0" };

        // Before: the image is only at the mirror, which the daemon does not know of; the origin is asked and misses.
        var miss = await Assert.ThrowsAsync<RpcException>(async () => await images.PullImageAsync(new PullImageRequest { Image = image }));
        Assert.Equal(StatusCode.NotFound, miss.StatusCode);
        Assert.NotEmpty(originProxy.Requests);
        await runtime.ListPodSandboxAsync(new ListPodSandboxRequest());

        // A stream opened before the reload.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        using var events = runtime.GetContainerEvents(new GetEventsRequest(), cancellationToken: cancel.Token);
        var received = new List<ContainerEventResponse>();
        var reader = Task.Run(async () =>
        {
            try
            {
                while (await events.ResponseStream.MoveNext(cancel.Token))
                {
                    lock (received)
                    {
                        received.Add(events.ResponseStream.Current);
                    }
                }
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled || (cancel.IsCancellationRequested && e.StatusCode == StatusCode.Unavailable))
            {
                // Ended by the test's own cancellation: the client reports Cancelled, or Unavailable ("the request was
                // aborted") when the stream's reset wins the race.
            }
        });

        await File.WriteAllTextAsync(configPath, startConfig.Replace("log_level = \"info\"", "log_level = \"debug\"", StringComparison.Ordinal) + $$"""

            [registry.hosts."{{originProxy.Host}}"]
            mirrors = ["{{mirror.BaseUri}}"]
            fallback = false
            """);
        await ReloadAsync(daemon, "configuration reloaded", 1);
        Assert.Contains($"configuration reloaded: changed log_level, registry.hosts.\"{originProxy.Host}\"", daemon.Output);

        // The new mirror serves the pull; the origin is not asked again.
        var originRequests = originProxy.Requests.Count;
        Assert.Equal(app.ConfigDigest, (await images.PullImageAsync(new PullImageRequest { Image = image })).ImageRef);
        Assert.Equal(originRequests, originProxy.Requests.Count);

        // debug: the polled calls are logged now (they were not at info).
        Assert.DoesNotContain("ListPodSandbox OK", daemon.Output);
        await runtime.ListPodSandboxAsync(new ListPodSandboxRequest());
        await WaitForOutputAsync(daemon, "ListPodSandbox OK", 1);

        // The stream opened before the reload still delivers.
        var pod = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = HostNetworkPod("reload") })).PodSandboxId;
        try
        {
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < TimeSpan.FromSeconds(30))
            {
                lock (received)
                {
                    if (received.Any(e => e.ContainerId == pod && e.ContainerEventType == ContainerEventType.ContainerStartedEvent))
                    {
                        break;
                    }
                }

                await Task.Delay(50);
            }

            lock (received)
            {
                Assert.Contains(received, e => e.ContainerId == pod && e.ContainerEventType == ContainerEventType.ContainerStartedEvent);
            }

            // An invalid file: refused in one line naming the key; the mirror and the debug level stay in force.
            await File.WriteAllTextAsync(configPath, startConfig.Replace("log_level = \"info\"", "log_level = \"loud\"", StringComparison.Ordinal));
            await ReloadAsync(daemon, "configuration reload refused", 1);
            var refused = Assert.Single(daemon.Output.Split('\n'), l => l.Contains("configuration reload refused", StringComparison.Ordinal));
            Assert.Contains($"{configPath}: log_level: 'loud' is not one of", refused);
            await images.RemoveImageAsync(new RemoveImageRequest { Image = image });
            Assert.Equal(app.ConfigDigest, (await images.PullImageAsync(new PullImageRequest { Image = image })).ImageRef);
            Assert.Equal(originRequests, originProxy.Requests.Count);
            var listed = daemon.Output.Split('\n').Count(l => l.Contains("ListPodSandbox OK", StringComparison.Ordinal));
            await runtime.ListPodSandboxAsync(new ListPodSandboxRequest());
            await WaitForOutputAsync(daemon, "ListPodSandbox OK", listed + 1);

            // A key that needs a restart: named, kept at its running value; the live one beside it is applied.
            await File.WriteAllTextAsync(configPath, startConfig + "\n[image]\nmax_concurrent_downloads = 5\n");
            await ReloadAsync(daemon, "configuration reloaded", 2);
            Assert.Contains("configuration reload: image.max_concurrent_downloads changed but take effect only at the next start", daemon.Output);
            Assert.Contains($"configuration reloaded: changed log_level, registry.hosts.\"{originProxy.Host}\"", daemon.Output.Split('\n').Last(l => l.Contains("configuration reloaded", StringComparison.Ordinal)));
            var status = await runtime.StatusAsync(new StatusRequest { Verbose = true });
            Assert.Contains("\"max_concurrent_downloads\":3", status.Info["config"]);
            Assert.Contains("\"log_level\":\"info\"", status.Info["config"]);
            Assert.Contains("configReloadedAt", status.Info["runtime"]);
        }
        finally
        {
            await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod });
            await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod });
        }

        Assert.False(reader.IsCompleted, "the event stream ended");
        await cancel.CancelAsync();
        await reader;
        Assert.Equal(0, await daemon.StopAsync());
    }

    private static async Task ReloadAsync(DaemonProcess daemon, string line, int count)
    {
        Signals.Send(daemon.Process.Id, Signals.SIGHUP);
        await WaitForOutputAsync(daemon, line, count);
    }

    private static async Task WaitForOutputAsync(DaemonProcess daemon, string fragment, int count)
    {
        int Count() => daemon.Output.Split('\n').Count(l => l.Contains(fragment, StringComparison.Ordinal));
        var clock = Stopwatch.StartNew();
        while (Count() < count && clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(20);
        }

        Assert.True(Count() >= count, $"no {count}. line with \"{fragment}\" in:\n{daemon.Output}");
    }

    private static PodSandboxConfig HostNetworkPod(string name) => new()
    {
        Metadata = new PodSandboxMetadata { Name = name, Namespace = "e2e", Uid = Guid.NewGuid().ToString(), Attempt = 0 },
        Linux = new LinuxPodSandboxConfig
        {
            SecurityContext = new LinuxSandboxSecurityContext
            {
                NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node, Pid = NamespaceMode.Pod, Ipc = NamespaceMode.Pod },
            },
        },
    };
}
