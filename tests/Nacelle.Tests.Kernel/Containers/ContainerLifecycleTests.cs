using Nacelle.Common;
using Nacelle.ContainerCore.Runtime;
using Nacelle.ContainerCore.Spawn;

namespace Nacelle.Tests.Kernel.Containers;

/// <summary>Real containers from a busybox rootfs: create/start/wait/delete, states, errors, no leftovers.</summary>
public sealed class ContainerLifecycleTests
{
    [Fact]
    public async Task Runs_a_container_and_reports_its_exit_code()
    {
        if (!ContainerTestScope.Available) return;
        await using var scope = new ContainerTestScope();
        var (state, stdout, stderr) = await scope.RunAsync(scope.Spec("echo hello from $(hostname); echo oops >&2; exit 7"));
        Assert.Equal("hello from nacelle\n", stdout);
        Assert.Equal("oops\n", stderr);
        Assert.Equal(ContainerStatus.Stopped, state.Status);
        Assert.Equal(7, state.ExitCode);
        Assert.False(state.OomKilled);
    }
}
