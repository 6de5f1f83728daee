using Nacelle.Common;
using Nacelle.ImageService.References;

namespace Nacelle.Tests.Unit.ImageService.References;

public sealed class ImageReferenceTests
{
    private const string D = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    [Theory]
    [InlineData("busybox", "docker.io", "library/busybox", "latest", null, "docker.io/library/busybox:latest")]
    [InlineData("busybox:1.36", "docker.io", "library/busybox", "1.36", null, "docker.io/library/busybox:1.36")]
    [InlineData("library/busybox", "docker.io", "library/busybox", "latest", null, "docker.io/library/busybox:latest")]
    [InlineData("user/app", "docker.io", "user/app", "latest", null, "docker.io/user/app:latest")]
    [InlineData("docker.io/busybox", "docker.io", "library/busybox", "latest", null, "docker.io/library/busybox:latest")]
    [InlineData("index.docker.io/library/busybox:1", "docker.io", "library/busybox", "1", null, "docker.io/library/busybox:1")]
    [InlineData("registry-1.docker.io/user/app", "docker.io", "user/app", "latest", null, "docker.io/user/app:latest")]
    [InlineData("localhost/app", "localhost", "app", "latest", null, "localhost/app:latest")]
    [InlineData("localhost:5000/app:v1", "localhost:5000", "app", "v1", null, "localhost:5000/app:v1")]
    [InlineData("127.0.0.1:5000/a/b/c:tag_1.2-x", "127.0.0.1:5000", "a/b/c", "tag_1.2-x", null, "127.0.0.1:5000/a/b/c:tag_1.2-x")]
    [InlineData("registry.example.com/team/app", "registry.example.com", "team/app", "latest", null, "registry.example.com/team/app:latest")]
    [InlineData("Registry.Example.com/app", "Registry.Example.com", "app", "latest", null, "Registry.Example.com/app:latest")]
    [InlineData("[::1]:5000/app", "[::1]:5000", "app", "latest", null, "[::1]:5000/app:latest")]
    [InlineData("busybox@" + D, "docker.io", "library/busybox", null, D, "docker.io/library/busybox@" + D)]
    [InlineData("busybox:1.36@" + D, "docker.io", "library/busybox", "1.36", D, "docker.io/library/busybox:1.36@" + D)]
    [InlineData("host:5000/repo@" + D, "host:5000", "repo", null, D, "host:5000/repo@" + D)]
    [InlineData("a.b/c__d/e-f/g.h_i", "a.b", "c__d/e-f/g.h_i", "latest", null, "a.b/c__d/e-f/g.h_i:latest")]
    [InlineData("a---b", "docker.io", "library/a---b", "latest", null, "docker.io/library/a---b:latest")]
    [InlineData("busybox:LATEST", "docker.io", "library/busybox", "LATEST", null, "docker.io/library/busybox:LATEST")]
    public void Valid_references_normalise(string text, string domain, string repository, string? tag, string? digest, string normalised)
    {
        ImageReference r = ImageReference.Parse(text);
        Assert.Equal(domain, r.Domain);
        Assert.Equal(repository, r.Repository);
        Assert.Equal(tag, r.Tag);
        Assert.Equal(digest, r.Digest);
        Assert.Equal(normalised, r.ToString());
        Assert.Equal($"{domain}/{repository}", r.Name);
        Assert.Equal(r, ImageReference.Parse(r.ToString())); // normalising is idempotent
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData(" busybox", "whitespace")]
    [InlineData("busy box", "whitespace")]
    [InlineData("BusyBox", "lowercase")]
    [InlineData("host:5000/Repo", "lowercase")]
    [InlineData("busybox:", "tag")]
    [InlineData("busybox:-bad", "tag")]
    [InlineData("busybox:a/b", "registry host")]
    [InlineData("busybox@sha256:abc", "digest")]
    [InlineData("busybox@md5:0123456789abcdef0123456789abcdef", "digest")]
    [InlineData("busybox@", "digest")]
    [InlineData("@" + D, "no repository")]
    [InlineData(":tag", "no repository")]
    [InlineData("host:5000/", "no repository")]
    [InlineData("a//b", "component")]
    [InlineData("a/b/", "component")]
    [InlineData("-a/b", "component")]
    [InlineData("a_/b", "component")]
    [InlineData("a..b", "component")]
    [InlineData("host:port/app", "registry host")]
    [InlineData("-host.com/app", "registry host")]
    [InlineData("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "image id")]
    public void Invalid_references_are_refused_naming_the_text(string text, string why)
    {
        var ex = Assert.Throws<NacelleException>(() => ImageReference.Parse(text));
        Assert.Equal(ErrorKind.InvalidArgument, ex.Kind);
        Assert.Contains($"\"{text}\"", ex.Message);
        Assert.Contains(why, ex.Message);
    }

    [Fact]
    public void Too_long_names_are_refused()
    {
        string text = "example.com/" + string.Join('/', Enumerable.Repeat("abcdefghij", 25));
        var ex = Assert.Throws<NacelleException>(() => ImageReference.Parse(text));
        Assert.Contains("255", ex.Message);
    }

    [Fact]
    public void WithDigest_forms_the_repo_digest()
    {
        ImageReference r = ImageReference.Parse("busybox:1.36");
        Assert.Equal("docker.io/library/busybox@" + D, r.WithDigest(D));
        Assert.Equal(ErrorKind.InvalidArgument, Assert.Throws<NacelleException>(() => r.WithDigest("sha256:nothex")).Kind);
    }
}
