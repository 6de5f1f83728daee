using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.InteropServices;

namespace Nacelle.CriServer.Streaming.Spdy;

/// <summary>
/// One stream the peer opened on a <see cref="SpdySession"/>: its headers, its received data (buffered up to the
/// session's receive window, returned to the peer with WINDOW_UPDATE as it is read) and its send side.
/// One reader and one writer at a time.
/// </summary>
internal sealed class SpdyStream
{
    private readonly SpdySession _session;
    private readonly Pipe _inbound;
    private readonly CancellationTokenSource _aborted = new();
    private readonly int _receiveWindow;
    private int _unacknowledged;
    private int _discarding;
    private int _localClosed;
    private int _remoteClosed;
    private int _replied;

    internal SpdyStream(SpdySession session, int id, IReadOnlyDictionary<string, string> headers, long sendWindow, bool remoteFin, bool unidirectional)
    {
        _session = session;
        Id = id;
        Headers = headers;
        SendWindow = sendWindow;
        _receiveWindow = session.Options.ReceiveWindow;
        _inbound = new Pipe(new PipeOptions(
            pauseWriterThreshold: _receiveWindow, resumeWriterThreshold: _receiveWindow / 2, useSynchronizationContext: false));
        if (remoteFin)
        {
            OnRemoteFin();
        }

        if (unidirectional)
        {
            // The peer will not read: this side may not send.
            _localClosed = 1;
        }
    }

    public int Id { get; }

    /// <summary>The SYN_STREAM's headers by (lower-case) name.</summary>
    public IReadOnlyDictionary<string, string> Headers { get; }

    /// <summary>Guarded by the session's window lock.</summary>
    internal long SendWindow { get; set; }

    public bool LocalClosed => Volatile.Read(ref _localClosed) != 0;

    public bool RemoteClosed => Volatile.Read(ref _remoteClosed) != 0;

    /// <summary>Fires when the stream was reset (by either side) or the session ended.</summary>
    public CancellationToken Aborted => _aborted.Token;

    /// <summary>True when the peer reset the stream (RST_STREAM) rather than finishing it.</summary>
    public bool ResetByPeer { get; private set; }

    public string? Header(string name) => Headers.TryGetValue(name.ToLowerInvariant(), out var value) ? value : null;

    /// <summary>Accepts the stream (SYN_REPLY), once.</summary>
    public async ValueTask ReplyAsync()
    {
        if (Interlocked.Exchange(ref _replied, 1) == 0)
        {
            await _session.SendReplyAsync(Id, fin: false).ConfigureAwait(false);
        }
    }

    // ------------------------------------------------------------------ receiving

    /// <summary>Reads received data; 0 once the peer finished the stream (FIN), reset it, or the session ended.</summary>
    public async ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (_aborted.IsCancellationRequested)
            {
                return 0;
            }

            var result = await _inbound.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (buffer.IsEmpty)
            {
                _inbound.Reader.AdvanceTo(buffer.Start);
                if (result.IsCompleted)
                {
                    return 0;
                }

                continue;
            }

