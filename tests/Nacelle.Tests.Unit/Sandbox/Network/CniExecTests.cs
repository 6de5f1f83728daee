using System.Diagnostics;
using Nacelle.Common;
using Nacelle.Sandbox.Network;

namespace Nacelle.Tests.Unit.SandboxNetwork;

/// <summary>Plugin execution against fake plugins (shell scripts that record what they were given).</summary>
public sealed class CniExecTests
{
    private const string Chain = """
        {"cniVersion":"1.0.0","name":"chain","plugins":[
          {"type":"fa","x":1},
          {"type":"fb","capabilities":{"portMappings":true}}]}
        """;

    private static FakeCni ChainSetup()
    {
        var cni = new FakeCni();
        cni.Conf("10-chain.conflist", Chain);
        cni.Plugin("loopback", """{"cniVersion":"1.0.0","interfaces":[{"name":"lo","sandbox":"/ns"}],"ips":[{"address":"127.0.0.1/8","interface":0}]}""");
        cni.Plugin("fa", FakeCni.Result("1.0.0", "10.9.0.5/24"));
        cni.Plugin("fb", FakeCni.Result("1.0.0", "10.9.0.6/24"));
        return cni;
    }

    [Fact]
    public async Task AddRunsLoopbackThenTheChainInOrderAndDelInReverse()
    {
        using var cni = ChainSetup();
        using var network = new CniNetwork(cni.Options());
        var request = cni.Request() with { PortMappings = [new CniPortMapping(8080, 80)] };

        var result = await network.SetUpPodAsync(request, CancellationToken.None);

        AssertCalls(["loopback ADD lo", "fa ADD eth0", "fb ADD eth0"], cni.CallNames());
        Assert.Equal("chain", result.NetworkName);
        Assert.Equal("eth0", result.InterfaceName);
        Assert.Equal("10.9.0.6", result.PrimaryIp); // the last plugin's result is the chain's result
        Assert.Equal("aa:bb:cc:dd:ee:02", result.Interface!.Mac);

        // environment
        var call = cni.Calls()[1].Split('|');
        Assert.Equal("pod1", call[1]);
        Assert.Equal(cni.Netns, call[2]);
        Assert.Equal("K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=pod1;K8S_POD_UID=uid-1;IgnoreUnknown=1", call[3]);
        Assert.Equal($"{Path.Combine(cni.Root, "no-such-bin")}:{cni.BinDir}", call[4]);

        // stdin: fa has no prevResult and no runtimeConfig; fb gets fa's result and its declared capability
        var fa = cni.Stdin("fa", "ADD", "eth0");
        Assert.Equal("chain", fa["name"]!.GetValue<string>());
        Assert.Equal("1.0.0", fa["cniVersion"]!.GetValue<string>());
        Assert.False(fa.ContainsKey("prevResult"));
        Assert.False(fa.ContainsKey("runtimeConfig"));
        var fb = cni.Stdin("fb", "ADD", "eth0");
        Assert.Equal("10.9.0.5/24", fb["prevResult"]!["ips"]![0]!["address"]!.GetValue<string>());
        Assert.Equal(8080, fb["runtimeConfig"]!["portMappings"]![0]!["hostPort"]!.GetValue<int>());
        Assert.Equal("cni-loopback", cni.Stdin("loopback", "ADD", "lo")["name"]!.GetValue<string>());

        // cache
        Assert.True(File.Exists(Path.Combine(cni.CacheDir, "results", "chain-pod1-eth0")));
        Assert.True(File.Exists(Path.Combine(cni.CacheDir, "results", "cni-loopback-pod1-lo")));

        File.Delete(Path.Combine(cni.Records, "calls.log"));
        await network.TearDownPodAsync(cni.Request(), CancellationToken.None);
        AssertCalls(["fb DEL eth0", "fa DEL eth0", "loopback DEL lo"], cni.CallNames());
        var fbDel = cni.Stdin("fb", "DEL", "eth0");
        Assert.Equal("10.9.0.6/24", fbDel["prevResult"]!["ips"]![0]!["address"]!.GetValue<string>()); // the cached result
        Assert.Equal(8080, fbDel["runtimeConfig"]!["portMappings"]![0]!["hostPort"]!.GetValue<int>()); // the cached capability args
        Assert.Empty(Directory.GetFiles(Path.Combine(cni.CacheDir, "results")));

        // DEL again is fine (idempotent) and runs the current config without prevResult
        File.Delete(Path.Combine(cni.Records, "calls.log"));
        await network.TearDownPodAsync(cni.Request(), CancellationToken.None);
        AssertCalls(["fb DEL eth0", "fa DEL eth0", "loopback DEL lo"], cni.CallNames());
        Assert.False(cni.Stdin("fb", "DEL", "eth0").ContainsKey("prevResult"));
    }

