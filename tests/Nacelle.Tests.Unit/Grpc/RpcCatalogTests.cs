using Nacelle.CriServer.Grpc;

namespace Nacelle.Tests.Unit.Grpc;

public sealed class RpcCatalogTests
{
    [Fact]
    public void CatalogHoldsBothServices()
    {
        Assert.Contains("Version", RpcCatalog.All);
        Assert.Contains("UpdatePodSandboxResources", RpcCatalog.All);
        Assert.Contains("ImageFsInfo", RpcCatalog.All);
        Assert.Equal(RpcCatalog.All.Count, RpcCatalog.All.Distinct().Count());
    }

    [Fact]
    public void CatalogIsEveryMethodTheSchemaDeclares()
    {
        // The daemon reads the names from the generated method table; the schema's descriptors are the reference.
        var declared = Runtime.V1.RuntimeService.Descriptor.Methods.Select(m => m.Name)
            .Concat(Runtime.V1.ImageService.Descriptor.Methods.Select(m => m.Name));
        Assert.Equal(declared.Order(StringComparer.Ordinal), RpcCatalog.All.Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("Version", true)]
    [InlineData("ListContainers", true)]
    [InlineData("ExecSync", true)]
    [InlineData("ImageFsInfo", true)]
    [InlineData("RunPodSandbox", false)]
    [InlineData("PullImage", false)]
    [InlineData("RemoveContainer", false)]
    public void PolledCallsAreKnown(string rpc, bool polled) => Assert.Equal(polled, RpcCatalog.IsPolled(rpc));

    [Fact]
    public void EveryPolledNameIsARealRpc()
    {
        foreach (var rpc in new[] { "Version", "Status", "ListPodSandbox", "GetContainerEvents", "StreamImages" })
        {
            Assert.Contains(rpc, RpcCatalog.All);
        }

        Assert.Equal("Version", RpcCatalog.ShortName("/runtime.v1.RuntimeService/Version"));
        Assert.Equal("runtime.v1.ImageService/PullImage", RpcCatalog.FullName("/runtime.v1.ImageService/PullImage"));
    }

    [Fact]
    public void NamesOfACallAreMadeOnceForOurRpcsAndStillWorkForOthers()
    {
        var names = RpcCatalog.Names("/runtime.v1.RuntimeService/ListContainers");
        Assert.Equal(("ListContainers", "runtime.v1.RuntimeService/ListContainers", true), (names.Short, names.Full, names.Polled));
        Assert.Same(names, RpcCatalog.Names("/runtime.v1.RuntimeService/ListContainers"));
        var pull = RpcCatalog.Names("/runtime.v1.ImageService/PullImage");
        Assert.Equal(("PullImage", "runtime.v1.ImageService/PullImage", false), (pull.Short, pull.Full, pull.Polled));
        foreach (var rpc in RpcCatalog.All)
        {
            Assert.Contains(rpc, new[] { RpcCatalog.Names($"/runtime.v1.RuntimeService/{rpc}").Short, RpcCatalog.Names($"/runtime.v1.ImageService/{rpc}").Short });
        }

        var unknown = RpcCatalog.Names("/other.v1.Service/Call");
        Assert.Equal(("Call", "other.v1.Service/Call", false), (unknown.Short, unknown.Full, unknown.Polled));
    }
}