            var length = (int)Math.Min(buffer.Length, destination.Length);
            buffer.Slice(0, length).CopyTo(destination.Span);
            _inbound.Reader.AdvanceTo(buffer.GetPosition(length));
            await AcknowledgeAsync(length).ConfigureAwait(false);
            return length;
        }
    }

    /// <summary>This side will not read the stream: what arrives from now on is dropped (and its window returned).</summary>
    public void DiscardInput()
    {
        if (Interlocked.Exchange(ref _discarding, 1) == 0)
        {
            _inbound.Reader.Complete();
        }
    }

    /// <summary>The session's read loop hands over a data frame's payload; waits while the buffer is full.</summary>
    internal async ValueTask ReceiveAsync(ReadOnlySequence<byte> data, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _discarding) == 0 && !_aborted.IsCancellationRequested)
        {
            foreach (var segment in data)
            {
                _inbound.Writer.Write(segment.Span);
            }

            var flushed = await _inbound.Writer.FlushAsync(cancellationToken).ConfigureAwait(false);
            if (!flushed.IsCompleted && !flushed.IsCanceled)
            {
                return;
            }
        }

        // Nobody reads this stream: the data is dropped, its window returned.
        await AcknowledgeAsync((int)data.Length).ConfigureAwait(false);
    }

    private async ValueTask AcknowledgeAsync(int length)
    {
        var pending = Interlocked.Add(ref _unacknowledged, length);
        if (pending >= _receiveWindow / 2 && !RemoteClosed)
        {
            var delta = Interlocked.Exchange(ref _unacknowledged, 0);
            if (delta > 0)
            {
                try
                {
                    await _session.SendWindowUpdateAsync(Id, delta).ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or OperationCanceledException)
                {
                    // the session is over; the reader sees the end of the stream next
                }
            }
        }
    }

    // The inbound pipe's writer belongs to the session's read loop: only the On* methods below (called from that
    // loop) complete it. This side's own aborts only wake the reader and the loop.

    internal void OnRemoteFin()
    {
        if (Interlocked.Exchange(ref _remoteClosed, 1) == 0)
        {
            _inbound.Writer.Complete();
        }
    }

    internal void OnReset(SpdyRstStatus status)
    {
        _ = status;
        ResetByPeer = true;
        OnSessionClosed();
    }

    /// <summary>The stream is dead without a frame of its own: reset by the peer, or the session ended.</summary>
    internal void OnSessionClosed()
    {
        Interlocked.Exchange(ref _localClosed, 1);
        Cancel();
        if (Interlocked.Exchange(ref _remoteClosed, 1) == 0)
        {
            _inbound.Writer.Complete();
        }
    }

    /// <summary>This side gives the stream up: reads end, a read loop waiting on its buffer moves on.</summary>
    private void AbortLocally()
    {
        Interlocked.Exchange(ref _localClosed, 1);
        Interlocked.Exchange(ref _remoteClosed, 1);
        Cancel();
        _inbound.Reader.CancelPendingRead();
        _inbound.Writer.CancelPendingFlush();
    }

    private void Cancel()
    {
        try
        {
            _aborted.Cancel();
        }
        catch (AggregateException)
        {
            // a callback failed; the stream is aborted all the same
        }
    }

    // ------------------------------------------------------------------ sending

    /// <summary>Sends data; throws IOException when the stream or the session is closed.</summary>
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (LocalClosed)
        {
            throw new StreamClosedException(ResetByPeer ? $"stream {Id} was reset by the client" : $"stream {Id} is closed");
        }

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _aborted.Token);
        try
        {
            await _session.SendDataAsync(this, data, fin: false, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_aborted.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new StreamClosedException($"stream {Id} was closed while writing");
        }
    }

    /// <summary>True when data waiting in a pipe is best sent with <see cref="WriteFromPipeAsync"/> (the session writes
    /// to a plain TCP socket, where it moves without a copy).</summary>
    public bool PrefersPipe => _session.HasSocket;

    /// <summary>Sends the <paramref name="length"/> bytes waiting in <paramref name="pipe"/> (a non-blocking pipe's read
    /// end); throws IOException when the stream or the session is closed.</summary>
    public async ValueTask WriteFromPipeAsync(SafeHandle pipe, int length, CancellationToken cancellationToken)
    {
        if (LocalClosed)
        {
            throw new StreamClosedException(ResetByPeer ? $"stream {Id} was reset by the client" : $"stream {Id} is closed");
        }

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _aborted.Token);
        try
        {
            await _session.SendFromPipeAsync(this, pipe, length, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_aborted.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new StreamClosedException($"stream {Id} was closed while writing");
        }
    }

    /// <summary>Finishes this side of the stream (an empty data frame with FIN), once.</summary>
    public async ValueTask CloseWriteAsync()
    {
        if (Interlocked.Exchange(ref _localClosed, 1) != 0)
        {
            return;
        }

        try
        {
            await _session.SendDataAsync(this, ReadOnlyMemory<byte>.Empty, fin: true, _session.Closed).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            // the session is over: the stream is closed either way
        }

        _session.Forget(this);
    }

    /// <summary>Resets the stream (RST_STREAM), unless it is already closed both ways.</summary>
    public async ValueTask ResetAsync(SpdyRstStatus status)
    {
        var wasOpen = !(LocalClosed && RemoteClosed);
        AbortLocally();
        if (wasOpen)
        {
            try
            {
                await _session.SendResetAsync(Id, status).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException)
            {
                // the session is over
            }
        }

        _session.Forget(this);
    }
}
