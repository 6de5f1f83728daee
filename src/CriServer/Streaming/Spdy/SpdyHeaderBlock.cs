using System.Buffers.Binary;
using System.Text;

namespace Nacelle.CriServer.Streaming.Spdy;

/// <summary>
/// The uncompressed name/value header block of SYN_STREAM, SYN_REPLY and HEADERS (SPDY/3 section 2.6.10): a 32-bit
/// pair count, then per pair a 32-bit name length, the name, a 32-bit value length and the value (several values
/// of one name are joined by NUL bytes). Names are lower case, non-empty and unique.
/// </summary>
internal static class SpdyHeaderBlock
{
    public static byte[] Encode(IReadOnlyList<KeyValuePair<string, string>> headers)
    {
        ArgumentNullException.ThrowIfNull(headers);
        var size = 4;
        foreach (var (name, value) in headers)
        {
            size += 8 + Encoding.UTF8.GetByteCount(name) + Encoding.UTF8.GetByteCount(value);
        }

        var block = new byte[size];
        BinaryPrimitives.WriteInt32BigEndian(block, headers.Count);
        var at = 4;
        foreach (var (name, value) in headers)
        {
            at = WriteString(block, at, name.ToLowerInvariant());
            at = WriteString(block, at, value);
        }

        return block;
    }

    private static int WriteString(byte[] block, int at, string text)
    {
        var length = Encoding.UTF8.GetBytes(text, block.AsSpan(at + 4));
        BinaryPrimitives.WriteInt32BigEndian(block.AsSpan(at), length);
        return at + 4 + length;
    }

    /// <summary>The block's pairs by name; an invalid block is a stream error (PROTOCOL_ERROR).</summary>
    public static Dictionary<string, string> Decode(ReadOnlySpan<byte> block)
    {
        if (block.Length < 4)
        {
            throw Invalid($"header block of {block.Length} bytes has no pair count");
        }

        var count = BinaryPrimitives.ReadUInt32BigEndian(block);
        // Each pair takes at least 8 bytes (two lengths), which bounds the count before anything is allocated.
        if (count > (uint)(block.Length - 4) / 8)
        {
            throw Invalid($"header block of {block.Length} bytes cannot hold {count} pairs");
        }

        var headers = new Dictionary<string, string>((int)count, StringComparer.Ordinal);
        var at = 4;
        for (var i = 0; i < count; i++)
        {
            var name = ReadString(block, ref at, "name");
            var value = ReadString(block, ref at, "value");
            if (name.Length == 0)
            {
                throw Invalid("header with an empty name");
            }

            if (name.Any(c => char.IsAsciiLetterUpper(c) || c == '\0'))
            {
                throw Invalid($"header name '{name.Replace('\0', ' ')}' is not lower case");
            }

            if (!headers.TryAdd(name, value))
            {
                throw Invalid($"header '{name}' appears twice");
            }
        }

        if (at != block.Length)
        {
            throw Invalid($"{block.Length - at} bytes after the last header pair");
        }

        return headers;
    }

    private static string ReadString(ReadOnlySpan<byte> block, ref int at, string what)
    {
        if (block.Length - at < 4)
        {
            throw Invalid($"header block ends before a {what} length");
        }

        var length = BinaryPrimitives.ReadUInt32BigEndian(block[at..]);
        at += 4;
        if (length > (uint)(block.Length - at))
        {
            throw Invalid($"header {what} of {length} bytes runs past the block");
        }

        var text = Encoding.UTF8.GetString(block.Slice(at, (int)length));
        at += (int)length;
        return text;
    }

    private static SpdyStreamException Invalid(string message) => new(message, SpdyRstStatus.ProtocolError);
}
