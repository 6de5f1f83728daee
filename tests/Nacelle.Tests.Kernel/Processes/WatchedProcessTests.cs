using Nacelle.Common;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Processes;

namespace Nacelle.Tests.Kernel.Processes;

public sealed class WatchedProcessTests
{
    private static readonly string[] Environment = ["PATH=/usr/bin:/bin"];

    private static WatchedProcess Spawn(params string[] argv) => WatchedProcess.Open(PosixSpawn.Start(argv[0], argv, Environment));

    [Fact]
    public async Task AnExitCodeIsReapedFromOurOwnChild()
    {
        using var process = Spawn("/bin/sh", "-c", "exit 42");
        var exit = await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(42, exit.ExitCode);
        Assert.Equal(0, exit.Signal);
        Assert.True(process.HasExited);
        Assert.False(File.Exists($"/proc/{process.Pid}/status"), "the child was not reaped (zombie left)");
    }

    [Fact]
    public async Task ASignalledChildReportsTheSignal()
    {
        using var process = Spawn("/bin/sleep", "60");
        Assert.False(process.HasExited);

        Assert.True(process.Signal(Signals.SIGKILL));
        var exit = await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(Signals.SIGKILL, exit.Signal);
        Assert.Equal(128 + Signals.SIGKILL, exit.ExitCode);
    }

    [Fact]
    public async Task AnExitedProcessIsNeverSignalledAgainEvenIfItsPidIsReused()
    {
        using var process = Spawn("/bin/true");
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));

        // The pid may already belong to someone else; the pidfd still refers to the dead process.
        Assert.False(process.Signal(Signals.SIGKILL));
        Assert.False(process.Signal(0));
    }

    [Fact]
    public async Task ExitsOfProcessesThatAreNotOurChildrenAreSeenWithoutACode()
    {
        using var host = System.Diagnostics.Process.Start("/bin/sleep", "60");
        using var watched = WatchedProcess.Open(host.Id);
        Assert.True(watched.Signal(Signals.SIGTERM));

        var exit = await watched.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(exit.ExitCode is -1 or 143, $"exit {exit.ExitCode}");
        host.WaitForExit();
    }

    [Fact]
    public void AMissingProcessIsNotFound()
    {
        var e = Assert.Throws<NacelleException>(() => WatchedProcess.Open(int.MaxValue - 7));
        Assert.Equal(ErrorKind.NotFound, e.Kind);
    }

    [Fact]
    public async Task WaitingCanBeCancelled()
    {
        using var process = Spawn("/bin/sleep", "60");
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        try
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => process.WaitForExitAsync(cancel.Token));
        }
        finally
        {
            process.Signal(Signals.SIGKILL);
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }
    }
}
