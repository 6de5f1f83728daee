using Nacelle.Common;
using Nacelle.CriServer.Services.Pods;
using Nacelle.Sandbox.Store;
using Runtime.V1;

namespace Nacelle.Tests.Unit.Pods;

public sealed class PodSandboxMappingTests
{
    private static RunPodSandboxRequest Request(LinuxPodSandboxConfig? linux) => new()
    {
        Config = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = "p", Namespace = "n", Uid = "u" },
            Linux = linux,
        },
    };

    /// <summary>Regression: a pod config without namespace options (crictl's minimal pod.json) meant a per-container
    /// pid namespace for the pod but POD (proto3's zero) for its containers, so every CreateContainer in it failed with
    /// "the pod has no shared pid namespace". Absent options are all-zero options: POD for network, pid and ipc.</summary>
    [Fact]
    public void Absent_namespace_options_mean_pod_namespaces_as_proto3_zero_values_do()
    {
        foreach (var linux in new[] { null, new LinuxPodSandboxConfig(), new LinuxPodSandboxConfig { SecurityContext = new LinuxSandboxSecurityContext() } })
        {
            var options = PodSandboxMapping.ToRequest(Request(linux)).NamespaceOptions;
            Assert.Equal(PodNamespaceMode.Pod, options.Network);
            Assert.Equal(PodNamespaceMode.Pod, options.Pid);
            Assert.Equal(PodNamespaceMode.Pod, options.Ipc);
        }
    }

    [Fact]
    public void Explicit_namespace_options_are_kept()
    {
        var options = PodSandboxMapping.ToRequest(Request(new LinuxPodSandboxConfig
        {
            SecurityContext = new LinuxSandboxSecurityContext
            {
                NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node, Pid = NamespaceMode.Container, Ipc = NamespaceMode.Node },
            },
        })).NamespaceOptions;
        Assert.Equal(new PodNamespaceOptions(PodNamespaceMode.Node, PodNamespaceMode.Container, PodNamespaceMode.Node, ""), options);
    }

    /// <summary>Regression (found by the CRI fuzzer): a negative host_port was dropped as if it were 0, and an unknown
    /// protocol became tcp; both are now carried over, so that validation refuses them naming the mapping.</summary>
    [Theory]
    [InlineData(-1, Protocol.Tcp, "host_port -1")]
    [InlineData(int.MinValue, Protocol.Udp, "host_port -2147483648")]
    [InlineData(8080, (Protocol)99, "unknown protocol '99'")]
    public void Negative_host_ports_and_unknown_protocols_are_refused_not_dropped(int hostPort, Protocol protocol, string expected)
    {
        var request = Request(null);
        request.Config.PortMappings.Add(new PortMapping { HostPort = hostPort, ContainerPort = 80, Protocol = protocol });

        var e = Assert.Throws<NacelleException>(() => PodSandboxMapping.ToRequest(request).Validate());
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_host_port_of_zero_only_documents_the_container_port()
    {
        var request = Request(null);
        request.Config.PortMappings.Add(new PortMapping { HostPort = 0, ContainerPort = 80, Protocol = (Protocol)99 });
        Assert.Empty(PodSandboxMapping.ToRequest(request).PortMappings);
    }

    /// <summary>Regression (found by the CRI fuzzer): a pod with namespace mode -1 was run (its containers then all
    /// failed with "unknown mode -1"); it is refused up front like a container's.</summary>
    [Fact]
    public void Undefined_namespace_modes_are_refused()
    {
        var e = Assert.Throws<NacelleException>(() => PodSandboxMapping.ToRequest(Request(new LinuxPodSandboxConfig
        {
            SecurityContext = new LinuxSandboxSecurityContext { NamespaceOptions = new NamespaceOption { Pid = (NamespaceMode)(-1) } },
        })));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("namespace_options.pid: unknown mode -1", e.Message, StringComparison.Ordinal);
    }

    /// <summary>Regression (found by the CRI fuzzer): a pod with pid mode TARGET was run, and every container that did
    /// not name its own namespace options inherited TARGET and failed. TARGET is refused for a pod, in every field.</summary>
    [Theory]
    [InlineData("network")]
    [InlineData("pid")]
    [InlineData("ipc")]
    public void Target_namespace_modes_are_refused_for_a_pod(string field)
    {
        var options = new NamespaceOption { TargetId = "abc" };
        _ = field switch
        {
            "network" => options.Network = NamespaceMode.Target,
            "pid" => options.Pid = NamespaceMode.Target,
            _ => options.Ipc = NamespaceMode.Target,
        };
        var e = Assert.Throws<NacelleException>(() => PodSandboxMapping.ToRequest(Request(new LinuxPodSandboxConfig
        {
            SecurityContext = new LinuxSandboxSecurityContext { NamespaceOptions = options },
        })));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains($"namespace_options.{field}: TARGET", e.Message, StringComparison.Ordinal);
    }
}
