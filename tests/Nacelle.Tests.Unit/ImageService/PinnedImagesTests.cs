using Nacelle.ImageService;
using Nacelle.ImageService.Store;

namespace Nacelle.Tests.Unit.ImageService;

public sealed class PinnedImagesTests
{
    private const string Digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    private static ImageRecord Image(string[] tags, string[] digests) =>
        new("sha256:" + new string('a', 64), Digest, 1, "", false, DateTimeOffset.UnixEpoch, [], tags, digests, []);

    [Theory]
    // A name with a tag or digest pins exactly that name, normalised like image names.
    [InlineData("busybox:1.36", "docker.io/library/busybox:1.36", true)]
    [InlineData("busybox:1.36", "docker.io/library/busybox:1.37", false)]
    [InlineData("registry.k8s.io/pause@" + Digest, "registry.k8s.io/pause@" + Digest, true)]
    [InlineData("registry.k8s.io/pause:3.10@" + Digest, "registry.k8s.io/pause@" + Digest, true)]
    // Without one: every tag and digest of that repository, and no other repository.
    [InlineData("registry.k8s.io/pause", "registry.k8s.io/pause:3.10", true)]
    [InlineData("registry.k8s.io/pause", "registry.k8s.io/pause@" + Digest, true)]
    [InlineData("registry.k8s.io/pause", "registry.k8s.io/pause-amd64:3.1", false)]
    [InlineData("busybox", "docker.io/library/busybox:latest", true)]
    // A glob over the full normalised name.
    [InlineData("registry.k8s.io/pause:*", "registry.k8s.io/pause:3.10", true)]
    [InlineData("registry.k8s.io/pause:*", "registry.k8s.io/pause@" + Digest, false)]
    [InlineData("*/coredns/*", "registry.k8s.io/coredns/coredns:v1.11.1", true)]
    [InlineData("*/coredns/*", "docker.io/library/coredns:1", false)]
    [InlineData("docker.io/library/*:1.*", "docker.io/library/busybox:1.36", true)]
    [InlineData("docker.io/library/*:1.*", "docker.io/library/busybox:2.0", false)]
    public void PatternsMatchNormalisedNames(string pattern, string name, bool pinned) =>
        Assert.Equal(pinned ? pattern : null, new PinnedImages([pattern]).PatternFor(name));

    [Fact]
    public void AnImageIsPinnedByAnyOfItsNamesAndApplySetsTheFlag()
    {
        var pins = new PinnedImages(["registry.k8s.io/pause:*", "docker.io/library/busybox@" + Digest]);
        var byDigest = Image(["docker.io/library/busybox:latest"], ["docker.io/library/busybox@" + Digest]);
        Assert.Equal("docker.io/library/busybox@" + Digest, pins.PatternFor(byDigest));
        Assert.True(pins.Apply(byDigest).Pinned);

        var other = Image(["docker.io/library/alpine:3"], ["docker.io/library/alpine@" + Digest]);
        Assert.Null(pins.PatternFor(other));
        Assert.Same(other, pins.Apply(other));
        Assert.False(PinnedImages.None.Apply(byDigest).Pinned);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("busy box", "white space")]
    [InlineData("*", "would pin every image")]
    [InlineData("**", "would pin every image")]
    [InlineData("Busybox", "must be lowercase")]
    [InlineData("busybox:bad tag!", "white space")]
    [InlineData("busybox:-x", "not a valid tag")]
    public void InvalidPatternsAreExplained(string pattern, string why) =>
        Assert.Contains(why, PinnedImages.Invalid(pattern));
}
