using System.Diagnostics;
using System.Text.Json;
using Nacelle.ContainerCore.Interop;
using Nacelle.Tests.EndToEnd.Infrastructure;
using Runtime.V1;

namespace Nacelle.Tests.EndToEnd;

/// <summary>A real Prometheus (Debian's package) scrapes the daemon on loopback; the histogram comes back through its query API.</summary>
public sealed class PrometheusTests
{
    private const string PrometheusBinary = "/usr/bin/prometheus";

    [Fact]
    public async Task PrometheusScrapesThePerRpcHistogram()
    {
        Assert.True(File.Exists(PrometheusBinary), $"{PrometheusBinary} is missing: scripts/install-deps.sh installs Debian's prometheus package");

        await using var daemon = await DaemonProcess.StartAsync();
        for (var i = 0; i < 5; i++)
        {
            await daemon.Client.Runtime.VersionAsync(new VersionRequest());
        }

        var dir = Directory.CreateTempSubdirectory("nacelle-prometheus-").FullName;
        var port = Ports.FreeLoopbackPort();
        var configPath = Path.Combine(dir, "prometheus.yml");
        await File.WriteAllTextAsync(configPath, $"""
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
            scrape_configs:
              - job_name: nacelle
                static_configs:
                  - targets: ["127.0.0.1:{daemon.MetricsPort}"]
            """);

        var info = new ProcessStartInfo(PrometheusBinary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[]
                 {
                     $"--config.file={configPath}", $"--storage.tsdb.path={Path.Combine(dir, "data")}",
                     $"--web.listen-address=127.0.0.1:{port}",
                 })
        {
            info.ArgumentList.Add(arg);
        }

        using var prometheus = Process.Start(info)!;
        var log = new System.Text.StringBuilder();
        prometheus.ErrorDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        prometheus.OutputDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        prometheus.BeginErrorReadLine();
        prometheus.BeginOutputReadLine();
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            const string query = "nacelle_cri_request_duration_seconds_count{rpc=\"Version\",code=\"OK\"}";
            var deadline = Stopwatch.StartNew();
            double? value = null;
            while (deadline.Elapsed < TimeSpan.FromSeconds(90) && value is not >= 5)
            {
                await Task.Delay(500);
                Assert.False(prometheus.HasExited, $"prometheus exited:\n{log}");
                try
                {
                    value = await QueryScalarAsync(http, query);
                }
                catch (HttpRequestException)
                {
                    // Not listening yet.
                }
            }

            Assert.True(value >= 5, $"Prometheus never saw 5 Version calls (last value {value}):\n{log}");

            // The buckets are there too: a quantile can be computed from them.
            var quantile = await QueryScalarAsync(http,
                "histogram_quantile(0.9, sum by (le) (nacelle_cri_request_duration_seconds_bucket{rpc=\"Version\"}))");
            Assert.True(quantile is > 0 and < 10, $"unexpected p90 {quantile}");

            // And the target is reported healthy.
            Assert.Equal(1, await QueryScalarAsync(http, "up{job=\"nacelle\"}"));
        }
        finally
        {
            Signals.Send(prometheus.Id, Signals.SIGTERM);
            if (!prometheus.WaitForExit(TimeSpan.FromSeconds(20)))
            {
                Signals.Send(prometheus.Id, Signals.SIGKILL);
                prometheus.WaitForExit();
            }

            Directory.Delete(dir, recursive: true);
        }
    }

    private static async Task<double?> QueryScalarAsync(HttpClient http, string query)
    {
        var body = await http.GetStringAsync("/api/v1/query?query=" + Uri.EscapeDataString(query));
        using var json = JsonDocument.Parse(body);
        var result = json.RootElement.GetProperty("data").GetProperty("result");
        if (result.GetArrayLength() == 0)
        {
            return null;
        }

        var text = result[0].GetProperty("value")[1].GetString();
        return double.Parse(text!, System.Globalization.CultureInfo.InvariantCulture);
    }
}
