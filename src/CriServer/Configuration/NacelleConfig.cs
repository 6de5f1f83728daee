namespace Nacelle.CriServer.Configuration;

/// <summary>
/// The daemon's effective configuration. Defaults here are the embedded defaults; files, drop-ins and
/// flags are applied over them by <see cref="ConfigLoader"/> through the key table in <see cref="ConfigKeys"/>.
/// </summary>
public sealed class NacelleConfig
{
    public string Root { get; set; } = "/var/lib/nacelle";
    public string State { get; set; } = "/run/nacelle";
    public string LogLevel { get; set; } = "info";
    public string LogFormat { get; set; } = "text";
    public GrpcSection Grpc { get; } = new();
    public MetricsSection Metrics { get; } = new();
    public TracingSection Tracing { get; } = new();
    public CgroupSection Cgroup { get; } = new();

    public sealed class GrpcSection
    {
        public string Socket { get; set; } = "/run/nacelle/nacelle.sock";
        public long MaxRecvMessageSize { get; set; } = 16 * 1024 * 1024;
        public long MaxSendMessageSize { get; set; } = 16 * 1024 * 1024;
        public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(10);
    }

    public sealed class MetricsSection
    {
        public bool Enabled { get; set; } = true;
        public string Address { get; set; } = "127.0.0.1:9654";
    }

    public sealed class TracingSection
    {
        public bool Enabled { get; set; }
        public string Endpoint { get; set; } = string.Empty;
        public string Protocol { get; set; } = string.Empty;
        public double SamplingRatio { get; set; } = 1.0;
        public string ServiceName { get; set; } = "nacelle";
    }

    public sealed class CgroupSection
    {
        public string Driver { get; set; } = "cgroupfs";
    }
}
