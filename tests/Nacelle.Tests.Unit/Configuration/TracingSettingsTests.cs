using Nacelle.CriServer.Configuration;
using Nacelle.CriServer.Observability;

namespace Nacelle.Tests.Unit.Configuration;

public sealed class TracingSettingsTests
{
    private static TracingSettings Resolve(string toml, params (string Key, string Value)[] env)
    {
        var config = new NacelleConfig();
        var set = new HashSet<string>();
        ConfigLoader.ApplyToml(config, toml, "test.toml", set);
        return TracingSettings.Resolve(config, set, env.ToDictionary(e => e.Key, e => e.Value));
    }

    [Fact]
    public void OffByDefault()
    {
        var settings = Resolve("");
        Assert.False(settings.Enabled);
        Assert.Equal("grpc", settings.Protocol);
        Assert.Equal(new Uri("http://localhost:4317"), settings.Endpoint);
        Assert.Equal(1.0, settings.SamplingRatio);
        Assert.Equal("nacelle", settings.ServiceName);
    }

    [Fact]
    public void ConfigFileTurnsItOnWithItsEndpointProtocolAndRatio()
    {
        var settings = Resolve("""
            [tracing]
            enabled = true
            endpoint = "http://127.0.0.1:4318"
            protocol = "http/protobuf"
            sampling_ratio = 0.25
            """);
        Assert.True(settings.Enabled);
        Assert.Equal("http/protobuf", settings.Protocol);
        Assert.Equal(new Uri("http://127.0.0.1:4318/v1/traces"), settings.Endpoint); // signal path added when none given
        Assert.Equal(0.25, settings.SamplingRatio);
    }

    [Fact]
    public void AConfiguredPathIsKept()
    {
        var settings = Resolve("[tracing]\nenabled = true\nendpoint = \"http://c:4318/custom/traces\"\nprotocol = \"http/protobuf\"\n");
        Assert.Equal(new Uri("http://c:4318/custom/traces"), settings.Endpoint);
    }

    [Fact]
    public void StandardOtelVariablesTurnItOnWhenTheFileIsSilent()
    {
        var settings = Resolve("",
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/base"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.1"),
            ("OTEL_SERVICE_NAME", "node-7-runtime"));
        Assert.True(settings.Enabled);
        Assert.Equal(new Uri("http://collector:4318/base/v1/traces"), settings.Endpoint);
        Assert.Equal("http/protobuf", settings.Protocol);
        Assert.Equal(0.1, settings.SamplingRatio);
        Assert.Equal("node-7-runtime", settings.ServiceName);
    }

    [Fact]
    public void TheSignalSpecificEndpointIsUsedAsIs()
    {
        var settings = Resolve("",
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/exact"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"));
        Assert.Equal(new Uri("http://collector:4318/exact"), settings.Endpoint);
    }

    [Fact]
    public void FileKeysWinOverTheVariables()
    {
        var settings = Resolve("""
            [tracing]
            enabled = false
            endpoint = "http://from-file:4317"
            sampling_ratio = 0.5
            """,
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://from-env:4317"),
            ("OTEL_TRACES_SAMPLER", "always_off"));
        Assert.False(settings.Enabled);
        Assert.Equal(new Uri("http://from-file:4317"), settings.Endpoint);
        Assert.Equal(0.5, settings.SamplingRatio);
    }

    [Fact]
    public void SdkDisabledWins()
    {
        var settings = Resolve("[tracing]\nenabled = true\n", ("OTEL_SDK_DISABLED", "true"));
        Assert.False(settings.Enabled);
    }

    [Fact]
    public void ABadVariableIsAConfigError()
    {
        var e = Assert.Throws<ConfigException>(() => Resolve("", ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")));
        Assert.Equal("tracing.protocol", e.Key);
        Assert.Contains("carrier-pigeon", e.Reason);
    }
}
