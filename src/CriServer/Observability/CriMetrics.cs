using Grpc.Core;
using Prometheus;

namespace Nacelle.CriServer.Observability;

/// <summary>
/// Per-RPC Prometheus metrics: one latency histogram and one error counter, both labelled by rpc and gRPC code.
/// Process metrics (cpu, memory, fds, threads, GC) come from prometheus-net's default collectors.
/// </summary>
public sealed class CriMetrics
{
    // From sub-millisecond status calls to multi-minute image pulls.
    private static readonly double[] Buckets =
        [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

    private readonly CollectorRegistry _registry;
    private readonly Histogram _duration;
    private readonly Counter _errors;
    private readonly Counter _eventsDropped;

    // The OK series of every primed rpc, looked up once (by far the most observed ones); written only by Prime.
    private Dictionary<string, Histogram.Child> _ok = new(StringComparer.Ordinal);

    public CriMetrics(CollectorRegistry registry)
    {
        _registry = registry;
        var factory = Metrics.WithCustomRegistry(registry);
        _duration = factory.CreateHistogram(
            "nacelle_cri_request_duration_seconds",
            "Time to answer a CRI call, by rpc and gRPC status code.",
            new HistogramConfiguration { LabelNames = ["rpc", "code"], Buckets = Buckets });
        _errors = factory.CreateCounter(
            "nacelle_cri_request_errors_total",
            "CRI calls answered with a status other than OK, by rpc and gRPC status code.",
            new CounterConfiguration { LabelNames = ["rpc", "code"] });
        _eventsDropped = factory.CreateCounter(
            "nacelle_container_events_dropped_total",
            "Container events a GetContainerEvents subscriber lost because it did not keep up.");
    }

    /// <summary>Counts container events dropped for a slow GetContainerEvents subscriber.</summary>
    public void EventsDropped(long count) => _eventsDropped.Inc(count);

    /// <summary>The process-wide registry with the default process collectors, minus event counters and meters.</summary>
    public static CollectorRegistry CreateDefaultRegistry()
    {
        Metrics.SuppressDefaultMetrics(new SuppressDefaultMetricOptions
        {
            SuppressProcessMetrics = false,
            SuppressDebugMetrics = true,
            SuppressEventCounters = true,
            SuppressMeters = true,
        });
        return Metrics.DefaultRegistry;
    }

    /// <summary>Creates the OK series of every RPC so each histogram exists from the first scrape.</summary>
    public void Prime(IEnumerable<string> rpcs)
    {
        var ok = new Dictionary<string, Histogram.Child>(_ok, StringComparer.Ordinal);
        foreach (var rpc in rpcs)
        {
            ok[rpc] = _duration.WithLabels(rpc, nameof(StatusCode.OK));
        }

        _ok = ok;
    }

    /// <summary>Observes a call of <paramref name="rpc"/> answered OK.</summary>
    public void ObserveOk(string rpc, TimeSpan elapsed)
    {
        if (_ok.TryGetValue(rpc, out var series))
        {
            series.Observe(elapsed.TotalSeconds);
        }
        else
        {
            Observe(rpc, StatusCode.OK, elapsed);
        }
    }

    public void Observe(string rpc, StatusCode code, TimeSpan elapsed)
    {
        var codeLabel = code.ToString();
        _duration.WithLabels(rpc, codeLabel).Observe(elapsed.TotalSeconds);
        if (code != StatusCode.OK)
        {
            _errors.WithLabels(rpc, codeLabel).Inc();
        }
    }

    public Task WriteAsync(Stream destination, CancellationToken cancellationToken) =>
        _registry.CollectAndExportAsTextAsync(destination, cancellationToken);
}
