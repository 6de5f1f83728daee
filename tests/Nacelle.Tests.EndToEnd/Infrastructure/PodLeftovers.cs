using System.Text.Json;
using Nacelle.ContainerCore.Interop;
using Runtime.V1;

namespace Nacelle.Tests.EndToEnd.Infrastructure;

/// <summary>What verbose PodSandboxStatus tells about a pod (info["info"]).</summary>
internal sealed record PodInfo(string Id, string Ip, int PauseInitPid, int MonitorPid, string NetnsPath, string PodDirectory)
{
    /// <summary>Asks the daemon for the pod's verbose status.</summary>
    public static async Task<PodInfo> OfAsync(DaemonProcess daemon, string id)
    {
        var status = await daemon.Client.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = id, Verbose = true });
        using var info = JsonDocument.Parse(status.Info["info"]);
        var root = info.RootElement;
        return new PodInfo(status.Status.Id, status.Status.Network?.Ip ?? "", root.GetProperty("pauseInitPid").GetInt32(),
            root.GetProperty("monitorPid").GetInt32(), root.GetProperty("netnsPath").GetString() ?? "",
            root.GetProperty("podDirectory").GetString() ?? "");
    }
}

/// <summary>
/// The pods one test ran, torn down even when the test failed: removed through the daemon when it still answers, then
/// whatever survived that is ended by hand: the pods' monitors and pause-inits (by pid, only while their command line
/// still names the pod, so a reused pid is never hit) and mounts left under the daemon's directory (namespace pins,
/// /dev/shm).
/// </summary>
internal sealed class PodLeftovers
{
    private readonly List<PodInfo> _pods = [];

    /// <summary>Remembers a pod (call as soon as its id is known).</summary>
    public async Task<PodInfo> TrackAsync(DaemonProcess daemon, string id)
    {
        var info = await PodInfo.OfAsync(daemon, id);
        _pods.Add(info);
        return info;
    }

    /// <summary>The pids of live processes whose command line contains <paramref name="text"/>.</summary>
    public static IReadOnlyList<int> ProcessesMentioning(string text)
    {
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || pid == Environment.ProcessId)
            {
                continue;
            }

            try
            {
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                if (cmdline.Contains(text, StringComparison.Ordinal))
                {
                    found.Add(pid);
                }
            }
            catch (IOException)
            {
                // exited meanwhile
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return found;
    }

    /// <summary>Mount points at or below <paramref name="directory"/> (from this process's mountinfo), deepest first.</summary>
    public static IReadOnlyList<string> MountsUnder(string directory)
    {
        var prefix = directory.TrimEnd('/') + "/";
        return [.. File.ReadAllLines("/proc/self/mountinfo")
            .Select(line => line.Split(' ')[4].Replace("\\040", " ", StringComparison.Ordinal))
            .Where(point => point.StartsWith(prefix, StringComparison.Ordinal))
            .Distinct()
            .OrderByDescending(point => point.Length)];
    }

    /// <summary>Removes every tracked pod through <paramref name="daemon"/> (if it runs), then ends what is left.</summary>
    public async Task CleanUpAsync(DaemonProcess? daemon)
    {
        if (daemon is not null && !daemon.Process.HasExited)
        {
            foreach (var pod in _pods)
            {
                try
                {
                    await daemon.Client.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod.Id },
                        deadline: DateTime.UtcNow.AddSeconds(60));
                }
                catch (Exception)
                {
                    // keep going: the manual steps below still run
                }
            }
        }

        foreach (var pod in _pods)
        {
            foreach (var pid in ProcessesMentioning("--pod " + pod.Id))
            {
                Signals.Send(pid, Signals.SIGKILL);
            }

            if (pod.PauseInitPid > 0 && ReadCmdline(pod.PauseInitPid) is { } cmdline && cmdline.Contains("pause", StringComparison.Ordinal)
                && File.Exists($"/proc/{pod.PauseInitPid}/cgroup")
                && File.ReadAllText($"/proc/{pod.PauseInitPid}/cgroup").Contains(pod.Id[..12], StringComparison.Ordinal))
            {
                Signals.Send(pod.PauseInitPid, Signals.SIGKILL);
            }
        }

        if (daemon is not null)
        {
            foreach (var point in MountsUnder(daemon.WorkDirectory))
            {
                TestBridge.Run("umount", "-l", point);
            }
        }

        // Give the kernel a moment to reap what was killed (the cgroups are removed after this).
        for (var i = 0; i < 50 && _pods.Any(p => ProcessesMentioning("--pod " + p.Id).Count > 0); i++)
        {
            await Task.Delay(100);
        }
    }

    private static string? ReadCmdline(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline");
        }
        catch (IOException)
        {
            return null;
        }
    }
}
