using System.Text.Json;
using Grpc.Core;
using Nacelle.Tests.EndToEnd.Infrastructure;
using Runtime.V1;

namespace Nacelle.Tests.EndToEnd;

/// <summary>The RPCs the foundation implements, and honest Unimplemented answers for the rest.</summary>
public sealed class RuntimeRpcTests(SharedDaemon shared) : IClassFixture<SharedDaemon>
{
    private DaemonProcess Daemon => shared.Daemon;

    [Fact]
    public async Task VersionNamesTheRuntimeAndTheBuild()
    {
        var response = await Daemon.Client.Runtime.VersionAsync(new VersionRequest { Version = "v1" });

        Assert.Equal("nacelle", response.RuntimeName);
        Assert.Equal("v1", response.RuntimeApiVersion);
        Assert.Equal("0.1.0", response.Version);

        var (exit, stdout, _) = await DaemonProcess.RunToExitAsync("version");
        Assert.Equal(0, exit);
        Assert.Equal($"nacelle {response.RuntimeVersion}", stdout.Trim());
        Assert.Matches(@"^\d+\.\d+\.\d+", response.RuntimeVersion);
    }

    [Fact]
    public async Task StatusTellsRuntimeReadyAndNetworkNotReadyWithoutACniConfig()
    {
        var response = await Daemon.Client.Runtime.StatusAsync(new StatusRequest());

        var runtime = Assert.Single(response.Status.Conditions, c => c.Type == "RuntimeReady");
        Assert.True(runtime.Status, $"{runtime.Reason}: {runtime.Message}");
        // The fixture's conf dir is empty and the embedded default leaves pod networking to the cluster (CniNetworkTests).
        var network = Assert.Single(response.Status.Conditions, c => c.Type == "NetworkReady");
        Assert.False(network.Status, network.Message);
        Assert.Equal("NetworkPluginNotReady", network.Reason);
        Assert.Contains("left to the cluster's network add-on", network.Message);
        Assert.Empty(response.Info);
        Assert.Contains(response.RuntimeHandlers, h => h.Name == string.Empty);
    }

    [Fact]
    public async Task VerboseStatusCarriesTheEffectiveConfig()
    {
        var response = await Daemon.Client.Runtime.StatusAsync(new StatusRequest { Verbose = true });

        using var config = JsonDocument.Parse(response.Info["config"]);
        Assert.Equal(Daemon.Socket, config.RootElement.GetProperty("grpc").GetProperty("socket").GetString());
        Assert.Equal(Daemon.Root, config.RootElement.GetProperty("root").GetString());
        Assert.Equal($"127.0.0.1:{Daemon.MetricsPort}", config.RootElement.GetProperty("metrics").GetProperty("address").GetString());

        using var runtime = JsonDocument.Parse(response.Info["runtime"]);
        Assert.Equal(Daemon.Process.Id, runtime.RootElement.GetProperty("pid").GetInt32());
        Assert.NotEqual("None", runtime.RootElement.GetProperty("cgroupMode").GetString());
        Assert.Contains(Path.Combine(Daemon.WorkDirectory, "config.toml"),
            runtime.RootElement.GetProperty("configFiles").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public async Task RuntimeConfigReportsTheCgroupDriver()
    {
        var response = await Daemon.Client.Runtime.RuntimeConfigAsync(new RuntimeConfigRequest());
        Assert.Equal(CgroupDriver.Cgroupfs, response.Linux.CgroupDriver);
    }

    [Fact]
    public async Task UnimplementedRuntimeRpcsSayWhichRpc()
    {
        var e = await Assert.ThrowsAsync<RpcException>(async () =>
            await Daemon.Client.Runtime.CheckpointContainerAsync(new CheckpointContainerRequest { ContainerId = "abc" }));
        Assert.Equal(StatusCode.Unimplemented, e.StatusCode);
        Assert.Equal("CheckpointContainer is not implemented by nacelle", e.Status.Detail);

        e = await Assert.ThrowsAsync<RpcException>(async () =>
            await Daemon.Client.Runtime.ListMetricDescriptorsAsync(new ListMetricDescriptorsRequest()));
        Assert.Equal(StatusCode.Unimplemented, e.StatusCode);
        Assert.Contains("ListMetricDescriptors", e.Status.Detail);
    }

    [Fact]
    public async Task StreamingSetupRpcsNameTheUnknownContainerOrPod()
    {
        // The streaming server runs: the checks before a URL is handed out answer first.
        var e = await Assert.ThrowsAsync<RpcException>(async () =>
            await Daemon.Client.Runtime.AttachAsync(new AttachRequest { ContainerId = "abc", Stdout = true }));
        Assert.Equal(StatusCode.NotFound, e.StatusCode);
        Assert.Contains("abc", e.Status.Detail);

        e = await Assert.ThrowsAsync<RpcException>(async () =>
            await Daemon.Client.Runtime.ExecAsync(new ExecRequest { ContainerId = "abc", Cmd = { "sh" }, Stdout = true }));
        Assert.Equal(StatusCode.NotFound, e.StatusCode);
        Assert.Contains("abc", e.Status.Detail);

        e = await Assert.ThrowsAsync<RpcException>(async () =>
            await Daemon.Client.Runtime.PortForwardAsync(new PortForwardRequest { PodSandboxId = "abc", Port = { 80 } }));
        Assert.Equal(StatusCode.NotFound, e.StatusCode);
        Assert.Contains("abc", e.Status.Detail);
    }

    [Fact]
    public async Task UnimplementedStreamingRpcsSayWhichRpc()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var call = Daemon.Client.Runtime.StreamPodSandboxMetrics(new StreamPodSandboxMetricsRequest(), cancellationToken: timeout.Token);
        var e = await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseStream.MoveNext(timeout.Token));
        Assert.Equal(StatusCode.Unimplemented, e.StatusCode);
        Assert.Equal("StreamPodSandboxMetrics is not implemented by nacelle", e.Status.Detail);
    }

    [Fact]
    public void TheSocketIsOwnerAndGroupOnly()
    {
        Assert.Equal(Nacelle.ContainerCore.Interop.FileKind.Socket, Nacelle.ContainerCore.Interop.FileKinds.Of(Daemon.Socket));
        Assert.Equal(
            UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite,
            File.GetUnixFileMode(Daemon.Socket));
    }

    [Fact]
    public async Task MetricsAreNotServedOnTheCriSocketNorCriOnTheMetricsPort()
    {
        using var http = new HttpClient();
        var response = await http.PostAsync($"http://127.0.0.1:{Daemon.MetricsPort}/runtime.v1.RuntimeService/Version",
            new ByteArrayContent([]));
        Assert.Equal(System.Net.HttpStatusCode.NotFound, response.StatusCode);
    }
}