    [Fact]
    public async Task TheLoopbacksDelRunsWhileThePodNetworksDoes()
    {
        using var cni = ChainSetup();
        using var network = new CniNetwork(cni.Options());
        await network.SetUpPodAsync(cni.Request(), CancellationToken.None);
        cni.Behave("fa", "DEL", sleep: true);
        File.Delete(Path.Combine(cni.Records, "calls.log"));
        var sleepPidFile = Path.Combine(cni.Records, "fa.sleep.pid");

        var teardown = network.TearDownPodAsync(cni.Request(), CancellationToken.None);
        try
        {
            // fa's DEL sleeps until killed: the loopback's DEL must not wait for it.
            for (var i = 0; i < 500 && !(File.Exists(sleepPidFile) && cni.CallNames().Contains("loopback DEL lo")); i++)
            {
                await Task.Delay(20);
            }

            Assert.True(File.Exists(sleepPidFile), "fa's DEL did not start");
            Assert.Contains("loopback DEL lo", cni.CallNames());
            Assert.False(teardown.IsCompleted);
        }
        finally
        {
            for (var i = 0; i < 500 && !File.Exists(sleepPidFile); i++)
            {
                await Task.Delay(20);
            }

            if (File.Exists(sleepPidFile))
            {
                var sleepPid = int.Parse(File.ReadAllText(sleepPidFile).Trim(), System.Globalization.CultureInfo.InvariantCulture);
                Process.GetProcessById(sleepPid).Kill();
                await WaitGone(sleepPid);
            }

            await teardown;
        }

        AssertCalls(["fb DEL eth0", "fa DEL eth0", "loopback DEL lo"], cni.CallNames());
        Assert.Empty(Directory.GetFiles(Path.Combine(cni.CacheDir, "results")));
    }

    [Fact]
    public async Task PluginErrorJsonBecomesANacelleExceptionAndTheAddIsUndone()
    {
        using var cni = ChainSetup();
        cni.Behave("fb", "ADD", output: """{"cniVersion":"1.0.0","code":7,"msg":"invalid bridge","details":"bridge cni0 is a dummy"}""", exit: 1);
        using var network = new CniNetwork(cni.Options());

        var error = await Assert.ThrowsAsync<NacelleException>(() => network.SetUpPodAsync(cni.Request(), CancellationToken.None));

        Assert.Equal(ErrorKind.FailedPrecondition, error.Kind);
        Assert.Equal("CNI plugin fb ADD failed for network chain: invalid bridge: bridge cni0 is a dummy (code 7)", error.Message);
        AssertCalls(["loopback ADD lo", "fa ADD eth0", "fb ADD eth0", "fb DEL eth0", "fa DEL eth0", "loopback DEL lo"], cni.CallNames());
        Assert.Empty(Directory.GetFiles(Path.Combine(cni.CacheDir, "results")));
    }

