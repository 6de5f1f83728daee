using Microsoft.Extensions.Logging.Abstractions;
using Nacelle.Common;
using Nacelle.ImageService.Manifests;
using Nacelle.ImageService.Registry;

namespace Nacelle.Tests.Unit.ImageService.Registry;

public sealed class RegistryClientRulesTests
{
    [Theory]
    [InlineData("docker.io", "registry-1.docker.io")]
    [InlineData("quay.io", "quay.io")]
    [InlineData("127.0.0.1:5000", "127.0.0.1:5000")]
    public void Docker_hub_is_served_by_registry_1(string domain, string host) => Assert.Equal(host, RegistryClient.OriginHost(domain));

    [Theory]
    [InlineData("localhost", true)]
    [InlineData("localhost:5000", true)]
    [InlineData("127.0.0.1:5000", true)]
    [InlineData("127.1.2.3", true)]
    [InlineData("[::1]:5000", true)]
    [InlineData("10.0.0.1:5000", false)]
    [InlineData("registry.example.com", false)]
    [InlineData("localhost.example.com", false)]
    [InlineData("[::2]:5000", false)]
    public void Loopback_hosts(string host, bool loopback) => Assert.Equal(loopback, RegistryClient.IsLoopbackHost(host));

    [Fact]
    public void Options_are_validated()
    {
        Assert.Equal(ErrorKind.InvalidArgument, Assert.Throws<NacelleException>(() =>
            new RegistryClient(new RegistryOptions { MaxAttempts = 0 }, Platform.Current, NullLogger.Instance)).Kind);
        Assert.Equal(ErrorKind.InvalidArgument, Assert.Throws<NacelleException>(() =>
            new RegistryClient(new RegistryOptions { NoProgressTimeout = TimeSpan.Zero }, Platform.Current, NullLogger.Instance)).Kind);
        using var ok = new RegistryClient(new RegistryOptions(), Platform.Current, NullLogger.Instance);
    }

    [Fact]
    public void Defaults_match_the_contract()
    {
        var options = new RegistryOptions();
        Assert.Equal(TimeSpan.FromMinutes(1), options.NoProgressTimeout);
        Assert.Equal(4, options.MaxAttempts);
        Assert.Equal(TimeSpan.FromMilliseconds(200), options.InitialBackoff);
        Assert.Empty(options.Hosts);
    }
}
