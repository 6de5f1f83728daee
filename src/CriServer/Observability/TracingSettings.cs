using System.Globalization;
using Nacelle.CriServer.Configuration;

namespace Nacelle.CriServer.Observability;

/// <summary>
/// Effective OTLP tracing settings. Rule: keys set in a config file (or flag) win over the standard
/// OTEL_* environment variables, which win over the built-in defaults. Pure, so it is unit-tested.
/// </summary>
public sealed record TracingSettings(bool Enabled, Uri Endpoint, string Protocol, double SamplingRatio, string ServiceName)
{
    public const string Grpc = "grpc";
    public const string HttpProtobuf = "http/protobuf";

    public static TracingSettings Resolve(NacelleConfig config, IReadOnlySet<string> explicitKeys, IReadOnlyDictionary<string, string> environment)
    {
        string? Env(string name) => environment.TryGetValue(name, out var v) && !string.IsNullOrWhiteSpace(v) ? v.Trim() : null;

        var tracing = config.Tracing;

        var protocol = tracing.Protocol.Length > 0
            ? tracing.Protocol
            : Env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") ?? Env("OTEL_EXPORTER_OTLP_PROTOCOL") ?? Grpc;
        if (protocol is not (Grpc or HttpProtobuf))
        {
            throw new ConfigException("environment", "tracing.protocol", $"OTEL protocol '{protocol}' is not one of grpc, http/protobuf");
        }

        // OTLP rules: the generic endpoint is a base URL (signal path appended for HTTP); the per-signal one is used as is.
        Uri endpoint;
        if (tracing.Endpoint.Length > 0)
        {
            endpoint = WithSignalPath(new Uri(tracing.Endpoint), protocol, onlyWhenNoPath: true);
        }
        else if (Env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") is { } signalEndpoint)
        {
            endpoint = ParseEnvUri("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", signalEndpoint);
        }
        else if (Env("OTEL_EXPORTER_OTLP_ENDPOINT") is { } baseEndpoint)
        {
            endpoint = WithSignalPath(ParseEnvUri("OTEL_EXPORTER_OTLP_ENDPOINT", baseEndpoint), protocol, onlyWhenNoPath: false);
        }
        else
        {
            endpoint = protocol == Grpc ? new Uri("http://localhost:4317") : new Uri("http://localhost:4318/v1/traces");
        }

        var ratio = tracing.SamplingRatio;
        if (!explicitKeys.Contains("tracing.sampling_ratio") && Env("OTEL_TRACES_SAMPLER") is { } sampler)
        {
            ratio = sampler switch
            {
                "always_on" or "parentbased_always_on" => 1.0,
                "always_off" or "parentbased_always_off" => 0.0,
                "traceidratio" or "parentbased_traceidratio" =>
                    double.TryParse(Env("OTEL_TRACES_SAMPLER_ARG"), NumberStyles.Float, CultureInfo.InvariantCulture, out var arg) && arg is >= 0 and <= 1
                        ? arg : 1.0,
                _ => ratio,
            };
        }

        bool enabled;
        if (string.Equals(Env("OTEL_SDK_DISABLED"), "true", StringComparison.OrdinalIgnoreCase))
        {
            enabled = false;
        }
        else if (explicitKeys.Contains("tracing.enabled"))
        {
            enabled = tracing.Enabled;
        }
        else
        {
            enabled = Env("OTEL_EXPORTER_OTLP_ENDPOINT") is not null || Env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") is not null;
        }

        var serviceName = explicitKeys.Contains("tracing.service_name") ? tracing.ServiceName : Env("OTEL_SERVICE_NAME") ?? tracing.ServiceName;
        return new TracingSettings(enabled, endpoint, protocol, ratio, serviceName);
    }

    public static IReadOnlyDictionary<string, string> ProcessEnvironment()
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (System.Collections.DictionaryEntry entry in Environment.GetEnvironmentVariables())
        {
            if (entry.Key is string key && key.StartsWith("OTEL_", StringComparison.Ordinal) && entry.Value is string value)
            {
                result[key] = value;
            }
        }

        return result;
    }

    // For OTLP over HTTP the traces path is /v1/traces under the base URL; gRPC endpoints have no path.
    private static Uri WithSignalPath(Uri baseUri, string protocol, bool onlyWhenNoPath)
    {
        var hasPath = baseUri.AbsolutePath.Length > 1;
        if (protocol != HttpProtobuf || (onlyWhenNoPath && hasPath))
        {
            return baseUri;
        }

        return new Uri(baseUri.GetLeftPart(UriPartial.Path).TrimEnd('/') + "/v1/traces");
    }

    private static Uri ParseEnvUri(string name, string value) =>
        Uri.TryCreate(value, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
            ? uri
            : throw new ConfigException("environment", "tracing.endpoint", $"{name}='{value}' is not an absolute http:// or https:// URL");
}
