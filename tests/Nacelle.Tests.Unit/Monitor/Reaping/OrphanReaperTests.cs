using System.Text.Json;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Runtime;
using Nacelle.Monitor.Reaping;
using Nacelle.Monitor.Server;

namespace Nacelle.Tests.Unit.Monitor.Reaping;

/// <summary>
/// The monitor's reaper and protocol pieces that need no root: a held reaper never looks at children (a spawn may
/// have an unadopted child), reaping is per pid and refuses non-children, /proc stat parsing, and the new protocol
/// fields round-trip through the source-generated JSON.
/// </summary>
public sealed class OrphanReaperTests
{
    [Fact]
    public void A_held_reaper_does_not_scan_and_asks_nobody_for_tracked_pids()
    {
        var asked = 0;
        var reaper = new OrphanReaper(() =>
        {
            asked++;
            return [];
        });
        using (reaper.Hold())
        using (reaper.Hold())
        {
            Assert.Equal(0, reaper.ScanOnce());
        }

        Assert.Equal(0, asked);
        Assert.Equal(0, reaper.Reaped);
    }

    /// <summary>Regression (CI, MonitorExecRaceTests): an exec whose helper was killed with its container left the
    /// process it had cloned untracked; once pause-init stopped counting as a source of orphans nothing scanned, so that
    /// zombie stayed, and the container's pid-namespace init, which waits for it, never finished exiting. A failed spawn
    /// turns periodic scans on for a while.</summary>
    [Fact]
    public async Task A_failed_spawn_makes_the_reaper_scan_periodically_although_no_orphans_are_otherwise_possible()
    {
        await using var reaper = new OrphanReaper(() => [], orphansPossible: () => false, interval: TimeSpan.FromMilliseconds(20));
        // Held: the scans look at no child of the test host (other tests' processes).
        using (reaper.Hold())
        {
            reaper.Start();
            reaper.ScanAfterFailedSpawn();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (!reaper.Polling && DateTime.UtcNow < deadline)
            {
                await Task.Delay(10);
            }

            Assert.True(reaper.Polling, "no periodic scan after a failed spawn");
        }
    }

    [Fact]
    public void Reaping_is_per_pid_and_never_takes_a_process_that_is_not_our_child()
    {
        // pid 1 is not our child: ECHILD, nothing reaped (waitpid(-1) would have taken any child of ours).
        Assert.False(ChildReaping.TryReap(1));
        var self = ChildReaping.StatOf(Environment.ProcessId);
        Assert.NotNull(self);
        Assert.NotEqual('Z', self.Value.State);
        Assert.True(self.Value.Parent > 0);
        Assert.Null(ChildReaping.StatOf(int.MaxValue));
        Assert.DoesNotContain(Environment.ProcessId, ChildReaping.Children());
    }

    [Fact]
    public void Exec_results_and_events_round_trip_with_output_as_base64()
    {
        var response = new MonitorResponse
        {
            Id = 3, Ok = true,
            Exec = new MonitorExecResult { ExitCode = 137, Stdout = [0, 1, 255], Stderr = "e"u8.ToArray(), TimedOut = true, Truncated = true },
            Event = MonitorProtocol.EventExited,
            Container = new MonitorContainer { Id = "c", Status = "Stopped", CgroupPath = "/pod/c" },
        };
        var line = MonitorProtocol.Encode(response, MonitorJson.Default.MonitorResponse);
        Assert.Equal((byte)'\n', line[^1]);
        var text = System.Text.Encoding.UTF8.GetString(line);
        Assert.Contains("\"stdout\":\"AAH/\"", text, StringComparison.Ordinal);
        Assert.Contains("\"cgroupPath\":\"/pod/c\"", text, StringComparison.Ordinal);
        var back = JsonSerializer.Deserialize(line.AsSpan(0, line.Length - 1), MonitorJson.Default.MonitorResponse)!;
        Assert.Equal(response.Exec.Stdout, back.Exec!.Stdout);
        Assert.True(back.Exec.TimedOut && back.Exec.Truncated);
        Assert.Equal("/pod/c", back.Container!.CgroupPath);
    }

    private static ContainerState State(string id, int pid, ContainerStatus status = ContainerStatus.Running) => new()
    {
        Id = id, Status = status, Pid = pid, PidStartTime = 1, Bundle = "/b", Rootfs = "/r", CgroupPath = "/c", CreatedAt = DateTimeOffset.UnixEpoch,
    };

    [Fact]
    public void Only_a_live_container_other_than_pause_init_in_the_monitors_pid_namespace_makes_the_reaper_poll()
    {
        static bool Shared(int pid) => pid < 100; // pids below 100 "share the monitor's pid namespace"

        // An ordinary pod without a shared pid namespace: pause-init shares the monitor's, the containers have their own.
        Assert.False(MonitorServer.OrphansPossible([State(MonitorProtocol.PauseInitId, 10), State("c1", 200)], Shared));
        // A hostPID container can leave orphans; a stopped one cannot.
        Assert.True(MonitorServer.OrphansPossible([State(MonitorProtocol.PauseInitId, 10), State("c1", 20)], Shared));
        Assert.False(MonitorServer.OrphansPossible([State("c1", 20, ContainerStatus.Stopped)], Shared));
        Assert.False(MonitorServer.OrphansPossible([], Shared));
    }
}
