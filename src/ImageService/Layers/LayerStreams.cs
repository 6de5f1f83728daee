using System.IO.Compression;
using System.Security.Cryptography;
using Nacelle.ContainerCore.Interop;

namespace Nacelle.ImageService.Layers;

/// <summary>The compression of a layer blob, as its first bytes reveal it.</summary>
internal enum LayerCompression
{
    None,
    Gzip,
    Zstd,
}

/// <summary>Opens a layer blob as a plain tar stream: sniffs the compression and undoes it.</summary>
public static class LayerStreams
{
    /// <summary>Which compression the magic bytes at the start of a blob announce.</summary>
    internal static LayerCompression Sniff(ReadOnlySpan<byte> head)
    {
        if (head.Length >= 2 && head[0] == 0x1F && head[1] == 0x8B)
        {
            return LayerCompression.Gzip;
        }

        if (head.Length >= 4 && head[0] == 0x28 && head[1] == 0xB5 && head[2] == 0x2F && head[3] == 0xFD)
        {
            return LayerCompression.Zstd;
        }

        return LayerCompression.None;
    }

    /// <summary>Which gzip decoder layers get: ISA-L's igzip when libisal2 is installed (about 1.5x zlib-ng's speed here), else zlib-ng.</summary>
    public static string GzipImplementation => IsalCalls.Available ? $"ISA-L igzip {IsalCalls.Version}" : "zlib-ng (System.IO.Compression)";

    /// <summary>A decompressing view of a gzip stream with the fastest decoder available; disposing it disposes <paramref name="gzip"/>.</summary>
    public static Stream OpenGzip(Stream gzip) =>
        IsalCalls.Available ? new IsalGzipStream(gzip) : new GZipStream(gzip, CompressionMode.Decompress, leaveOpen: false);

    /// <summary>
    /// The decompressed tar bytes of <paramref name="layer"/>. The layer need not be seekable: the sniffed bytes
    /// are replayed in front of the rest. Disposing the result leaves <paramref name="layer"/> open.
    /// </summary>
    internal static Stream OpenTar(Stream layer)
    {
        var head = new byte[4];
        var read = layer.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        var replayed = new PrefixedStream(head.AsMemory(0, read), layer);
        return Sniff(head.AsSpan(0, read)) switch
        {
            LayerCompression.Gzip => OpenGzip(replayed),
            LayerCompression.Zstd => new ZstdSharp.DecompressionStream(replayed, leaveOpen: false),
            _ => replayed,
        };
    }
}

/// <summary>The parts every forward-only, read-only stream of the unpacker has alike; subclasses read spans and memory.</summary>
internal abstract class ReadOnlyStream : Stream
{
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>A read-only stream that yields a few already-read bytes, then the rest of another stream (left open).</summary>
internal sealed class PrefixedStream(ReadOnlyMemory<byte> prefix, Stream rest) : ReadOnlyStream
{
    private ReadOnlyMemory<byte> _prefix = prefix;


    public override int Read(Span<byte> buffer)
    {
        if (_prefix.IsEmpty)
        {
            return rest.Read(buffer);
        }

        return TakePrefix(buffer);
    }


    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_prefix.IsEmpty)
        {
            return rest.ReadAsync(buffer, cancellationToken);
        }

        return ValueTask.FromResult(TakePrefix(buffer.Span));
    }


    private int TakePrefix(Span<byte> buffer)
    {
        var n = Math.Min(buffer.Length, _prefix.Length);
        _prefix.Span[..n].CopyTo(buffer);
        _prefix = _prefix[n..];
        return n;
    }
}

/// <summary>
/// A read-only pass-through stream that shows every chunk read from the inner stream to <see cref="Observe"/>.
/// Disposing it disposes the inner stream unless <paramref name="leaveOpen"/>.
/// </summary>
internal abstract class ObservingStream(Stream inner, bool leaveOpen) : ReadOnlyStream
{

    public override int Read(Span<byte> buffer)
    {
        var n = inner.Read(buffer);
        Observe(buffer[..n]);
        return n;
    }


    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await inner.ReadAsync(buffer, cancellationToken);
        Observe(buffer.Span[..n]);
        return n;
    }


    /// <summary>Sees the bytes just read, before the reader does; may throw to stop the read.</summary>
    protected abstract void Observe(ReadOnlySpan<byte> data);

    protected override void Dispose(bool disposing)
    {
        if (disposing && !leaveOpen)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }
}

/// <summary>
/// Hashes (SHA-256) and counts every byte read through it, so the diffID is computed over exactly the bytes the
/// tar reader consumed, without a second pass or a buffer.
/// </summary>
internal sealed class HashingStream(Stream inner) : ObservingStream(inner, leaveOpen: false)
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    /// <summary>How many bytes have been read so far.</summary>
    public long BytesRead { get; private set; }

    /// <summary>"sha256:&lt;hex&gt;" of everything read so far.</summary>
    public string Digest() => Content.Digests.FromHash(_hash);

    /// <summary>Reads the stream to its end (the tar reader stops at the end-of-archive marker; padding follows).</summary>
    public void Drain(byte[] buffer)
    {
        while (Read(buffer) > 0)
        {
        }
    }

    protected override void Observe(ReadOnlySpan<byte> data)
    {
        _hash.AppendData(data);
        BytesRead += data.Length;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
        }

        base.Dispose(disposing);
    }
}
