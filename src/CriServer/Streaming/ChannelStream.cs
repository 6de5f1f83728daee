namespace Nacelle.CriServer.Streaming;

/// <summary>
/// A one-way <see cref="Stream"/> over a protocol channel (a SPDY stream, a WebSocket channel), handed to the
/// backend. Asynchronous only: a synchronous call would park a pool thread on the network.
/// </summary>
internal sealed class ChannelStream : Stream
{
    private readonly Func<Memory<byte>, CancellationToken, ValueTask<int>>? _read;
    private readonly Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask>? _write;

    private ChannelStream(Func<Memory<byte>, CancellationToken, ValueTask<int>>? read, Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask>? write)
    {
        _read = read;
        _write = write;
    }

    public static ChannelStream Reading(Func<Memory<byte>, CancellationToken, ValueTask<int>> read) => new(read, null);

    public static ChannelStream Writing(Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> write) => new(null, write);

    public override bool CanRead => _read is not null;

    public override bool CanWrite => _write is not null;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        _read is not null ? _read(buffer, cancellationToken) : throw new NotSupportedException("this stream is write-only");

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        _write is not null ? _write(buffer, cancellationToken) : throw new NotSupportedException("this stream is read-only");

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("use ReadAsync");

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("use WriteAsync");

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}

/// <summary>The client's side of a stream is gone (connection closed, stream reset): what was being written cannot be
/// delivered, and the call writing it should end.</summary>
internal sealed class StreamClosedException(string message, Exception? inner = null) : IOException(message, inner);
