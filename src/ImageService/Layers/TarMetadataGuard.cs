using System.Buffers.Binary;
using System.Text;

namespace Nacelle.ImageService.Layers;

/// <summary>
/// Sits between the tar reader and the layer bytes and refuses oversized metadata entries (PAX extended headers,
/// GNU long names) before the reader sees their header. TarReader allocates such an entry's whole declared size
/// up front, so one 512-byte header claiming 2 GB would otherwise cost 2 GB of memory.
/// </summary>
/// <remarks>
/// It follows the archive's layout on its own: a header, then its data padded to 512 bytes, then the next header.
/// A PAX "size" record replaces the next entry's size (as it does for TarReader), so PAX bodies are parsed for it.
/// After the first all-zero block (end of archive) it stops looking.
/// Disposing it leaves the inner stream open.
/// </remarks>
internal sealed class TarMetadataGuard(Stream inner) : ObservingStream(inner, leaveOpen: true)
{
    /// <summary>The largest PAX header or GNU long name accepted: far above any real path or xattr set.</summary>
    public const int MetadataLimit = 1 << 20;

    private const int BlockSize = 512;

    private readonly byte[] _header = new byte[BlockSize];
    private int _headerFill;
    private long _position;
    private long _nextHeader;
    private bool _finished;

    // The body of the current PAX extended header ('x'), collected to find its "size" record.
    private byte[]? _paxBody;
    private int _paxFill;
    private long? _pendingSize;

    protected override void Observe(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty && !_finished)
        {
            if (_position < _nextHeader)
            {
                var skip = (int)Math.Min(data.Length, _nextHeader - _position);
                CollectPaxBody(data[..skip]);
                data = data[skip..];
                _position += skip;
                continue;
            }

            var take = Math.Min(data.Length, BlockSize - _headerFill);
            data[..take].CopyTo(_header.AsSpan(_headerFill));
            _headerFill += take;
            _position += take;
            data = data[take..];
            if (_headerFill == BlockSize)
            {
                _headerFill = 0;
                OnHeader();
            }
        }
    }

    private void OnHeader()
    {
        if (_header.AsSpan().IndexOfAnyExcept((byte)0) < 0)
        {
            _finished = true;
            return;
        }

        var type = (char)_header[156];
        var size = ParseSize(_header.AsSpan(124, 12));
        if (type is 'x' or 'g' or 'L' or 'K')
        {
            if (size > MetadataLimit)
            {
                throw new InvalidDataException(
                    $"tar metadata entry of type '{type}' declares {size} bytes, above the limit of {MetadataLimit}");
            }

            if (type == 'x')
            {
                _paxBody = new byte[size];
                _paxFill = 0;
            }
        }
        else
        {
            // The entry the metadata described: a PAX size record overrides its header's size field.
            size = _pendingSize ?? size;
            _pendingSize = null;
        }

        // Clamped: a size near long.MaxValue must not wrap around to a position behind us.
        var padded = size > long.MaxValue - BlockSize ? long.MaxValue : (size + BlockSize - 1) / BlockSize * BlockSize;
        _nextHeader = padded > long.MaxValue - _position ? long.MaxValue : _position + padded;
    }

    private void CollectPaxBody(ReadOnlySpan<byte> data)
    {
        if (_paxBody is null)
        {
            return;
        }

        var take = Math.Min(data.Length, _paxBody.Length - _paxFill);
        data[..take].CopyTo(_paxBody.AsSpan(_paxFill));
        _paxFill += take;
        if (_paxFill == _paxBody.Length)
        {
            _pendingSize = FindSizeRecord(_paxBody) ?? _pendingSize;
            _paxBody = null;
        }
    }

    /// <summary>The value of a "size" record in a PAX body ("&lt;length&gt; size=&lt;decimal&gt;\n"), if any.</summary>
    internal static long? FindSizeRecord(ReadOnlySpan<byte> body)
    {
        long? size = null;
        while (!body.IsEmpty)
        {
            var space = body.IndexOf((byte)' ');
            if (space <= 0 || !int.TryParse(body[..space], out var length) || length <= space || length > body.Length)
            {
                break; // malformed: TarReader rejects it itself
            }

            var record = Encoding.UTF8.GetString(body[(space + 1)..length]).TrimEnd('\n');
            if (record.StartsWith("size=", StringComparison.Ordinal) && long.TryParse(record.AsSpan(5), out var value) && value >= 0)
            {
                size = value;
            }

            body = body[length..];
        }

        return size;
    }

    /// <summary>A tar size field: octal digits, or GNU base-256 when the high bit of the first byte is set.</summary>
    internal static long ParseSize(ReadOnlySpan<byte> field)
    {
        if ((field[0] & 0x80) != 0)
        {
            // Base-256: the remaining 11 bytes big-endian; the top 3 of them can only be zero for a sane size.
            var low = BinaryPrimitives.ReadUInt64BigEndian(field[4..]);
            return field[1..4].IndexOfAnyExcept((byte)0) >= 0 || low > long.MaxValue ? long.MaxValue : (long)low;
        }

        long value = 0;
        foreach (var b in field)
        {
            if (b is >= (byte)'0' and <= (byte)'7')
            {
                value = (value * 8) + (b - '0');
            }
            else if (value > 0 || b is not ((byte)' ' or 0))
            {
                break;
            }
        }

        return value;
    }
}
