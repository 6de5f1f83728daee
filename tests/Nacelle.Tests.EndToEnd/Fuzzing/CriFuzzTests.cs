using System.Security.Cryptography;
using Nacelle.ContainerCore.Interop;
using Nacelle.Tests.EndToEnd.Infrastructure;
using Nacelle.Tests.Support.Registry;
using Runtime.V1;

namespace Nacelle.Tests.EndToEnd.Fuzzing;

/// <summary>
/// The bounded CRI fuzzer (<see cref="CriFuzzer"/>) against the real daemon: pods on the node's network and on a guarded
/// test bridge, the busybox test image from a loopback registry, generated valid and hostile requests for every rpc for
/// a fixed time (<see cref="FuzzSettings"/>: NACELLE_FUZZ_SEED replays a run, NACELLE_FUZZ_SECONDS makes it longer). It
/// passes when the daemon stayed up, no caller's mistake was answered Internal or Unknown, List and Status agreed
/// throughout, nothing appeared outside nacelle's directories and the log directories asked for, and removing every pod
/// at the end left no process, mount, cgroup, veth, IP or iptables rule behind.
/// </summary>
[Collection(SystemDirectoryTests.Collection)]
public sealed class CriFuzzTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Hostile_requests_for_every_rpc_leave_the_daemon_up_consistent_and_the_host_clean()
    {
        Assert.SkipUnless(Environment.UserName == "root", "the fuzzer runs real pods: it needs root");
        Assert.SkipUnless(TestBridge.Available, "the CNI plugins (containernetworking-plugins), ip and iptables are needed: scripts/install-deps.sh --test");
        var settings = FuzzSettings.FromEnvironment();
        Say($"CRI fuzzer: {settings} (set these to replay this run)");

        var marker = "nfz-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        var work = Directory.CreateTempSubdirectory("nacelle-fuzz-").FullName;
        var daemonDirectory = Path.Combine(work, "d");
        Directory.CreateDirectory(daemonDirectory);
        var values = new FuzzValues(settings.Seed, marker);
        RegistryServer? registry = null;
        TestBridge? bridge = null;
        DaemonProcess? daemon = null;
        CriFuzzer? fuzzer = null;
        FuzzTarget? target = null;
        var host = new FuzzHost(marker, [work]);
        var findings = new List<string>();
        try
        {
            registry = await RegistryServer.StartAsync();
            using (var pusher = registry.CreatePusher())
            {
                await TestImages.PushBusyboxAsync(pusher, "e2e/busybox", "fuzz");
            }

            bridge = new TestBridge(daemonDirectory);
            var toml = bridge.InstallInto(daemonDirectory);
            target = new FuzzTarget(
                Image: $"{registry.Host}/e2e/busybox:fuzz",
                RegistryHost: registry.Host,
                LogBase: Path.Combine(work, "logs"),
                VolumeBase: Path.Combine(work, "volumes"),
                CgroupParent: $"/nacelle-fuzz-{marker[4..]}",
                PodNetwork: true);
            Directory.CreateDirectory(target.LogBase);
            Directory.CreateDirectory(target.VolumeBase);
            host.Before(CriFuzzer.WatchedSysctls);

            daemon = await DaemonProcess.StartAsync(toml, directory: daemonDirectory);
            await daemon.Client.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = target.Image } });

            fuzzer = new CriFuzzer(daemon, target, values, Say);
            // Each call has its own deadline; this bounds the whole run even if the checks between calls stall.
            using var overall = new CancellationTokenSource(settings.Duration + TimeSpan.FromMinutes(2));
            await fuzzer.RunAsync(settings.Duration, settings.MaxSteps, overall.Token);
            Say(fuzzer.Summary());
            findings.AddRange(fuzzer.Violations);

            if (!daemon.Process.HasExited)
            {
                findings.AddRange(await RemoveEverythingAsync(daemon));
                // What the removals moved to the trashes is unmounted and deleted in the background, one after another (a
                // removal answers before that): left there after 10 s, it is reported below as a mount or directory.
                await daemon.WaitForTrashesAsync();
                findings.AddRange(FuzzHost.Leftovers(daemon, target, fuzzer.Model, bridge).Select(l => "left after every pod was removed: " + l));
            }

            findings.AddRange(host.Changes(CriFuzzer.WatchedSysctls, [Environment.CurrentDirectory]));
            findings.AddRange(LogFilesOutsideAcceptedDirectories(target, fuzzer.Model));

            if (!daemon.Process.HasExited)
            {
                var exit = await daemon.StopAsync();
                if (exit != 0)
                {
                    findings.Add($"the daemon exited with {exit} on SIGTERM");
                }
            }
        }
        finally
        {
            // NACELLE_FUZZ_DAEMON_LOG=<file> keeps the daemon's whole log of the run (for a local investigation).
            if (daemon is not null && Environment.GetEnvironmentVariable("NACELLE_FUZZ_DAEMON_LOG") is { Length: > 0 } logFile)
            {
                await File.WriteAllTextAsync(logFile, daemon.Output);
            }

            fuzzer?.Dispose();
            if (target is not null)
            {
                host.TearDown(daemon, target, fuzzer?.Model);
            }

            if (daemon is not null)
            {
                await daemon.DisposeAsync();
            }

            if (bridge is not null)
            {
                await bridge.DisposeAsync();
            }

            if (registry is not null)
            {
                await registry.DisposeAsync();
            }

            foreach (var point in PodLeftovers.MountsUnder(work))
            {
                TestBridge.Run("umount", "-l", point);
            }

            try
            {
                Directory.Delete(work, recursive: true);
            }
            catch (IOException)
            {
            }
        }

        foreach (var finding in findings.Skip(fuzzer?.Violations.Count ?? 0))
        {
            Say("FINDING " + finding);
        }

        Assert.True(findings.Count == 0,
            $"the CRI fuzzer found {findings.Count} problem(s); replay with {settings}:\n" + string.Join("\n", findings.Take(60))
            + (findings.Count > 60 ? $"\n... and {findings.Count - 60} more" : ""));
    }

    /// <summary>Removes every pod (and so every container) through the daemon, as kubelet would at the end.</summary>
    private static async Task<List<string>> RemoveEverythingAsync(DaemonProcess daemon)
    {
        var problems = new List<string>();
        var runtime = daemon.Client.Runtime;
        try
        {
            foreach (var pod in (await runtime.ListPodSandboxAsync(new ListPodSandboxRequest(), deadline: DateTime.UtcNow.AddSeconds(30))).Items)
            {
                await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod.Id }, deadline: DateTime.UtcNow.AddSeconds(90));
                await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod.Id }, deadline: DateTime.UtcNow.AddSeconds(90));
            }

            var pods = (await runtime.ListPodSandboxAsync(new ListPodSandboxRequest(), deadline: DateTime.UtcNow.AddSeconds(30))).Items;
            var containers = (await runtime.ListContainersAsync(new ListContainersRequest(), deadline: DateTime.UtcNow.AddSeconds(30))).Containers;
            problems.AddRange(pods.Select(p => $"pod {p.Id[..12]} is still listed after its removal"));
            problems.AddRange(containers.Select(c => $"container {c.Id[..12]} is still listed after its pod's removal"));
        }
        catch (Grpc.Core.RpcException e)
        {
            problems.Add($"removing every pod at the end failed: {e.StatusCode}: {CriFuzzer.Short(e.Status.Detail)}");
        }

        return problems;
    }

    /// <summary>Files under the log base must lie in a log directory some RunPodSandbox accepted.</summary>
    private static IEnumerable<string> LogFilesOutsideAcceptedDirectories(FuzzTarget target, FuzzModel model) =>
        Directory.EnumerateFiles(target.LogBase, "*", SearchOption.AllDirectories)
            .Where(file => !model.AcceptedLogDirectories.Any(d => CriFuzzer.IsUnder(Path.GetFullPath(file), Path.GetFullPath(d))))
            .Select(file => $"log file outside every accepted log directory: {file}");

    private void Say(string line)
    {
        output.WriteLine(line);
        Console.WriteLine(line);
    }
}
