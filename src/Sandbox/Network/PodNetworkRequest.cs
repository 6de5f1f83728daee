using Nacelle.Common;

namespace Nacelle.Sandbox.Network;

/// <summary>A pod port published on the host (CNI capability <c>portMappings</c>).</summary>
/// <param name="Protocol">tcp, udp or sctp (any case).</param>
/// <param name="HostIp">Host address to bind; null or empty for all.</param>
public sealed record CniPortMapping(int HostPort, int ContainerPort, string Protocol = "tcp", string? HostIp = null)
{
    /// <summary>Published on the host (a host port of 0 only documents the container port: nothing to map, as containerd).</summary>
    public bool Published => HostPort > 0;

    /// <summary>The protocol as the portmap plugin spells it (lower case, tcp when empty).</summary>
    public string NormalizedProtocol => string.IsNullOrEmpty(Protocol) ? "tcp" : Protocol.ToLowerInvariant();

    /// <summary>Refuses a mapping no plugin could install, naming it: ports outside 0-65535 (1-65535 for the container
    /// port of a published mapping), an unknown protocol, a host IP that is not an address.</summary>
    public void Validate()
    {
        if (HostPort is < 0 or > 65535)
        {
            throw NacelleException.InvalidArgument($"port mapping {HostPort}->{ContainerPort}: host_port {HostPort} must be within 0-65535");
        }

        if (Published && ContainerPort is <= 0 or > 65535)
        {
            throw NacelleException.InvalidArgument($"port mapping {HostPort}->{ContainerPort}: container_port {ContainerPort} must be within 1-65535");
        }

        if (NormalizedProtocol is not ("tcp" or "udp" or "sctp"))
        {
            throw NacelleException.InvalidArgument($"port mapping {HostPort}->{ContainerPort}: unknown protocol '{Protocol}'");
        }

        if (!string.IsNullOrEmpty(HostIp) && !System.Net.IPAddress.TryParse(HostIp, out _))
        {
            throw NacelleException.InvalidArgument($"port mapping {HostPort}->{ContainerPort}: host_ip '{HostIp}' is not an IP address");
        }
    }
}

/// <summary>Traffic shaping of the pod (CNI capability <c>bandwidth</c>), in bits per second and bits.</summary>
public sealed record CniBandwidth(ulong? IngressRate, ulong? IngressBurst, ulong? EgressRate, ulong? EgressBurst)
{
    public const string IngressAnnotation = "kubernetes.io/ingress-bandwidth";
    public const string EgressAnnotation = "kubernetes.io/egress-bandwidth";

    /// <summary>Burst used with a rate from an annotation (the annotations carry no burst; as containerd does).</summary>
    public const ulong DefaultBurst = int.MaxValue;

    /// <summary>Kubernetes' bounds for the bandwidth annotations: 1 kbit/s to 1 Pbit/s.</summary>
    public const ulong MinRate = 1000;
    public const ulong MaxRate = 1_000_000_000_000_000;

    /// <summary>
    /// The bandwidth of <c>kubernetes.io/ingress-bandwidth</c> / <c>kubernetes.io/egress-bandwidth</c> (quantities such as
    /// "10M"), or null when neither is set. Throws InvalidArgument for an unparsable or out-of-range value.
    /// </summary>
    public static CniBandwidth? FromAnnotations(IReadOnlyDictionary<string, string>? annotations)
    {
        if (annotations is null)
        {
            return null;
        }

        var ingress = Rate(annotations, IngressAnnotation);
        var egress = Rate(annotations, EgressAnnotation);
        if (ingress is null && egress is null)
        {
            return null;
        }

        return new CniBandwidth(ingress, ingress is null ? null : DefaultBurst, egress, egress is null ? null : DefaultBurst);
    }

    private static ulong? Rate(IReadOnlyDictionary<string, string> annotations, string key)
    {
        if (!annotations.TryGetValue(key, out var text))
        {
            return null;
        }

        if (!Quantity.TryParse(text, out var value))
        {
            throw NacelleException.InvalidArgument($"annotation {key}: '{text}' is not a quantity (e.g. 10M, 1G, 500k)");
        }

        if (value < MinRate || value > MaxRate)
        {
            throw NacelleException.InvalidArgument($"annotation {key}: {text} is outside 1k..1P bits per second");
        }

        return (ulong)value;
    }
}

/// <summary>DNS settings of the pod (CNI capability <c>dns</c>).</summary>
public sealed record CniDns(IReadOnlyList<string> Servers, IReadOnlyList<string> Searches, IReadOnlyList<string> Options);

/// <summary>What the caller knows of a pod when it sets up, checks or tears down its network.</summary>
public sealed record PodNetworkRequest
{
    /// <summary>The sandbox id (CNI_CONTAINERID and K8S_POD_INFRA_CONTAINER_ID).</summary>
    public required string PodId { get; init; }

    /// <summary>Path of the pod's network namespace (CNI_NETNS), e.g. /run/nacelle/ns/&lt;pod&gt;/net.</summary>
    public required string NetnsPath { get; init; }

    public string PodName { get; init; } = "";

    public string PodNamespace { get; init; } = "";

    public string PodUid { get; init; } = "";

    public IReadOnlyList<CniPortMapping> PortMappings { get; init; } = [];

    /// <summary>Explicit bandwidth; when null it is taken from the pod annotations.</summary>
    public CniBandwidth? Bandwidth { get; init; }

    public CniDns? Dns { get; init; }

    public IReadOnlyDictionary<string, string> Annotations { get; init; } = new Dictionary<string, string>();
}
