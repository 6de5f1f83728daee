using System.Security.Cryptography;
using Nacelle.Common;

namespace Nacelle.ImageService.Content;

/// <summary>
/// A write-only pass-through that hashes (SHA-256) and counts every byte on its way to an inner stream, so a blob is
/// verified in the same pass that stores or unpacks it. <see cref="Verify"/> throws when the size or digest is not
/// the one promised. Disposing it leaves the inner stream open.
/// </summary>
public sealed class BlobVerifier(Stream inner) : Stream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    /// <summary>Bytes written so far.</summary>
    public long Written { get; private set; }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => Written;
    public override long Position { get => Written; set => throw new NotSupportedException(); }

    /// <summary>
    /// Throws <see cref="ErrorKind.Unavailable"/> (a corrupt or truncated download: worth another try) unless exactly
    /// <paramref name="expectedSize"/> bytes (negative: any size) with digest <paramref name="digest"/> went through.
    /// </summary>
    public void Verify(string digest, long expectedSize)
    {
        if (expectedSize >= 0 && Written != expectedSize)
        {
            throw NacelleException.Unavailable($"blob {digest}: received {Written} bytes, expected {expectedSize} (truncated or corrupt download)");
        }

        var actual = Digests.FromHash(_hash);
        if (actual != digest)
        {
            throw NacelleException.Unavailable($"blob {digest}: content has digest {actual} (corrupt download)");
        }
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _hash.AppendData(buffer);
        Written += buffer.Length;
        inner.Write(buffer);
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        _hash.AppendData(buffer.Span);
        Written += buffer.Length;
        await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush() => inner.Flush();
    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
        }

        base.Dispose(disposing);
    }
}
