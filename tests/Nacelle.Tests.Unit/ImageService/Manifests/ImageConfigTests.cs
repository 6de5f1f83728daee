using System.Text;
using Nacelle.Common;
using Nacelle.ImageService.Manifests;

namespace Nacelle.Tests.Unit.ImageService.Manifests;

public sealed class ImageConfigTests
{
    private const string A = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    private const string B = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    [Fact]
    public void Parses_every_field_the_runtime_needs()
    {
        string json = $$$"""
            {
              "created": "2024-05-06T07:08:09.123456789Z",
              "architecture": "arm64", "variant": "v8", "os": "linux",
              "config": {
                "User": "1000:1000",
                "Env": ["PATH=/bin", "A=b=c"],
                "Entrypoint": ["/entry"],
                "Cmd": ["-x", "y"],
                "WorkingDir": "/work",
                "StopSignal": "SIGQUIT",
                "Labels": {"a": "1", "b": ""},
                "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
                "Volumes": {"/data": {}},
                "Unknown": 42
              },
              "rootfs": {"type": "layers", "diff_ids": ["{{{A}}}", "{{{B}}}"]},
              "history": [{"created_by": "x"}]
            }
            """;
        ImageConfig c = ImageConfig.Parse(Encoding.UTF8.GetBytes(json));
        Assert.Equal("linux", c.Os);
        Assert.Equal("arm64", c.Architecture);
        Assert.Equal("v8", c.Variant);
        Assert.Equal(new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.Zero), c.Created!.Value.AddTicks(-c.Created.Value.Ticks % TimeSpan.TicksPerSecond));
        Assert.Equal([A, B], c.DiffIds);
        Assert.Equal("1000:1000", c.User);
        Assert.Equal(["PATH=/bin", "A=b=c"], c.Env);
        Assert.Equal(["/entry"], c.Entrypoint);
        Assert.Equal(["-x", "y"], c.Cmd);
        Assert.Equal("/work", c.WorkingDir);
        Assert.Equal("SIGQUIT", c.StopSignal);
        Assert.Equal("1", c.Labels["a"]);
        Assert.Equal("", c.Labels["b"]);
        Assert.Equal(["53/udp", "8080/tcp"], c.ExposedPorts);
        Assert.Equal(["/data"], c.Volumes);
    }

    [Fact]
    public void Minimal_config_gives_empty_collections()
    {
        ImageConfig c = ImageConfig.Parse("""{"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":[]}}"""u8.ToArray());
        Assert.Empty(c.DiffIds);
        Assert.Null(c.User);
        Assert.Empty(c.Env);
        Assert.Empty(c.Entrypoint);
        Assert.Empty(c.Cmd);
        Assert.Empty(c.Labels);
        Assert.Empty(c.ExposedPorts);
        Assert.Null(c.Created);
        Assert.Null(c.Variant);
    }

    [Fact]
    public void Null_config_fields_are_tolerated()
    {
        ImageConfig c = ImageConfig.Parse("""{"os":"linux","architecture":"amd64","config":{"Cmd":null,"Env":null,"Labels":null,"User":""},"rootfs":{"diff_ids":[]},"created":"garbage"}"""u8.ToArray());
        Assert.Empty(c.Cmd);
        Assert.Null(c.User);
        Assert.Null(c.Created);
    }

    [Theory]
    [InlineData("not json", "JSON")]
    [InlineData("null", "null")]
    [InlineData("""{"os":"linux"}""", "diff_ids")]
    [InlineData("""{"rootfs":{"diff_ids":["md5:x"]}}""", "md5:x")]
    public void Invalid_configs_are_InvalidArgument(string json, string why)
    {
        var ex = Assert.Throws<NacelleException>(() => ImageConfig.Parse(Encoding.UTF8.GetBytes(json)));
        Assert.Equal(ErrorKind.InvalidArgument, ex.Kind);
        Assert.Contains(why, ex.Message);
    }
}
