using System.Buffers;
using System.IO.Pipelines;
using Nacelle.CriServer.Streaming.Spdy;

namespace Nacelle.Tests.Unit.Streaming;

/// <summary>One end of an in-memory connection: reads what the other end writes.</summary>
internal sealed class DuplexStream(Stream input, Stream output) : Stream
{
    public static (DuplexStream Server, DuplexStream Client) Pair()
    {
        var toServer = new Pipe();
        var toClient = new Pipe();
        return (new DuplexStream(toServer.Reader.AsStream(), toClient.Writer.AsStream()),
            new DuplexStream(toClient.Reader.AsStream(), toServer.Writer.AsStream()));
    }

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => input.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        input.ReadAsync(buffer, offset, count, cancellationToken);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        output.WriteAsync(buffer, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        output.WriteAsync(buffer, offset, count, cancellationToken);

    public override Task FlushAsync(CancellationToken cancellationToken) => output.FlushAsync(cancellationToken);

    public override void Flush() => output.Flush();

    public override int Read(byte[] buffer, int offset, int count) => input.Read(buffer, offset, count);

    public override void Write(byte[] buffer, int offset, int count) => output.Write(buffer, offset, count);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            input.Dispose();
            output.Dispose();
        }

        base.Dispose(disposing);
    }
}

/// <summary>A frame the raw peer received: its header, payload, and (for control frames) the parsed frame and any
/// decompressed headers.</summary>
internal sealed record ReceivedFrame(SpdyFrameHeader Header, byte[] Payload, SpdyControlFrame? Control, IReadOnlyDictionary<string, string>? Headers)
{
    public bool IsData => !Header.IsControl;
}

/// <summary>
/// A SPDY client written frame by frame with the codec under test (and its own compression streams), for tests that
/// need to send what a well-behaved client never would.
/// </summary>
internal sealed class RawSpdyPeer(Stream transport) : IAsyncDisposable
{
    private readonly PipeReader _reader = PipeReader.Create(transport);
    private readonly SpdyHeaderCompressor _compressor = new();
    private readonly SpdyHeaderDecompressor _decompressor = new(1 << 20);

    public Task SendAsync(byte[] frame) => transport.WriteAsync(frame).AsTask().ContinueWith(_ => transport.FlushAsync()).Unwrap();

    public Task SynStreamAsync(int id, string streamType, byte flags = 0, params (string Name, string Value)[] extra) =>
        SendAsync(SpdyFrameCodec.SynStream(id, 0, 0, flags, Compress([new("streamtype", streamType), .. extra.Select(e => new KeyValuePair<string, string>(e.Name, e.Value))])));

    public byte[] Compress(IReadOnlyList<KeyValuePair<string, string>> headers) => _compressor.Compress(SpdyHeaderBlock.Encode(headers));

    public Task DataAsync(int id, byte[] data, bool fin = false) => SendAsync(SpdyFrameCodec.Data(id, fin ? Spdy.FlagFin : (byte)0, data));

    /// <summary>The next frame, or null when the server closed the connection.</summary>
    public async Task<ReceivedFrame?> ReadAsync(TimeSpan? timeout = null)
    {
        using var cancel = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(20));
        while (true)
        {
            var result = await _reader.ReadAsync(cancel.Token);
            var buffer = result.Buffer;
            if (buffer.Length >= Spdy.HeaderSize)
            {
                var header = SpdyFrameHeader.Read(buffer.Slice(0, Spdy.HeaderSize));
                if (buffer.Length >= Spdy.HeaderSize + header.Length)
                {
                    var payload = buffer.Slice(Spdy.HeaderSize, header.Length).ToArray();
                    _reader.AdvanceTo(buffer.GetPosition(Spdy.HeaderSize + header.Length));
                    if (!header.IsControl)
                    {
                        return new ReceivedFrame(header, payload, null, null);
                    }

                    var control = SpdyFrameCodec.ParseControl(header, payload);
                    var block = control switch
                    {
                        SynReplyFrame r => r.HeaderBlock,
                        SynStreamFrame s => s.HeaderBlock,
                        HeadersFrame h => h.HeaderBlock,
                        _ => null,
                    };
                    return new ReceivedFrame(header, payload, control, block is null ? null : SpdyHeaderBlock.Decode(_decompressor.Decompress(block)));
                }
            }

            if (result.IsCompleted)
            {
                _reader.AdvanceTo(buffer.End);
                return null;
            }

            _reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>Frames until one matches (skipping the rest), or null at the end of the connection.</summary>
    public async Task<ReceivedFrame?> ReadUntilAsync(Func<ReceivedFrame, bool> match, TimeSpan? timeout = null)
    {
        while (await ReadAsync(timeout) is { } frame)
        {
            if (match(frame))
            {
                return frame;
            }
        }

        return null;
    }

    public async ValueTask DisposeAsync()
    {
        await _reader.CompleteAsync();
        await transport.DisposeAsync();
        _compressor.Dispose();
        _decompressor.Dispose();
    }
}
