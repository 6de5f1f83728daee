using System.Net;
using System.Text;
using System.Text.Json;
using Grpc.Core;
using Nacelle.Tests.EndToEnd.Infrastructure;
using Runtime.V1;

namespace Nacelle.Tests.EndToEnd;

/// <summary>Metrics, traces and logs as an operator sees them.</summary>
public sealed class ObservabilityTests
{
    [Fact]
    public async Task MetricsCountEachRpcByStatusCodeAndIncludeProcessMetrics()
    {
        await using var daemon = await DaemonProcess.StartAsync();
        var before = await daemon.ScrapeMetricsAsync();
        var versionsBefore = Sample(before, "nacelle_cri_request_duration_seconds_count{rpc=\"Version\",code=\"OK\"}");

        for (var i = 0; i < 3; i++)
        {
            await daemon.Client.Runtime.VersionAsync(new VersionRequest());
        }

        await daemon.Client.Runtime.StatusAsync(new StatusRequest());
        await Assert.ThrowsAsync<RpcException>(async () => await daemon.Client.Runtime.CheckpointContainerAsync(new CheckpointContainerRequest { ContainerId = "c" }));
        await Assert.ThrowsAsync<RpcException>(async () => await daemon.Client.Runtime.ContainerStatsAsync(new ContainerStatsRequest { ContainerId = "c" }));
        await daemon.Client.Images.ListImagesAsync(new ListImagesRequest());

        var text = await daemon.ScrapeMetricsAsync();
        Assert.Equal(versionsBefore + 3, Sample(text, "nacelle_cri_request_duration_seconds_count{rpc=\"Version\",code=\"OK\"}"));
        Assert.Equal(1, Sample(text, "nacelle_cri_request_duration_seconds_count{rpc=\"Status\",code=\"OK\"}"));
        Assert.Equal(1, Sample(text, "nacelle_cri_request_errors_total{rpc=\"CheckpointContainer\",code=\"Unimplemented\"}"));
        Assert.Equal(1, Sample(text, "nacelle_cri_request_errors_total{rpc=\"ContainerStats\",code=\"NotFound\"}"));
        Assert.Equal(1, Sample(text, "nacelle_cri_request_duration_seconds_count{rpc=\"ListImages\",code=\"OK\"}"));
        Assert.DoesNotContain("nacelle_cri_request_errors_total{rpc=\"Version\"", text);
        Assert.Contains("# TYPE nacelle_cri_request_duration_seconds histogram", text);
        Assert.Contains("nacelle_cri_request_duration_seconds_bucket{rpc=\"Version\",code=\"OK\",le=\"0.005\"}", text);
        // Every rpc has its histogram from the first scrape.
        Assert.Contains("nacelle_cri_request_duration_seconds_count{rpc=\"PullImage\",code=\"OK\"} 0", before);
        Assert.Contains("nacelle_cri_request_duration_seconds_count{rpc=\"UpdatePodSandboxResources\",code=\"OK\"} 0", before);
        // Process metrics.
        Assert.True(Sample(text, "process_cpu_seconds_total") > 0);
        Assert.True(Sample(text, "process_working_set_bytes") > 0);
        Assert.True(Sample(text, "process_open_handles") > 0);
    }

    [Fact]
    public async Task MetricsListenBeforeTheSocketFirstAnswers()
    {
        // Regression: the socket was bound first and could answer while /metrics was not listening yet.
        for (var i = 0; i < 3; i++)
        {
            await using var daemon = await DaemonProcess.StartAsync(); // returns right after the first Version answer
            Assert.True(Ports.IsListening(daemon.MetricsPort), $"run {i}: /metrics not listening when the socket answered");
        }
    }

    [Fact]
    public async Task MetricsCanBeTurnedOff()
    {
        await using var daemon = await DaemonProcess.StartAsync(metricsEnabled: false);
        await daemon.Client.Runtime.VersionAsync(new VersionRequest());
        Assert.False(Ports.IsListening(daemon.MetricsPort));
        Assert.DoesNotContain("serving Prometheus metrics", daemon.Output);
    }

    [Fact]
    public async Task MutatingCallsLogAtInfoAndPolledCallsAtDebug()
    {
        await using (var info = await DaemonProcess.StartAsync())
        {
            await info.Client.Runtime.VersionAsync(new VersionRequest());
            await Assert.ThrowsAsync<RpcException>(async () =>
                await info.Client.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = "c0ffee" }));
            Assert.Equal(0, await info.StopAsync());

