using System.IO.Compression;
using Nacelle.ContainerCore.Interop;
using Nacelle.ImageService.Layers;

namespace Nacelle.Tests.Unit.ImageService.Layers;

/// <summary>ISA-L's gzip decoder against zlib-ng's (GZipStream) on the same inputs, good and bad.</summary>
public sealed class IsalGzipStreamTests
{
    private static byte[] Data(int length, int seed)
    {
        var random = new Random(seed);
        var data = new byte[length];
        for (var i = 0; i < length; i++)
        {
            // Half compressible text, half noise: both deflate block kinds (Huffman and stored).
            data[i] = i % 2048 < 1024 ? (byte)"the quick brown fox "[random.Next(20)] : (byte)random.Next(256);
        }

        return data;
    }

    private static byte[] Gzip(byte[] data, CompressionLevel level = CompressionLevel.Optimal)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, level, leaveOpen: true))
        {
            gzip.Write(data);
        }

        return output.ToArray();
    }

    // Reads in odd-sized chunks from a source that hands out at most 1000 bytes per read: members and buffers never align.
    private static async Task<byte[]> ReadAllAsync(byte[] gzip, bool async)
    {
        using var stream = new IsalGzipStream(new TrickleStream(gzip));
        using var output = new MemoryStream();
        var buffer = new byte[7777];
        int n;
        while ((n = async ? await stream.ReadAsync(buffer) : stream.Read(buffer)) > 0)
        {
            output.Write(buffer, 0, n);
        }

        return output.ToArray();
    }

    [Theory]
    [InlineData(0, false)]
    [InlineData(1, true)]
    [InlineData(3_000_000, false)]
    [InlineData(3_000_000, true)]
    public async Task DecodesWhatZlibEncoded(int length, bool async)
    {
        Assert.SkipUnless(IsalCalls.Available, $"libisal.so.2 of a known version is not installed (found {IsalCalls.Version ?? "none"})");
        var data = Data(length, length);

        Assert.Equal(data, await ReadAllAsync(Gzip(data), async));
        Assert.Equal(data, await ReadAllAsync(Gzip(data, CompressionLevel.NoCompression), async));
    }

    [Fact]
    public async Task ConcatenatedMembersAreOneStreamAndTrailingBytesAreIgnoredAsByGZipStream()
    {
        Assert.SkipUnless(IsalCalls.Available, "libisal.so.2 of a known version is not installed");
        var a = Data(100_000, 1);
        var b = Data(50_000, 2);
        byte[] joined = [.. Gzip(a), .. Gzip(b), 0, 0, 0, 0];

        byte[] both = [.. a, .. b];
        Assert.Equal(both, await ReadAllAsync(joined, async: true));
        var expected = new MemoryStream();
        using (var zlib = new GZipStream(new MemoryStream(joined), CompressionMode.Decompress))
        {
            zlib.CopyTo(expected);
        }

        Assert.Equal(expected.ToArray(), await ReadAllAsync(joined, async: false));
    }

    [Fact]
    public async Task CorruptOrTruncatedInputIsInvalidData()
    {
        Assert.SkipUnless(IsalCalls.Available, "libisal.so.2 of a known version is not installed");
        var gzip = Gzip(Data(200_000, 3));

        var badCrc = gzip.ToArray();
        badCrc[^6] ^= 0x55; // inside the CRC-32 of the trailer
        Assert.Contains("checksum", (await Assert.ThrowsAsync<InvalidDataException>(() => ReadAllAsync(badCrc, async: false))).Message);

        var badSize = gzip.ToArray();
        badSize[^2] ^= 0x01; // inside ISIZE
        await Assert.ThrowsAsync<InvalidDataException>(() => ReadAllAsync(badSize, async: true));

        await Assert.ThrowsAsync<InvalidDataException>(() => ReadAllAsync(gzip[..(gzip.Length / 2)], async: true));
        await Assert.ThrowsAsync<InvalidDataException>(() => ReadAllAsync(gzip[..^4], async: false));
        Assert.Empty(await ReadAllAsync([], async: false)); // as GZipStream: no member, no bytes

        var badHeader = gzip.ToArray();
        badHeader[2] = 7; // compression method other than deflate
        await Assert.ThrowsAsync<InvalidDataException>(() => ReadAllAsync(badHeader, async: false));
    }

    [Fact]
    public void TheLayerDecoderIsIsalWhereInstalled()
    {
        Assert.Equal(IsalCalls.Available, LayerStreams.GzipImplementation.StartsWith("ISA-L", StringComparison.Ordinal));
        Assert.True(File.Exists("/usr/lib/x86_64-linux-gnu/libisal.so.2") == (IsalCalls.Version is not null) || !OperatingSystem.IsLinux());
    }

    /// <summary>A read-only stream that returns at most 1000 bytes per read.</summary>
    private sealed class TrickleStream(byte[] data) : MemoryStream(data, writable: false)
    {
        public override int Read(Span<byte> buffer) => base.Read(buffer[..Math.Min(buffer.Length, 1000)]);

        public override int Read(byte[] buffer, int offset, int count) => base.Read(buffer, offset, Math.Min(count, 1000));

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(buffer.Length, 1000)], cancellationToken);
    }
}
