using Nacelle.Common;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Processes;

namespace Nacelle.Tests.Kernel.Processes;

public sealed class WatchedProcessTests
{
    private static readonly string[] Environment = ["PATH=/usr/bin:/bin"];

    private static WatchedProcess Spawn(params string[] argv) => WatchedProcess.Adopt(SpawnCalls.Spawn(argv[0], argv, [], environment: Environment));

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
    public async Task AnObservedChildIsNeverReapedFromUnderItsOwner()
    {
        // .NET's Process class owns this child and reaps it; observing it must not steal the exit (regression:
        // reaping it with waitid left Process.WaitForExit waiting forever).
        using var host = System.Diagnostics.Process.Start("/bin/sh", ["-c", "sleep 0.2; exit 7"])!;
        using var watched = WatchedProcess.Open(host.Id);

        var exit = await watched.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.True(exit.ExitCode is 7 or -1, $"exit {exit.ExitCode}"); // read with WNOWAIT, unless .NET reaped it first
        Assert.True(host.WaitForExit(TimeSpan.FromSeconds(30)), "the owner never saw its child exit");
        Assert.Equal(7, host.ExitCode);
    }

    [Fact]
    public async Task AnObserverDoesNotTakeTheExitFromTheAdopter()
    {
        using var adopted = Spawn("/bin/sleep", "60");
        using var observer = WatchedProcess.Open(adopted.Pid);
        Assert.True(observer.Signal(Signals.SIGTERM));

        var observed = await observer.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        var reaped = await adopted.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(143, observed.ExitCode); // read with WNOWAIT: the zombie stays for the adopter
        Assert.Equal(Signals.SIGTERM, reaped.Signal);
        Assert.False(File.Exists($"/proc/{adopted.Pid}/status"), "the adopted child was not reaped");
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
