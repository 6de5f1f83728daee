using Nacelle.Sandbox.Network;

namespace Nacelle.Tests.Unit.SandboxNetwork;

public sealed class CniConfWatcherTests
{
    private static async Task<bool> Eventually(Func<bool> condition)
    {
        for (var i = 0; i < 100; i++)
        {
            if (condition())
            {
                return true;
            }

            await Task.Delay(100);
        }

        return condition();
    }

    [Fact]
    public async Task NoticesAConfigInstalledAndRemovedAfterStart()
    {
        using var cni = new FakeCni();
        cni.Plugin("loopback");
        cni.Plugin("fa");
        using var network = new CniNetwork(cni.Options());
        var changes = new List<bool>();
        network.StatusChanged += s =>
        {
            lock (changes)
            {
                changes.Add(s.Ready);
            }
        };
        network.StartWatching();
        Assert.False(network.Status().Ready);
        Assert.Contains("no network config found", network.Status().Message, StringComparison.Ordinal);

        cni.Conf("10-late.conflist", """{"cniVersion":"1.0.0","name":"late","plugins":[{"type":"fa"}]}""");
        Assert.True(await Eventually(() => network.Status().Ready), network.Status().Message);
        Assert.Equal("late", network.Status().Network!.Name);

        File.Delete(Path.Combine(cni.ConfDir, "10-late.conflist"));
        Assert.True(await Eventually(() => !network.Status().Ready));
        lock (changes)
        {
            // a half-written file may show up as a not-ready change first; what matters is ready, then not ready again
            Assert.Contains(true, changes);
            Assert.False(changes[^1]);
            Assert.True(changes.IndexOf(true) < changes.Count - 1);
        }
    }

    [Fact]
    public async Task TheRescanFindsAConfDirCreatedAfterStart()
    {
        using var cni = new FakeCni();
        cni.Plugin("loopback");
        cni.Plugin("fa");
        var options = cni.Options() with { ConfDir = Path.Combine(cni.Root, "later", "net.d") };
        using var network = new CniNetwork(options);
        network.StartWatching();
        Assert.Contains("does not exist", network.Status().Message, StringComparison.Ordinal);

        Directory.CreateDirectory(options.ConfDir);
        File.WriteAllText(Path.Combine(options.ConfDir, "10.conf"), """{"cniVersion":"0.4.0","name":"single","type":"fa"}""");
        Assert.True(await Eventually(() => network.Status().Ready), network.Status().Message);

        // the watcher, re-created on the new directory, notices the next change too
        File.WriteAllText(Path.Combine(options.ConfDir, "05.conflist"), """{"cniVersion":"1.0.0","name":"earlier","plugins":[{"type":"fa"}]}""");
        Assert.True(await Eventually(() => network.Status().Network?.Name == "earlier"));
    }

    [Fact]
    public void WatcherCallsBackAndStopsOnDispose()
    {
        using var cni = new FakeCni();
        var count = 0;
        var watcher = new CniConfWatcher(cni.ConfDir, TimeSpan.FromMilliseconds(100), () => Interlocked.Increment(ref count));
        Assert.True(watcher.IsWatching);
        for (var i = 0; i < 100 && Volatile.Read(ref count) < 2; i++)
        {
            Thread.Sleep(100);
        }

        Assert.True(Volatile.Read(ref count) >= 2, $"{count} re-scans");
        watcher.Dispose();
        Thread.Sleep(200);
        var after = Volatile.Read(ref count);
        Thread.Sleep(400);
        Assert.Equal(after, Volatile.Read(ref count));
    }
}
