using System.Diagnostics;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Nacelle.CriServer.Observability;

/// <summary>The daemon's ActivitySource and the OTLP exporter pipeline behind it.</summary>
public static class Tracing
{
    /// <summary>One span per CRI call comes from here; domain code adds child spans (pull, CNI, spawn) under it.</summary>
    public static readonly ActivitySource Source = new("Nacelle.Cri");

    /// <summary>The image service's ActivitySource name (pull, download layer, unpack layer spans).</summary>
    private const string ImageSpansSource = "Nacelle.ImageService";

    /// <summary>Builds the exporter pipeline, or returns null when tracing is off. Dispose flushes it.</summary>
    public static TracerProvider? Start(TracingSettings settings, string version)
    {
        if (!settings.Enabled)
        {
            return null;
        }

        return Sdk.CreateTracerProviderBuilder()
            .AddSource(Source.Name)
            .AddSource(ImageSpansSource) // child spans of PullImage: download and unpack per layer
            .SetResourceBuilder(ResourceBuilder.CreateEmpty().AddService(settings.ServiceName, serviceVersion: version))
            .SetSampler(new ParentBasedSampler(new TraceIdRatioBasedSampler(settings.SamplingRatio)))
            .AddOtlpExporter(options =>
            {
                options.Endpoint = settings.Endpoint;
                options.Protocol = settings.Protocol == TracingSettings.HttpProtobuf
                    ? OtlpExportProtocol.HttpProtobuf
                    : OtlpExportProtocol.Grpc;
                options.ExportProcessorType = ExportProcessorType.Batch;
                options.BatchExportProcessorOptions.ScheduledDelayMilliseconds = 1000;
            })
            .Build();
    }
}
