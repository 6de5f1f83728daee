using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.Sandbox.Monitor;

namespace Nacelle.Tests.Kernel.Monitor;

/// <summary>
/// Regression (found by the CRI fuzzer): an exec-sync racing the end of its container (StopContainer, or the pod's stop,
/// killing every process in the container's cgroup) answered Internal "the spawn helper stopped without reporting
/// (signal 9)": the helper had joined the cgroup and was killed with it. The caller raced a stop; that is
/// FailedPrecondition (the container is not running), as for an exec that arrives a moment later.
/// </summary>
public sealed class MonitorExecRaceTests
{
    [Fact]
    public async Task An_exec_killed_with_its_container_is_refused_as_not_running_never_as_Internal()
    {
        await using var pod = await MonitorPodFixture.StartAsync();
        // The kill comes on a second connection: one connection's requests are answered in order.
        await using var killer = new MonitorClient(pod.Options.SocketPath);
        await killer.ConnectAsync(TimeSpan.FromSeconds(5));
        var refusals = new List<string>();
        for (var round = 0; round < 30; round++)
        {
            var id = $"c{round}";
            await pod.RunAsync(id, pod.Scope.Spec("exec sleep 1000"));

            var exec = pod.ExecAsync(id, MonitorPodFixture.Process("/bin/true"));
            // Kill everything in the container's cgroup (as StopContainer's SIGKILL does) at a different point of the
            // exec's setup each round.
            await Task.Delay(round % 6);
            await killer.SendAsync(new MonitorRequest { Op = MonitorProtocol.Kill, ContainerId = id, Signal = 9, All = true });
            try
            {
                await exec;
            }
            catch (NacelleException e)
            {
                refusals.Add($"{e.Kind}: {e.Message}");
            }

            await pod.WaitStoppedAsync(id, TimeSpan.FromSeconds(20));
            await pod.Client.SendAsync(new MonitorRequest { Op = MonitorProtocol.Delete, ContainerId = id, Force = true });
        }

        Assert.All(refusals, refusal => Assert.StartsWith(nameof(ErrorKind.FailedPrecondition), refusal, StringComparison.Ordinal));
    }
}
