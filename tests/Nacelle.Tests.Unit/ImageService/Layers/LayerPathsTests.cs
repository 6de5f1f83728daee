using System.Security.Cryptography;
using Nacelle.ImageService.Layers;

namespace Nacelle.Tests.Unit.ImageService.Layers;

/// <summary>Lexical name normalisation, whiteout recognition and compression sniffing of the layer unpacker.</summary>
public sealed class LayerPathsTests
{
    [Theory]
    [InlineData("etc/passwd", "etc/passwd")]
    [InlineData("./etc/passwd", "etc/passwd")]
    [InlineData("/etc/passwd", "etc/passwd")]
    [InlineData("//etc//passwd/", "etc/passwd")]
    [InlineData("././a/./b/.", "a/b")]
    [InlineData("a/b/../c", "a/c")]
    [InlineData("a/..", "")]
    [InlineData("./", "")]
    [InlineData("/", "")]
    [InlineData("...", "...")]
    [InlineData("..a/b..", "..a/b..")]
    public void NormalizeContainsTheName(string name, string expected)
    {
        var components = LayerPaths.Normalize(name);

        Assert.NotNull(components);
        Assert.Equal(expected, LayerPaths.Join(components));
    }

    [Theory]
    [InlineData("..")]
    [InlineData("../x")]
    [InlineData("/../x")]
    [InlineData("./../x")]
    [InlineData("a/../../x")]
    [InlineData("a/b/../../../x")]
    public void NormalizeRefusesClimbingAboveTheRoot(string name)
    {
        Assert.Null(LayerPaths.Normalize(name));
    }

    [Theory]
    [InlineData("file", "None")]
    [InlineData(".whatever", "None")]
    [InlineData(".wh.file", "File")]
    [InlineData(".wh..hidden", "File")]
    [InlineData(".wh..wh..opq", "Opaque")]
    [InlineData(".wh..wh.plnk", "AufsMetadata")]
    [InlineData(".wh..wh..opq2", "AufsMetadata")]
    public void ClassifyRecognisesWhiteouts(string lastComponent, string expected)
    {
        Assert.Equal(expected, LayerPaths.Classify(lastComponent).ToString());
    }

    [Theory]
    [InlineData(new byte[] { 0x1F, 0x8B, 0x08, 0x00 }, "Gzip")]
    [InlineData(new byte[] { 0x28, 0xB5, 0x2F, 0xFD }, "Zstd")]
    [InlineData(new byte[] { 0x28, 0xB5, 0x2F }, "None")]
    [InlineData(new byte[] { 0x1F }, "None")]
    [InlineData(new byte[] { (byte)'e', (byte)'t', (byte)'c', (byte)'/' }, "None")]
    [InlineData(new byte[0], "None")]
    public void SniffReadsTheMagicBytes(byte[] head, string expected)
    {
        Assert.Equal(expected, LayerStreams.Sniff(head).ToString());
    }

    [Fact]
    public void OpenTarReplaysTheSniffedBytesOfAnUnseekableStream()
    {
        var data = RandomNumberGenerator.GetBytes(10_000);
        data[0] = (byte)'x'; // not a compression magic: passed through as plain tar bytes

        using var tar = LayerStreams.OpenTar(new ForwardOnlyStream(data));
        using var hashing = new HashingStream(tar);
        hashing.Drain(new byte[4096]);

        Assert.Equal(data.LongLength, hashing.BytesRead);
        Assert.Equal("sha256:" + Convert.ToHexStringLower(SHA256.HashData(data)), hashing.Digest());
    }

    /// <summary>A stream that cannot seek and returns at most 3 bytes per read, like a slow network body.</summary>
    private sealed class ForwardOnlyStream(byte[] data) : MemoryStream(data, writable: false)
    {
        public override bool CanSeek => false;

        public override int Read(Span<byte> buffer) => base.Read(buffer[..Math.Min(3, buffer.Length)]);

        public override int Read(byte[] buffer, int offset, int count) => base.Read(buffer, offset, Math.Min(3, count));

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(3, buffer.Length)], cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            base.ReadAsync(buffer, offset, Math.Min(3, count), cancellationToken);
    }
}
