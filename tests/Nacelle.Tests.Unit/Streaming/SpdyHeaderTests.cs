using System.Buffers.Binary;
using Nacelle.CriServer.Streaming.Spdy;

namespace Nacelle.Tests.Unit.Streaming;

/// <summary>SPDY/3 header blocks and their compression with the protocol's zlib dictionary.</summary>
public sealed class SpdyHeaderTests
{
    private static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal));

    [Fact]
    public void AHeaderBlockIsCountedLengthPrefixedPairsWithLowerCaseNames()
    {
        var block = SpdyHeaderBlock.Encode([new("streamType", "error"), new("port", "80")]);
        Assert.Equal(Hex("00000002 0000000a 73747265616d74797065 00000005 6572726f72 00000004 706f7274 00000002 3830"), block);
        Assert.Equal(new Dictionary<string, string> { ["streamtype"] = "error", ["port"] = "80" }, SpdyHeaderBlock.Decode(block));
        Assert.Empty(SpdyHeaderBlock.Decode(SpdyHeaderBlock.Encode([])));
    }

    [Theory]
    [InlineData("000000", "no pair count")]
    [InlineData("00000001 00000004 6e616d65", "before a value length")]
    [InlineData("00000001 00000009 6e616d65 00000000", "runs past the block")]
    [InlineData("00000001 00000000 00000000", "empty name")]
    [InlineData("00000001 00000004 4e616d65 00000000", "not lower case")] // "Name"
    [InlineData("00000002 00000001 61 00000000 00000001 61 00000000", "appears twice")]
    [InlineData("00000001 00000001 61 00000000 ff", "after the last header pair")]
    [InlineData("7fffffff 00000001 61 00000000", "cannot hold")]
    public void InvalidBlocksAreStreamErrors(string hex, string expected)
    {
        var e = Assert.Throws<SpdyStreamException>(() => SpdyHeaderBlock.Decode(Hex(hex)));
        Assert.Equal(SpdyRstStatus.ProtocolError, e.Status);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void TheDictionaryIsSpdy3s()
    {
        // 1423 bytes; zlib names a dictionary by its Adler-32, and SPDY/3 peers expect this one.
        Assert.Equal(1423, SpdyDictionary.Bytes.Length);
        Assert.Equal(0xe3c6a7c2u, Adler32(SpdyDictionary.Bytes));
        Assert.Equal(Hex("00000007 6f7074696f6e73"), SpdyDictionary.Bytes[..11]); // "options"
        Assert.EndsWith("enq=0.", System.Text.Encoding.ASCII.GetString(SpdyDictionary.Bytes));
    }

    [Fact]
    public void BlocksRoundTripThroughOneCompressionStreamPerDirection()
    {
        using var compressor = new SpdyHeaderCompressor();
        using var decompressor = new SpdyHeaderDecompressor(64 * 1024);
        for (var i = 0; i < 50; i++)
        {
            var block = SpdyHeaderBlock.Encode([new("streamtype", i % 2 == 0 ? "data" : "error"), new("port", "8080"), new("requestid", i.ToString(System.Globalization.CultureInfo.InvariantCulture))]);
            var compressed = compressor.Compress(block);
            // Every block ends at a sync-flush point: the empty stored block 00 00 ff ff.
            Assert.Equal(Hex("0000ffff"), compressed[^4..]);
            Assert.Equal(block, decompressor.Decompress(compressed));
        }
    }

    [Fact]
    public void AStoredBlockWrittenByHandDecompressesWithTheDictionary()
    {
        // zlib header 78 20: deflate, 32K window, FDICT set, check bits making 0x7820 a multiple of 31; then the
        // dictionary's Adler-32; then a stored block (BTYPE 00) holding an uncompressed header block.
        var block = SpdyHeaderBlock.Encode([new("streamtype", "error")]);
        var stream = new List<byte>(Hex("7820 e3c6a7c2 00"));
        stream.AddRange(BitConverter.GetBytes((ushort)block.Length));
        stream.AddRange(BitConverter.GetBytes((ushort)~block.Length));
        stream.AddRange(block);
        using var decompressor = new SpdyHeaderDecompressor(64 * 1024);
        Assert.Equal(new Dictionary<string, string> { ["streamtype"] = "error" }, SpdyHeaderBlock.Decode(decompressor.Decompress([.. stream])));
    }

    [Fact]
    public void AFixedHuffmanBackReferenceWrittenByHandReadsTheDictionary()
    {
        // A fixed-Huffman block (RFC 1951 3.2.6) with one match: length 11 (symbol 265, extra bit 0) at distance 1423
        // (distance code 20, 9 extra bits 398), which reaches back over the whole dictionary to its first 11 bytes,
        // then end of block, then a sync flush (an empty stored block).
        var bits = new BitWriter();
        bits.Write(0, 1); // BFINAL
        bits.Write(1, 2); // BTYPE 01: fixed Huffman codes
        bits.WriteHuffman(265 - 256, 7); // length symbols 256-279 are the 7-bit codes 0000000-0010111
        bits.Write(0, 1);
        bits.WriteHuffman(20, 5);
        bits.Write(1423 - 1025, 9);
        bits.WriteHuffman(0, 7); // end of block (256)
        bits.Write(0, 1);
        bits.Write(0, 2); // stored block, then LEN 0, NLEN ffff
        var stream = Hex("7820 e3c6a7c2").Concat(bits.ToBytes()).Concat(Hex("0000 ffff")).ToArray();

        using var decompressor = new SpdyHeaderDecompressor(64 * 1024);
        Assert.Equal(Hex("00000007 6f7074696f6e73"), decompressor.Decompress(stream));
    }

    [Fact]
    public void CorruptOrForeignCompressionIsASessionError()
    {
        using (var decompressor = new SpdyHeaderDecompressor(64 * 1024))
        {
            // A zlib stream asking for another dictionary.
            Assert.Contains("dictionary", Assert.Throws<SpdyProtocolException>(() => decompressor.Decompress(Hex("7820 01020304 00"))).Message);
        }

        using (var decompressor = new SpdyHeaderDecompressor(64 * 1024))
        {
            Assert.Throws<SpdyProtocolException>(() => decompressor.Decompress(Hex("ffffffffffff")));
        }

        using (var decompressor = new SpdyHeaderDecompressor(64 * 1024))
        {
            // A block cut inside its compressed data (no sync flush at its end).
            using var compressor = new SpdyHeaderCompressor();
            var compressed = compressor.Compress(SpdyHeaderBlock.Encode([new("streamtype", "stdout"), new("x", new string('y', 300))]));
            Assert.Throws<SpdyProtocolException>(() => decompressor.Decompress(compressed[..^6]));
        }
    }

    [Fact]
    public void AHeaderBlockBiggerThanTheLimitIsRefused()
    {
        using var compressor = new SpdyHeaderCompressor();
        using var decompressor = new SpdyHeaderDecompressor(1024);
        var bomb = compressor.Compress(SpdyHeaderBlock.Encode([new("x", new string('a', 100_000))]));
        Assert.True(bomb.Length < 1024);
        Assert.Contains("more than 1024", Assert.Throws<SpdyProtocolException>(() => decompressor.Decompress(bomb)).Message);
    }

    private static uint Adler32(byte[] data)
    {
        uint a = 1, b = 0;
        foreach (var d in data)
        {
            a = (a + d) % 65521;
            b = (b + a) % 65521;
        }

        return (b << 16) | a;
    }

    /// <summary>Deflate's bit order: fields least significant bit first, Huffman codes most significant bit first.</summary>
    private sealed class BitWriter
    {
        private readonly List<byte> _bytes = [];
        private int _bit;

        public void Write(int value, int count)
        {
            for (var i = 0; i < count; i++)
            {
                Bit((value >> i) & 1);
            }
        }

        public void WriteHuffman(int code, int length)
        {
            for (var i = length - 1; i >= 0; i--)
            {
                Bit((code >> i) & 1);
            }
        }

        private void Bit(int bit)
        {
            if (_bit % 8 == 0)
            {
                _bytes.Add(0);
            }

            _bytes[^1] |= (byte)(bit << (_bit % 8));
            _bit++;
        }

        public byte[] ToBytes() => [.. _bytes];
    }
}
