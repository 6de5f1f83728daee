using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Nacelle.ContainerCore.Interop;

namespace Nacelle.CriServer.Streaming.Spdy;

/// <summary>
/// SPDY/3 header block compression (SPDY/3 section 2.6.10.1): each direction of a session is one zlib stream, primed
/// with the protocol's dictionary, and every header block is flushed with Z_SYNC_FLUSH so the peer can decode it
/// at once. The zlib state spans the whole session, so blocks must be compressed in the order they are sent.
/// </summary>
internal static class SpdyDictionary
{
    // The SPDY/3 dictionary is a protocol constant: 65 header words, each preceded by its length as a 32-bit
    // big-endian integer, then a run of common values without lengths. 1423 bytes, Adler-32 0xe3c6a7c2.
    private static readonly string[] Words =
    [
        "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding",
        "accept-language", "accept-ranges", "age", "allow", "authorization", "cache-control", "connection",
        "content-base", "content-encoding", "content-language", "content-length", "content-location", "content-md5",
        "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host", "if-match",
        "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
        "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer", "retry-after",
        "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via", "warning",
        "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie",
        "keep-alive", "origin",
    ];

    private const string Tail =
        "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505" +
        "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized" +
        "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable" +
        "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT" +
        "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain," +
        "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

    public static readonly byte[] Bytes = Build();

    private static byte[] Build()
    {
        var bytes = new List<byte>(1423);
        Span<byte> length = stackalloc byte[4];
        foreach (var word in Words)
        {
            BinaryPrimitives.WriteInt32BigEndian(length, word.Length);
            bytes.AddRange(length);
            bytes.AddRange(Encoding.ASCII.GetBytes(word));
        }

        bytes.AddRange(Encoding.ASCII.GetBytes(Tail));
        return [.. bytes];
    }
}

/// <summary>Compresses the header blocks one side of a session sends (one zlib stream for the whole session).</summary>
internal sealed class SpdyHeaderCompressor : IDisposable
{
    private readonly ZlibDeflater _deflater;

    public SpdyHeaderCompressor()
    {
        // Level 6 (zlib's default): header blocks are small and few; speed matters more than the last bytes.
        _deflater = new ZlibDeflater(level: 6);
        _deflater.SetDictionary(SpdyDictionary.Bytes);
    }

    /// <summary>The compressed form of <paramref name="block"/>, ending at a sync-flush point.</summary>
    public byte[] Compress(ReadOnlySpan<byte> block)
    {
        var output = new ArrayBufferWriter<byte>(block.Length + 64);
        while (true)
        {
            var span = output.GetSpan(Math.Max(256, block.Length + 64));
            var status = _deflater.Deflate(block, span, ZlibFlush.Sync, out var consumed, out var written);
            output.Advance(written);
            block = block[consumed..];
            if (status is not (ZlibStatus.Ok or ZlibStatus.BufferError))
            {
                throw new InvalidOperationException($"zlib deflate: {_deflater.Describe(status)}");
            }

            // Done when all input is consumed and deflate left room in the output (it has flushed everything).
            if (block.IsEmpty && written < span.Length)
            {
                return output.WrittenSpan.ToArray();
            }
        }
    }

    public void Dispose() => _deflater.Dispose();
}

/// <summary>Decompresses the header blocks the peer sends; a failure breaks the session's zlib state for good.</summary>
internal sealed class SpdyHeaderDecompressor : IDisposable
{
    private readonly ZlibInflater _inflater = new();
    private readonly int _maxBlockSize;

    /// <param name="maxBlockSize">The largest decompressed header block accepted (a bound against zlib bombs).</param>
    public SpdyHeaderDecompressor(int maxBlockSize)
    {
        _maxBlockSize = maxBlockSize;
    }

    /// <summary>The decompressed block, or throws <see cref="SpdyProtocolException"/> (a session error).</summary>
    public byte[] Decompress(ReadOnlySpan<byte> compressed)
    {
        var output = new ArrayBufferWriter<byte>(Math.Max(256, compressed.Length * 4));
        while (true)
        {
            if (output.WrittenCount >= _maxBlockSize)
            {
                throw new SpdyProtocolException($"a header block decompresses to more than {_maxBlockSize} bytes");
            }

            var span = output.GetSpan(Math.Min(16 * 1024, _maxBlockSize - output.WrittenCount + 1));
            var status = _inflater.Inflate(compressed, span, ZlibFlush.Sync, out var consumed, out var written);
            output.Advance(written);
            compressed = compressed[consumed..];
            switch (status)
            {
                case ZlibStatus.NeedDictionary:
                    if (_inflater.SetDictionary(SpdyDictionary.Bytes) != ZlibStatus.Ok)
                    {
                        throw new SpdyProtocolException($"header compression asks for dictionary {_inflater.DictionaryId:x8}, not SPDY/3's");
                    }

                    continue;
                case ZlibStatus.Ok:
                case ZlibStatus.BufferError:
                    break;
                case ZlibStatus.StreamEnd:
                    throw new SpdyProtocolException("the header compression stream ended (a peer must never finish it)");
                default:
                    throw new SpdyProtocolException($"header block does not decompress: {_inflater.Describe(status)}");
            }

            if (compressed.IsEmpty && written < span.Length)
            {
                if (output.WrittenCount > _maxBlockSize)
                {
                    throw new SpdyProtocolException($"a header block decompresses to more than {_maxBlockSize} bytes");
                }

                if (!_inflater.AtBlockBoundary)
                {
                    throw new SpdyProtocolException("a header block ends inside its compressed data (no sync flush)");
                }

                return output.WrittenSpan.ToArray();
            }

            if (status == ZlibStatus.BufferError && written == 0 && consumed == 0)
            {
                // No progress with room in the output: the input ends inside a deflate block.
                throw new SpdyProtocolException("a header block ends inside its compressed data");
            }
        }
    }

    public void Dispose() => _inflater.Dispose();
}
