using Nacelle.Common;
using Nacelle.CriServer.Grpc;
using Runtime.V1;

namespace Nacelle.Tests.Unit.Grpc;

public sealed class RequestLimitsTests
{
    private static readonly string Megabyte = new('x', 1 << 20);

    private static PodSandboxConfig Pod() => new() { Metadata = new PodSandboxMetadata { Name = "web", Namespace = "default", Uid = "u1" } };

    private static void Refused(object request, string field)
    {
        var e = Assert.Throws<NacelleException>(() => RequestLimits.Check(request));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.StartsWith(field, e.Message, StringComparison.Ordinal);
        Assert.True(e.Message.Length < 300, "the refusal does not echo the oversized value");
    }

    [Fact]
    public void WhatKubeletSendsPasses()
    {
        var pod = Pod();
        for (var i = 0; i < 100; i++)
        {
            pod.Annotations[$"example.com/annotation-{i}"] = new string('v', 1000);
            pod.Labels[$"label-{i}"] = "value";
        }

        RequestLimits.Check(new RunPodSandboxRequest { Config = pod });
        RequestLimits.Check(new ContainerStatusRequest { ContainerId = new string('a', 64) });
        RequestLimits.Check(new ContainerStatusRequest { ContainerId = "abc" });
        RequestLimits.Check(new ListContainersRequest());
        RequestLimits.Check(new VersionRequest());
        RequestLimits.Check(null);
    }

    [Fact]
    public void TenThousandAnnotationsAreRefused()
    {
        var pod = Pod();
        for (var i = 0; i < 10_000; i++)
        {
            pod.Annotations[$"example.com/annotation-{i}"] = "value-" + i;
        }

        Refused(new RunPodSandboxRequest { Config = pod }, "config.annotations");
        Refused(new CreateContainerRequest { PodSandboxId = "p", Config = new ContainerConfig(), SandboxConfig = pod }, "sandbox_config.annotations");
    }

    [Fact]
    public void MegabyteStringsAreRefusedNamingTheField()
    {
        var named = Pod();
        named.Metadata.Name = Megabyte;
        Refused(new RunPodSandboxRequest { Config = named }, "config.metadata.name");

        var labelled = new ContainerConfig { Metadata = new ContainerMetadata { Name = "app" } };
        labelled.Labels["big"] = Megabyte;
        Refused(new CreateContainerRequest { PodSandboxId = "p", Config = labelled, SandboxConfig = Pod() }, "config.labels");

        Refused(new ContainerStatusRequest { ContainerId = Megabyte }, "container_id");
        Refused(new StopPodSandboxRequest { PodSandboxId = new string('a', 65) }, "pod_sandbox_id");
        Refused(new PullImageRequest { Image = new ImageSpec { Image = Megabyte } }, "image.image");

        var selector = new ContainerFilter();
        for (var i = 0; i < 20_000; i++)
        {
            selector.LabelSelector[$"label-{i}"] = "value";
        }

        Refused(new ListContainersRequest { Filter = selector }, "filter.label_selector");
    }

    [Fact]
    public void LoggedIdsAreCut()
    {
        var ids = RequestIds.Of(new ContainerStatusRequest { ContainerId = Megabyte });
        Assert.True(ids.ContainerId!.Length < RequestIds.MaxLogged + 40);
        Assert.EndsWith($"({Megabyte.Length} characters)", ids.ContainerId, StringComparison.Ordinal);
        Assert.Equal("abc", RequestIds.Of(new ContainerStatusRequest { ContainerId = "abc" }).ContainerId);
    }
}