    [Theory]
    [InlineData(3, ErrorKind.NotFound)]
    [InlineData(4, ErrorKind.InvalidArgument)]
    [InlineData(11, ErrorKind.Unavailable)]
    [InlineData(999, ErrorKind.Unavailable)]
    public async Task ErrorCodesMapToKinds(int code, ErrorKind kind)
    {
        using var cni = ChainSetup();
        cni.Behave("fa", "CHECK", output: $$"""{"code":{{code}},"msg":"nope"}""", exit: 1);
        var executor = new CniPluginExecutor([cni.BinDir], TimeSpan.FromSeconds(10));
        var rt = new CniRuntimeConf("c1", cni.Netns, "eth0", [], []);
        var error = await Assert.ThrowsAsync<NacelleException>(() => executor.ExecAsync("chain", "fa", CniCommand.Check, rt, "{}", CancellationToken.None));
        Assert.Equal(kind, error.Kind);
        Assert.Contains($"nope (code {code})", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NonJsonFailureReportsExitStatusAndStderr()
    {
        using var cni = new FakeCni();
        var path = Path.Combine(cni.BinDir, "crash");
        File.WriteAllText(path, "#!/bin/sh\ncat >/dev/null\necho 'segfault-ish trouble' >&2\nexit 42\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        var executor = new CniPluginExecutor([cni.BinDir], TimeSpan.FromSeconds(10));
        var error = await Assert.ThrowsAsync<NacelleException>(() =>
            executor.ExecAsync("n", "crash", CniCommand.Add, new CniRuntimeConf("c1", "/x", "eth0", [], []), "{}", CancellationToken.None));
        Assert.Equal("CNI plugin crash ADD failed for network n: exit status 42: segfault-ish trouble", error.Message);

        var missing = await Assert.ThrowsAsync<NacelleException>(() =>
            executor.ExecAsync("n", "absent", CniCommand.Add, null, "{}", CancellationToken.None));
        Assert.Equal(ErrorKind.FailedPrecondition, missing.Kind);
        Assert.Contains("absent", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task APluginThatOverrunsTheTimeoutIsKilled()
    {
        using var cni = ChainSetup();
        cni.Behave("fa", "ADD", sleep: true);
        using var network = new CniNetwork(cni.Options(timeout: TimeSpan.FromSeconds(1)));

        var watch = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<NacelleException>(() => network.SetUpPodAsync(cni.Request(), CancellationToken.None));
        watch.Stop();

        Assert.Equal(ErrorKind.DeadlineExceeded, error.Kind);
        Assert.Contains("fa ADD", error.Message, StringComparison.Ordinal);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(15), $"took {watch.Elapsed}");
        var sleepPid = int.Parse(File.ReadAllText(Path.Combine(cni.Records, "fa.sleep.pid")).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        await WaitGone(sleepPid);
        Assert.False(IsAlive(sleepPid), "the plugin's child survived the kill");
        Assert.Contains("fa DEL eth0", cni.CallNames()); // undone
    }

    [Fact]
    public async Task CancellationKillsThePluginAndPropagates()
    {
        using var cni = ChainSetup();
        cni.Behave("fa", "CHECK", sleep: true);
        var executor = new CniPluginExecutor([cni.BinDir], TimeSpan.FromSeconds(30));
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            executor.ExecAsync("n", "fa", CniCommand.Check, new CniRuntimeConf("c1", "/x", "eth0", [], []), "{}", cts.Token));
        var sleepPid = int.Parse(File.ReadAllText(Path.Combine(cni.Records, "fa.sleep.pid")).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        await WaitGone(sleepPid);
        Assert.False(IsAlive(sleepPid));
    }

    [Fact]
    public async Task DelAfterRestartUsesTheCachedConfigWhenTheConfDirChanged()
    {
        using var cni = ChainSetup();
        using (var first = new CniNetwork(cni.Options()))
        {
            await first.SetUpPodAsync(cni.Request() with { PortMappings = [new CniPortMapping(9090, 90)] }, CancellationToken.None);
        }

        // the admin installs another network; a new daemon instance starts
        File.Delete(Path.Combine(cni.ConfDir, "10-chain.conflist"));
        cni.Conf("10-other.conflist", """{"cniVersion":"1.0.0","name":"other","plugins":[{"type":"fc"}]}""");
        cni.Plugin("fc", FakeCni.Result("1.0.0", "10.7.0.5/24"));
        File.Delete(Path.Combine(cni.Records, "calls.log"));

        using var second = new CniNetwork(cni.Options());
        Assert.Equal("other", second.Status().Network!.Name);
        await second.TearDownPodAsync(new PodNetworkRequest { PodId = "pod1", NetnsPath = cni.Netns }, CancellationToken.None);

        AssertCalls(["fb DEL eth0", "fa DEL eth0", "loopback DEL lo"], cni.CallNames());
        var call = cni.Calls()[0].Split('|');
        Assert.Equal("K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=pod1;K8S_POD_UID=uid-1;IgnoreUnknown=1", call[3]);
        var fb = cni.Stdin("fb", "DEL", "eth0");
        Assert.Equal("chain", fb["name"]!.GetValue<string>());
        Assert.Equal(9090, fb["runtimeConfig"]!["portMappings"]![0]!["hostPort"]!.GetValue<int>());
        Assert.Empty(Directory.GetFiles(Path.Combine(cni.CacheDir, "results")));
    }

    [Fact]
    public async Task DelErrorsAreToleratedOnlyWhenTheNetnsIsGone()
    {
        using var cni = ChainSetup();
        using var network = new CniNetwork(cni.Options());
        await network.SetUpPodAsync(cni.Request(), CancellationToken.None);
        cni.Behave("fa", "DEL", output: """{"code":11,"msg":"busy"}""", exit: 1);

        var error = await Assert.ThrowsAsync<NacelleException>(() => network.TearDownPodAsync(cni.Request(), CancellationToken.None));
        Assert.Contains("busy", error.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(cni.CacheDir, "results", "chain-pod1-eth0"))); // kept for the retry

        File.Delete(cni.Netns);
        File.Delete(Path.Combine(cni.Records, "calls.log"));
        await network.TearDownPodAsync(cni.Request(), CancellationToken.None);
        AssertCalls(["fb DEL eth0", "fa DEL eth0", "loopback DEL lo"], cni.CallNames());
        Assert.Equal("", cni.Calls()[0].Split('|')[2]); // CNI_NETNS empty for a namespace that is gone
        Assert.False(File.Exists(Path.Combine(cni.CacheDir, "results", "chain-pod1-eth0")));
    }

    [Fact]
    public async Task CheckRunsFrom040AndIsSkippedForOlderOrDisabledLists()
    {
        using var cni = ChainSetup();
        using var network = new CniNetwork(cni.Options());
        await Assert.ThrowsAsync<NacelleException>(() => network.CheckPodAsync(cni.Request(), CancellationToken.None)); // nothing cached
        await network.SetUpPodAsync(cni.Request(), CancellationToken.None);
        File.Delete(Path.Combine(cni.Records, "calls.log"));

        await network.CheckPodAsync(cni.Request(), CancellationToken.None);
        Assert.Equal(["fa CHECK eth0", "fb CHECK eth0"], cni.CallNames());
        Assert.Equal("10.9.0.6/24", cni.Stdin("fa", "CHECK", "eth0")["prevResult"]!["ips"]![0]!["address"]!.GetValue<string>());

        cni.Behave("fb", "CHECK", output: """{"code":100,"msg":"veth missing"}""", exit: 1);
        var error = await Assert.ThrowsAsync<NacelleException>(() => network.CheckPodAsync(cni.Request(), CancellationToken.None));
        Assert.Contains("fb CHECK", error.Message, StringComparison.Ordinal);

        // a 0.3.1 list has no CHECK
        await network.TearDownPodAsync(cni.Request(), CancellationToken.None);
        File.Delete(Path.Combine(cni.ConfDir, "10-chain.conflist"));
        cni.Conf("10-old.conflist", Chain.Replace("1.0.0", "0.3.1", StringComparison.Ordinal));
        await network.SetUpPodAsync(cni.Request(), CancellationToken.None);
        File.Delete(Path.Combine(cni.Records, "calls.log"));
        await network.CheckPodAsync(cni.Request(), CancellationToken.None);
        Assert.Empty(cni.CallNames());

        // and a 0.3.1 DEL gets no prevResult
        await network.TearDownPodAsync(cni.Request(), CancellationToken.None);
        Assert.False(cni.Stdin("fb", "DEL", "eth0").ContainsKey("prevResult"));
    }

    [Fact]
    public async Task StatusVerbRunsOnlyFor110()
    {
        using var cni = ChainSetup();
        using var network = new CniNetwork(cni.Options());
        Assert.True((await network.StatusAsync(CancellationToken.None)).Ready);
        Assert.Empty(cni.CallNames()); // 1.0.0: no STATUS

        File.Delete(Path.Combine(cni.ConfDir, "10-chain.conflist"));
        cni.Conf("10-new.conflist", Chain.Replace("1.0.0", "1.1.0", StringComparison.Ordinal));
        Assert.True((await network.StatusAsync(CancellationToken.None)).Ready);
        Assert.Equal(["fa STATUS ", "fb STATUS "], cni.CallNames());

        cni.Behave("fb", "STATUS", output: """{"code":50,"msg":"no IPs left"}""", exit: 1);
        var status = await network.StatusAsync(CancellationToken.None);
        Assert.False(status.Ready);
        Assert.Contains("no IPs left", status.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SetUpRefusesWhenNotReadyOrTheNetnsIsMissing()
    {
        using var cni = ChainSetup();
        File.Delete(Path.Combine(cni.BinDir, "fb"));
        using var network = new CniNetwork(cni.Options());
        var status = network.Status();
        Assert.False(status.Ready);
        Assert.Equal(CniNetworkStatus.NotReadyReason, status.Reason);
        Assert.Contains("fb not found", status.Message, StringComparison.Ordinal);
        var error = await Assert.ThrowsAsync<NacelleException>(() => network.SetUpPodAsync(cni.Request(), CancellationToken.None));
        Assert.Equal(ErrorKind.FailedPrecondition, error.Kind);

        cni.Plugin("fb", FakeCni.Result("1.0.0", "10.9.0.6/24"));
        Assert.True(network.Status().Ready);
        var noNs = await Assert.ThrowsAsync<NacelleException>(() =>
            network.SetUpPodAsync(cni.Request() with { NetnsPath = "/nonexistent/ns" }, CancellationToken.None));
        Assert.Equal(ErrorKind.InvalidArgument, noNs.Kind);
        var badId = await Assert.ThrowsAsync<NacelleException>(() =>
            network.SetUpPodAsync(cni.Request() with { PodId = "../x" }, CancellationToken.None));
        Assert.Equal(ErrorKind.InvalidArgument, badId.Kind);
        Assert.Empty(cni.CallNames());
    }

    [Fact]
    public async Task IpamPluginsAndLoopbackCountForReadiness()
    {
        using var cni = new FakeCni();
        cni.Conf("10.conflist", """{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"fa","ipam":{"type":"myipam"}}]}""");
        cni.Plugin("fa");
        using var network = new CniNetwork(cni.Options());
        Assert.Contains("plugin(s) myipam, loopback not found", network.Status().Message, StringComparison.Ordinal);
        cni.Plugin("myipam");
        cni.Plugin("loopback");
        Assert.True(network.Status().Ready);
        await Task.CompletedTask;
    }

    [Fact]
    public async Task DefaultNetworkIsUsedWhenTheConfDirHasNoValidConfig()
    {
        using var cni = new FakeCni();
        cni.Conf("01-bad.conf", "{}");
        using (var disabled = new CniNetwork(cni.Options(defaultNetwork: false)))
        {
            var status = disabled.Status();
            Assert.False(status.Ready);
            Assert.Contains("01-bad.conf", status.Message, StringComparison.Ordinal);
        }

        using var network = new CniNetwork(cni.Options(defaultNetwork: true));
        Assert.False(network.Status().Ready); // plugins missing
        Assert.Contains("bridge", network.Status().Message, StringComparison.Ordinal);
        cni.Plugin("loopback", """{"cniVersion":"1.0.0"}""");
        cni.Plugin("bridge", FakeCni.Result("1.0.0", "10.88.0.2/16"));
        cni.Plugin("host-local");
        cni.Plugin("portmap", FakeCni.Result("1.0.0", "10.88.0.2/16"));
        var ready = network.Status();
        Assert.True(ready.Ready, ready.Message);
        Assert.True(ready.IsDefaultNetwork);
        Assert.Contains("01-bad.conf", ready.Message, StringComparison.Ordinal);

        var result = await network.SetUpPodAsync(cni.Request() with { PortMappings = [new CniPortMapping(8080, 80)] }, CancellationToken.None);
        Assert.Equal("nacelle-default", result.NetworkName);
        AssertCalls(["loopback ADD lo", "bridge ADD eth0", "portmap ADD eth0"], cni.CallNames());
        var bridge = cni.Stdin("bridge", "ADD", "eth0");
        Assert.True(bridge["ipMasq"]!.GetValue<bool>());
        Assert.Equal(Path.Combine(cni.Root, "ipam"), bridge["ipam"]!["dataDir"]!.GetValue<string>());
        Assert.Equal(8080, cni.Stdin("portmap", "ADD", "eth0")["runtimeConfig"]!["portMappings"]![0]!["hostPort"]!.GetValue<int>());
    }

    /// <summary>
    /// The calls made, in order, except that the loopback's ADD runs beside the pod network's (either may start first;
    /// a CI run once saw the bridge's first): it is checked once, apart, and every other call keeps its place.
    /// </summary>
    /// <summary>The calls in order, except the loopback's, which run beside the pod network's: only counted.</summary>
    private static void AssertCalls(string[] expected, IReadOnlyList<string> actual)
    {
        foreach (var loopback in new[] { "loopback ADD lo", "loopback DEL lo" })
        {
            Assert.Equal(expected.Count(c => c == loopback), actual.Count(c => c == loopback));
        }

        Assert.Equal(expected.Where(c => !c.StartsWith("loopback ", StringComparison.Ordinal)),
            actual.Where(c => !c.StartsWith("loopback ", StringComparison.Ordinal)));
    }

    private static bool IsAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return !stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z');
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static async Task WaitGone(int pid)
    {
        for (var i = 0; i < 50 && IsAlive(pid); i++)
        {
            await Task.Delay(100);
        }
    }
}
