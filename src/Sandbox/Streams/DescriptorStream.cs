using Microsoft.Win32.SafeHandles;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Reactor;

namespace Nacelle.Sandbox.Streams;

/// <summary>
/// A stream over a pipe end or pty master the pod's monitor handed over (exec and attach stdio), with no thread
/// blocked on it: each read or write first waits for readiness on the fd reactor (cancellable, so a stream whose
/// client went away is released at once, even when a background process keeps the pipe open), then makes one
/// read(2) or write(2) that does not block. The descriptor stays blocking: O_NONBLOCK belongs to the open file,
/// which the monitor may share (a dup of a container's stdin or pty master), and must not change under it.
/// </summary>
public sealed class DescriptorStream : Stream
{
    private const int EIO = 5;
    private const int EAGAIN = 11;

    /// <summary>A pipe that polls writable has room for at least PIPE_BUF bytes: writes go in pieces no larger.</summary>
    private const int WritePiece = 4096;

    private readonly SafeFileHandle _handle;
    private readonly bool _canRead;

    /// <summary>Unbuffered: each Read/Write is one read(2)/write(2) on the descriptor.</summary>
    private readonly FileStream _file;

    /// <param name="handle">The descriptor, owned (closed) by this stream from now on.</param>
    /// <param name="read">True to read from it, false to write to it.</param>
    public DescriptorStream(SafeFileHandle handle, bool read)
    {
        ArgumentNullException.ThrowIfNull(handle);
        _handle = handle;
        _canRead = read;
        _file = new FileStream(handle, read ? FileAccess.Read : FileAccess.Write, bufferSize: 0);
    }

    /// <summary>The descriptor (a pty master takes window sizes through it).</summary>
    public SafeFileHandle Handle => _handle;

    public override bool CanRead => _canRead && !_handle.IsClosed;

    public override bool CanWrite => !_canRead && !_handle.IsClosed;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <summary>Bytes read; 0 at end of stream (a pty master whose terminal side is closed reads EIO: also the end).</summary>
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!_canRead)
        {
            throw new NotSupportedException("a write-only descriptor stream");
        }

        if (buffer.IsEmpty)
        {
            return 0;
        }

        while (true)
        {
            await FdReactor.WaitReadableAsync(_handle, cancellationToken).ConfigureAwait(false);
            try
            {
                return _file.Read(buffer.Span);
            }
            catch (IOException e) when (e.HResult == EIO)
            {
                return 0;
            }
            catch (IOException e) when (e.HResult == EAGAIN)
            {
                // A descriptor the sender made non-blocking, and another reader was first: wait again.
            }
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>Writes everything, waiting while the reader is slow; IOException once the reading side is gone (EPIPE, EIO).</summary>
    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_canRead)
        {
            throw new NotSupportedException("a read-only descriptor stream");
        }

        while (!buffer.IsEmpty)
        {
            var piece = buffer[..Math.Min(buffer.Length, WritePiece)];
            await FdReactor.WaitWritableAsync(_handle, cancellationToken).ConfigureAwait(false);
            try
            {
                _file.Write(piece.Span);
            }
            catch (IOException e) when (e.HResult == EAGAIN)
            {
                // Non-blocking and full again: a pipe write of at most PIPE_BUF bytes is all or nothing, so try again.
                continue;
            }

            buffer = buffer[piece.Length..];
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _file.Dispose();
        }

        base.Dispose(disposing);
    }
}
