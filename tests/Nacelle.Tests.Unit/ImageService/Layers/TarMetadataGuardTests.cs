using System.Text;
using Nacelle.ImageService.Layers;

namespace Nacelle.Tests.Unit.ImageService.Layers;

/// <summary>The guard that refuses oversized PAX/long-name headers before TarReader allocates them.</summary>
public sealed class TarMetadataGuardTests
{
    [Theory]
    [InlineData("00000001750\0", 1000)]
    [InlineData("   1750 \0\0\0\0", 1000)]
    [InlineData("00000000000\0", 0)]
    [InlineData("77777777777\0", 8_589_934_591)]
    public void ParseSizeReadsOctal(string field, long expected)
    {
        Assert.Equal(expected, TarMetadataGuard.ParseSize(Encoding.ASCII.GetBytes(field)));
    }

    [Fact]
    public void ParseSizeReadsGnuBase256()
    {
        var field = new byte[12];
        field[0] = 0x80;
        field[7] = 0x02; // 2 << 32
        Assert.Equal(2L << 32, TarMetadataGuard.ParseSize(field));

        field[2] = 0x01; // beyond 64 bits: treated as "too big"
        Assert.Equal(long.MaxValue, TarMetadataGuard.ParseSize(field));
    }

    [Fact]
    public void FindSizeRecordTakesTheSizeOfAPaxBody()
    {
        Assert.Equal(600, TarMetadataGuard.FindSizeRecord("18 path=some/file\n12 size=600\n"u8));
        Assert.Null(TarMetadataGuard.FindSizeRecord("18 path=some/file\n"u8));
        Assert.Null(TarMetadataGuard.FindSizeRecord("garbage"u8));
    }

    [Fact]
    public void SmallMetadataPassesThrough()
    {
        var tar = Concat(Header('x', 12), Padded("12 size=600\n"u8), Header('0', 0), new byte[1024], new byte[1024]);

        Assert.Equal(tar.Length, ReadAll(tar, chunk: 7));
    }

    [Fact]
    public void OversizedPaxHeaderIsRefused()
    {
        var tar = Concat(Header('x', 1_500_000_000), new byte[4096]);

        var error = Assert.Throws<InvalidDataException>(() => ReadAll(tar, chunk: 100));
        Assert.Contains("declares 1500000000 bytes", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PaxSizeRecordIsFollowedToFindTheNextHeader()
    {
        // The file header says 0 bytes but the PAX record says 600 (as for files above 8 GiB): its data are two
        // zero blocks, which must not be taken for the end of the archive; the oversized header after them is found.
        var tar = Concat(Header('x', 12), Padded("12 size=600\n"u8), Header('0', 0), new byte[1024], Header('L', 5_000_000), new byte[512]);

        Assert.Throws<InvalidDataException>(() => ReadAll(tar, chunk: 512));
    }

    [Fact]
    public void NothingIsCheckedAfterTheEndOfArchive()
    {
        var tar = Concat(Header('0', 1), new byte[512], new byte[1024], Header('x', 1_500_000_000));

        Assert.Equal(tar.Length, ReadAll(tar, chunk: 4096));
    }

    private static int ReadAll(byte[] tar, int chunk)
    {
        using var guard = new TarMetadataGuard(new MemoryStream(tar));
        var buffer = new byte[chunk];
        var total = 0;
        int n;
        while ((n = guard.Read(buffer)) > 0)
        {
            total += n;
        }

        return total;
    }

    private static byte[] Header(char type, long size)
    {
        var header = new byte[512];
        Encoding.ASCII.GetBytes("name").CopyTo(header, 0);
        Encoding.ASCII.GetBytes(Convert.ToString(size, 8).PadLeft(11, '0') + "\0").CopyTo(header, 124);
        header[156] = (byte)type;
        Encoding.ASCII.GetBytes("ustar\0" + "00").CopyTo(header, 257);
        return header;
    }

    private static byte[] Padded(ReadOnlySpan<byte> body)
    {
        var padded = new byte[(body.Length + 511) / 512 * 512];
        body.CopyTo(padded);
        return padded;
    }

    private static byte[] Concat(params byte[][] parts) => parts.SelectMany(part => part).ToArray();
}