            Assert.Matches(@"info: .*StartContainer NotFound in [\d.]+ ms: container c0ffee not found pod= container=c0ffee", info.Output);
            Assert.DoesNotContain("Version OK", info.Output);
        }

        await using var debug = await DaemonProcess.StartAsync(extraArgs: ["--log-level", "debug"]);
        await debug.Client.Runtime.VersionAsync(new VersionRequest());
        Assert.Equal(0, await debug.StopAsync());
        Assert.Matches(@"dbug: .*Version OK in [\d.]+ ms", debug.Output);
    }

    [Fact]
    public async Task JsonLogsCarryIdsAsFields()
    {
        await using var daemon = await DaemonProcess.StartAsync("log_format = \"json\"\n");
        await Assert.ThrowsAsync<RpcException>(async () =>
            await daemon.Client.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = "pod-1234" }));
        Assert.Equal(0, await daemon.StopAsync());

        var line = daemon.Output.Split('\n').Single(l => l.Contains("pod-1234", StringComparison.Ordinal));
        using var json = JsonDocument.Parse(line);
        Assert.Equal(2001, json.RootElement.GetProperty("EventId").GetInt32());
        Assert.Equal("Information", json.RootElement.GetProperty("LogLevel").GetString());
        var state = json.RootElement.GetProperty("State");
        Assert.Equal("StartContainer", state.GetProperty("Rpc").GetString());
        Assert.Equal("NotFound", state.GetProperty("Code").GetString());
        Assert.Equal("pod-1234", state.GetProperty("ContainerId").GetString());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task EachCallIsOneSpanExportedOverOtlp(bool fromEnvironment)
    {
        using var collector = new FakeOtlpCollector();
        var config = fromEnvironment ? "" : $"[tracing]\nenabled = true\nprotocol = \"http/protobuf\"\nendpoint = \"{collector.BaseUrl}\"\n";
        var environment = fromEnvironment
            ? new Dictionary<string, string>
            {
                ["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.BaseUrl,
                ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            }
            : null;
        await using var daemon = await DaemonProcess.StartAsync(config, environment);

        // kubelet-style W3C trace context: the span must join this trace.
        var traceId = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray());
        var headers = new Metadata { { "traceparent", $"00-{traceId}-00f067aa0ba902b7-01" } };
        await daemon.Client.Runtime.RuntimeConfigAsync(new RuntimeConfigRequest(), headers);

        var body = await collector.WaitForAsync(
            b => Contains(b, Encoding.UTF8.GetBytes("runtime.v1.RuntimeService/RuntimeConfig")), TimeSpan.FromSeconds(30));
        Assert.True(Contains(body, Convert.FromHexString(traceId)), "the span is not in the caller's trace");
        Assert.True(Contains(body, Encoding.UTF8.GetBytes("nacelle")), "service.name missing");
        Assert.Equal("/v1/traces", collector.LastPath);
        Assert.Contains("tracing on: OTLP http/protobuf", daemon.Output);
    }

    private static double Sample(string exposition, string series)
    {
        foreach (var line in exposition.Split('\n'))
        {
            if (line.StartsWith(series + " ", StringComparison.Ordinal))
            {
                return double.Parse(line[(series.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return double.NaN;
    }

    private static bool Contains(byte[] haystack, byte[] needle) => haystack.AsSpan().IndexOf(needle) >= 0;
}

/// <summary>An OTLP/HTTP receiver on loopback that keeps the raw protobuf bodies it is sent.</summary>
internal sealed class FakeOtlpCollector : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly List<byte[]> _bodies = [];
    private readonly SemaphoreSlim _arrived = new(0);

    public FakeOtlpCollector()
    {
        var port = Ports.FreeLoopbackPort();
        BaseUrl = $"http://127.0.0.1:{port}";
        _listener.Prefixes.Add(BaseUrl + "/");
        _listener.Start();
        _ = Task.Run(ServeAsync);
    }

    public string BaseUrl { get; }

    public string? LastPath { get; private set; }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
            {
                return;
            }

            using var body = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(body);
            LastPath = context.Request.Url?.AbsolutePath;
            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/x-protobuf";
            context.Response.Close();
            lock (_bodies)
            {
                _bodies.Add(body.ToArray());
            }

            _arrived.Release();
        }
    }

    public async Task<byte[]> WaitForAsync(Func<byte[], bool> match, TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        while (true)
        {
            lock (_bodies)
            {
                var found = _bodies.FirstOrDefault(match);
                if (found is not null)
                {
                    return found;
                }
            }

            await _arrived.WaitAsync(cancel.Token);
        }
    }

    /// <summary>Close alone: after a Stop, the managed HttpListener's Close binds the port again to unregister it, and
    /// fails with "Address already in use" when another socket took the freed port meanwhile (CI on a busy machine).</summary>
    public void Dispose() => _listener.Close();
}
