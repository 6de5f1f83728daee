using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace Nacelle.CriServer.Streaming.Spdy;

/// <summary>Limits of one SPDY session.</summary>
internal sealed record SpdySessionOptions
{
    /// <summary>Per stream: how much received data is buffered until its reader catches up (the window granted to the
    /// peer; a peer that ignores windows is held back by TCP instead).</summary>
    public int ReceiveWindow { get; init; } = Spdy.DefaultWindow;

    /// <summary>Peer streams open at once; more are refused (RST_STREAM REFUSED_STREAM).</summary>
    public int MaxConcurrentStreams { get; init; } = 256;

    /// <summary>The largest control frame payload accepted; a larger one is a session error.</summary>
    public int MaxControlFrameSize { get; init; } = 64 * 1024;

    /// <summary>The largest decompressed header block accepted; a larger one is a session error.</summary>
    public int MaxHeaderBlockSize { get; init; } = 64 * 1024;

    /// <summary>The largest data frame payload this side sends.</summary>
    public int MaxDataFramePayload { get; init; } = 128 * 1024;
}

/// <summary>
/// The server side of one SPDY/3.1 session over an upgraded HTTP connection: reads frames, accepts the client's
/// streams (odd ids, increasing), answers PING, follows SETTINGS and WINDOW_UPDATE, and writes frames for its
/// streams under one lock (header blocks share one zlib stream, so they are compressed in send order).
/// Session errors are answered with GOAWAY and the connection closes; stream errors with RST_STREAM.
/// </summary>
/// <remarks>
/// Flow control: this side grants each stream <see cref="SpdySessionOptions.ReceiveWindow"/> and returns it with
/// WINDOW_UPDATE as the stream's reader consumes; received data waits in a buffer of that size, and when it is full
/// the session stops reading the connection (TCP then holds the peer back). On the send side windows are counted
/// always and enforced once the peer shows that it does flow control (a SETTINGS INITIAL_WINDOW_SIZE or a
/// WINDOW_UPDATE): the spdystream library kubelet and kubectl use neither sends WINDOW_UPDATE nor enforces
/// windows, so a server that waited for one would stall every kubectl stream after 64 KiB.
/// </remarks>
internal sealed class SpdySession : IAsyncDisposable
{
    private readonly Stream _transport;
    private readonly SpdyConnectionOutput _output;
    private readonly byte[] _dataHeader = new byte[Spdy.HeaderSize];
    private readonly PipeReader _input;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly SpdyHeaderCompressor _compressor = new();
    private readonly SpdyHeaderDecompressor _decompressor;
    private readonly ConcurrentDictionary<int, SpdyStream> _streams = new();
    private readonly Channel<SpdyStream> _incoming = Channel.CreateBounded<SpdyStream>(new BoundedChannelOptions(16) { SingleWriter = true });
    private readonly CancellationTokenSource _closed = new();
    private readonly Lock _windowLock = new();
    private TaskCompletionSource _windowChanged = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _lastPeerStreamId;
    private int _peerInitialWindow = Spdy.DefaultWindow;
    private long _sessionSendWindow = Spdy.DefaultWindow;
    private bool _flowControlEnforced;
    private int _sessionUnacknowledged;
    private volatile bool _goAwaySent;
    private long _lastActivity = Environment.TickCount64;
    private Task? _run;

    // The data frame being received: its stream (null: discarded), bytes still to come, and its FIN flag.
    private SpdyStream? _dataStream;
    private int _dataRemaining;
    private bool _dataFin;

    /// <param name="transport">The upgraded connection.</param>
    /// <param name="options">The session's limits.</param>
    /// <param name="logger">Where session errors go.</param>
    /// <param name="socket">The connection's socket when nothing (no TLS) sits between <paramref name="transport"/> and
    /// it: frames then go straight to it once the peer has spoken (see <see cref="SpdyConnectionOutput"/>).</param>
    public SpdySession(Stream transport, SpdySessionOptions options, ILogger logger, System.Net.Sockets.Socket? socket = null)
    {
        _transport = transport;
        _output = new SpdyConnectionOutput(transport, socket);
        Options = options;
        _logger = logger;
        _input = PipeReader.Create(transport, new StreamPipeReaderOptions(bufferSize: 64 * 1024, leaveOpen: true));
        _decompressor = new SpdyHeaderDecompressor(options.MaxHeaderBlockSize);
    }

    public SpdySessionOptions Options { get; }

    /// <summary>Streams the peer opens, in order. Completes when the session ends or the peer sent GOAWAY.</summary>
    public ChannelReader<SpdyStream> IncomingStreams => _incoming.Reader;

    /// <summary>Fires when the session is over (the peer went away, a session error, or <see cref="Abort"/>).</summary>
    public CancellationToken Closed => _closed.Token;

    /// <summary>Environment.TickCount64 of the last frame read or written.</summary>
    public long LastActivity => Interlocked.Read(ref _lastActivity);

    /// <summary>True once frames go straight to the connection's socket (see <see cref="SpdyConnectionOutput"/>).</summary>
    public bool WritesDirectly => _output.Direct;

    /// <summary>Why the session ended, once it has (null while it runs or when the peer simply closed).</summary>
    public string? EndReason { get; private set; }

    /// <summary>Starts reading frames; the returned task completes when the session is over and never faults.</summary>
    public Task RunAsync() => _run ??= ReadLoopAsync();

    private void Touch() => Interlocked.Exchange(ref _lastActivity, Environment.TickCount64);

    // ------------------------------------------------------------------ reading

    private async Task ReadLoopAsync()
    {
        try
        {
            while (true)
            {
                var result = await _input.ReadAsync(_closed.Token).ConfigureAwait(false);
                var buffer = result.Buffer;
                if (!buffer.IsEmpty)
                {
                    _output.PeerSpoke();
                }

                buffer = await ProcessAsync(buffer).ConfigureAwait(false);
                _input.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted)
                {
                    if (!buffer.IsEmpty || _dataRemaining > 0)
                    {
                        EndReason = "the connection ended inside a frame";
                    }

                    break;
                }
            }
        }
        catch (SpdyProtocolException e)
        {
            EndReason = e.Message;
            StreamLog.SpdySessionError(_logger, e.Message);
            await TrySendGoAwayAsync(e.Status).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // aborted
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or ConnectionAbortedException or InvalidOperationException)
        {
            EndReason ??= e.Message;
        }
#pragma warning disable CA1031 // the read loop must end the session, never crash the daemon
        catch (Exception e)
#pragma warning restore CA1031
        {
            EndReason = e.Message;
            StreamLog.StreamFailed(_logger, e, "spdy", e.Message);
            await TrySendGoAwayAsync(SpdyGoAwayStatus.InternalError).ConfigureAwait(false);
        }
        finally
        {
            Shutdown();
        }
    }

    /// <summary>Handles every complete frame (and the available part of a data frame) at the start of
    /// <paramref name="buffer"/>; returns what is left for the next read.</summary>
    private async ValueTask<ReadOnlySequence<byte>> ProcessAsync(ReadOnlySequence<byte> buffer)
    {
        while (true)
        {
            if (_dataRemaining > 0)
            {
                if (buffer.IsEmpty)
                {
                    return buffer;
                }

                var take = (int)Math.Min(_dataRemaining, buffer.Length);
                await DeliverAsync(buffer.Slice(0, take)).ConfigureAwait(false);
                buffer = buffer.Slice(take);
                _dataRemaining -= take;
                if (_dataRemaining == 0)
                {
                    EndDataFrame();
                }

                continue;
            }

            if (buffer.Length < Spdy.HeaderSize)
            {
                return buffer;
            }

            var header = SpdyFrameHeader.Read(buffer.Slice(0, Spdy.HeaderSize));
            if (header.IsControl)
            {
                if (header.Length > Options.MaxControlFrameSize)
                {
                    throw new SpdyProtocolException($"control frame of {header.Length} bytes (at most {Options.MaxControlFrameSize})");
                }

                if (buffer.Length < Spdy.HeaderSize + header.Length)
                {
                    return buffer;
                }

                var payload = buffer.Slice(Spdy.HeaderSize, header.Length).ToArray();
                buffer = buffer.Slice(Spdy.HeaderSize + header.Length);
                Touch();
                await HandleControlAsync(header, payload).ConfigureAwait(false);
            }
            else
            {
                buffer = buffer.Slice(Spdy.HeaderSize);
                Touch();
                await BeginDataFrameAsync(header).ConfigureAwait(false);
                if (_dataRemaining == 0)
                {
                    EndDataFrame();
                }
            }
        }
    }

    private async ValueTask BeginDataFrameAsync(SpdyFrameHeader header)
    {
        if (header.StreamId == 0)
        {
            throw new SpdyProtocolException("data frame for stream 0");
        }

        _dataRemaining = header.Length;
        _dataFin = (header.Flags & Spdy.FlagFin) != 0;
        _dataStream = null;
        if (_streams.TryGetValue(header.StreamId, out var stream))
        {
            if (stream.RemoteClosed)
            {
                await SendResetAsync(header.StreamId, SpdyRstStatus.StreamAlreadyClosed).ConfigureAwait(false);
                stream.OnSessionClosed();
                Forget(stream);
                return;
            }

            _dataStream = stream;
        }
        else if (IsUnknown(header.StreamId))
        {
            await SendResetAsync(header.StreamId, SpdyRstStatus.InvalidStream).ConfigureAwait(false);
        }

        // A stream this session closed or reset: data still in flight is dropped silently.
    }

    /// <summary>An id the peer never opened: above its last stream, or even (this side would own it, and opens none).</summary>
    private bool IsUnknown(int streamId) => streamId > _lastPeerStreamId || streamId % 2 == 0;

    private async ValueTask DeliverAsync(ReadOnlySequence<byte> chunk)
    {
        var length = (int)chunk.Length;
        if (_dataStream is { } stream)
        {
            await stream.ReceiveAsync(chunk, _closed.Token).ConfigureAwait(false);
        }

        // SPDY/3.1 session window: returned as data arrives (each stream's buffer is bounded by its own window).
        _sessionUnacknowledged += length;
        if (_sessionUnacknowledged >= Options.ReceiveWindow / 2)
        {
            var delta = _sessionUnacknowledged;
            _sessionUnacknowledged = 0;
            await SendAsync(SpdyFrameCodec.WindowUpdate(0, delta)).ConfigureAwait(false);
        }
    }

    private void EndDataFrame()
    {
        var stream = _dataStream;
        _dataStream = null;
        if (_dataFin && stream is not null)
        {
            stream.OnRemoteFin();
            Forget(stream);
        }
    }

    private async ValueTask HandleControlAsync(SpdyFrameHeader header, byte[] payload)
    {
        if (header.Version != Spdy.Version && header.Type == (ushort)SpdyFrameType.SynStream && payload.Length >= 4)
        {
            // The stream is refused as SPDY asks; its header block cannot be decoded, so the session cannot go on.
            var id = (int)(System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(payload) & 0x7FFFFFFF);
            await SendResetAsync(id, SpdyRstStatus.UnsupportedVersion).ConfigureAwait(false);
        }

        switch (SpdyFrameCodec.ParseControl(header, payload))
        {
            case SynStreamFrame syn:
                await OnSynStreamAsync(syn).ConfigureAwait(false);
                break;
            case SynReplyFrame reply:
                _ = _decompressor.Decompress(reply.HeaderBlock);
                // This side opens no streams, so there is nothing to reply to.
                await SendResetAsync(reply.StreamId, SpdyRstStatus.InvalidStream).ConfigureAwait(false);
                break;
            case HeadersFrame headers:
                _ = _decompressor.Decompress(headers.HeaderBlock);
                await OnHeadersAsync(headers).ConfigureAwait(false);
                break;
            case RstStreamFrame reset:
                if (_streams.TryGetValue(reset.StreamId, out var resetStream))
                {
                    resetStream.OnReset(reset.Status);
                    Forget(resetStream);
                }

                break;
            case SettingsFrame settings:
                OnSettings(settings);
                break;
            case PingFrame ping:
                // Client pings have odd ids and are echoed; even ids would answer pings of ours (none are sent).
                if (ping.Id % 2 == 1)
                {
                    await SendAsync(SpdyFrameCodec.Ping(ping.Id)).ConfigureAwait(false);
                }

                break;
            case GoAwayFrame:
                // The peer opens no more streams; those open go on.
                _incoming.Writer.TryComplete();
                break;
            case WindowUpdateFrame update:
                await OnWindowUpdateAsync(update).ConfigureAwait(false);
                break;
            case UnknownControlFrame:
                // SPDY: control frames of unknown types are ignored.
                break;
        }
    }

    private async ValueTask OnSynStreamAsync(SynStreamFrame syn)
    {
        // Decompressed first, whatever happens to the stream: the zlib state spans the session.
        var block = _decompressor.Decompress(syn.HeaderBlock);
        if (syn.StreamId == 0)
        {
            throw new SpdyProtocolException("SYN_STREAM for stream 0");
        }

        if (syn.StreamId <= _lastPeerStreamId)
        {
            throw new SpdyProtocolException($"SYN_STREAM for stream {syn.StreamId}, not above the last one ({_lastPeerStreamId})");
        }

        _lastPeerStreamId = syn.StreamId;
        if (_goAwaySent)
        {
            return;
        }

        if (syn.StreamId % 2 == 0)
        {
            await SendResetAsync(syn.StreamId, SpdyRstStatus.ProtocolError).ConfigureAwait(false);
            return;
        }

        Dictionary<string, string> headers;
        try
        {
            headers = SpdyHeaderBlock.Decode(block);
        }
        catch (SpdyStreamException e)
        {
            StreamLog.SpdyStreamRefused(_logger, syn.StreamId, e.Message);
            await SendResetAsync(syn.StreamId, e.Status).ConfigureAwait(false);
            return;
        }

        if (_streams.Count >= Options.MaxConcurrentStreams)
        {
            await SendResetAsync(syn.StreamId, SpdyRstStatus.RefusedStream).ConfigureAwait(false);
            return;
        }

        int sendWindow;
        lock (_windowLock)
        {
            sendWindow = _peerInitialWindow;
        }

        var stream = new SpdyStream(this, syn.StreamId, headers, sendWindow,
            remoteFin: (syn.Flags & Spdy.FlagFin) != 0, unidirectional: (syn.Flags & Spdy.FlagUnidirectional) != 0);
        _streams[syn.StreamId] = stream;
        try
        {
            await _incoming.Writer.WriteAsync(stream, _closed.Token).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            await stream.ResetAsync(SpdyRstStatus.RefusedStream).ConfigureAwait(false);
        }
    }

    private async ValueTask OnHeadersAsync(HeadersFrame headers)
    {
        if (_streams.TryGetValue(headers.StreamId, out var stream))
        {
            // Extra headers mean nothing to the channel protocols; only FIN counts.
            if ((headers.Flags & Spdy.FlagFin) != 0)
            {
                stream.OnRemoteFin();
                Forget(stream);
            }
        }
        else if (IsUnknown(headers.StreamId))
        {
            await SendResetAsync(headers.StreamId, SpdyRstStatus.InvalidStream).ConfigureAwait(false);
        }
    }

    private void OnSettings(SettingsFrame settings)
    {
        foreach (var setting in settings.Settings.Where(s => s.Id == Spdy.SettingsInitialWindowSize))
        {
            if (setting.Value > Spdy.MaxWindow)
            {
                throw new SpdyProtocolException($"SETTINGS initial window {setting.Value} is above 2^31-1");
            }

            lock (_windowLock)
            {
                // SPDY: a new initial window changes the window of every open stream by the difference.
                var delta = (int)setting.Value - _peerInitialWindow;
                _peerInitialWindow = (int)setting.Value;
                _flowControlEnforced = true;
                foreach (var stream in _streams.Values)
                {
                    stream.SendWindow += delta;
                }
            }

            SignalWindow();
        }
    }

    private async ValueTask OnWindowUpdateAsync(WindowUpdateFrame update)
    {
        if (update.StreamId == 0)
        {
            lock (_windowLock)
            {
                _flowControlEnforced = true;
                if (update.Delta == 0 || _sessionSendWindow + update.Delta > Spdy.MaxWindow)
                {
                    throw new SpdyProtocolException($"session WINDOW_UPDATE of {update.Delta} (window {_sessionSendWindow})");
                }

                _sessionSendWindow += update.Delta;
            }

            SignalWindow();
            return;
        }

        if (!_streams.TryGetValue(update.StreamId, out var stream))
        {
            return;
        }

        SpdyRstStatus? error = null;
        lock (_windowLock)
        {
            _flowControlEnforced = true;
            if (update.Delta == 0)
            {
                error = SpdyRstStatus.ProtocolError;
            }
            else if (stream.SendWindow + update.Delta > Spdy.MaxWindow)
            {
                error = SpdyRstStatus.FlowControlError;
            }
            else
            {
                stream.SendWindow += update.Delta;
            }
        }

        if (error is { } status)
        {
            StreamLog.SpdyStreamRefused(_logger, update.StreamId, $"WINDOW_UPDATE of {update.Delta}: {status}");
            await stream.ResetAsync(status).ConfigureAwait(false);
            return;
        }

        SignalWindow();
    }

    private void SignalWindow() =>
        Interlocked.Exchange(ref _windowChanged, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    /// <summary>Drops a stream that is closed both ways from the table.</summary>
    internal void Forget(SpdyStream stream)
    {
        if (stream.LocalClosed && stream.RemoteClosed)
        {
            _streams.TryRemove(new KeyValuePair<int, SpdyStream>(stream.Id, stream));
        }
    }

    // ------------------------------------------------------------------ writing

    /// <summary>Writes one whole frame under the write lock; a failed write ends the session.
    /// <paramref name="cancellationToken"/> ends the wait for the lock only: a frame once begun is written whole
    /// (a frame cut short would corrupt every stream's framing), unless the session itself is closed.</summary>
    internal async ValueTask SendAsync(ReadOnlyMemory<byte> frame, CancellationToken cancellationToken = default)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await WriteLockedAsync(frame).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async ValueTask WriteLockedAsync(ReadOnlyMemory<byte> frame, ReadOnlyMemory<byte> payload = default)
    {
        try
        {
            await _output.WriteAsync(frame, payload, _closed.Token).ConfigureAwait(false);
            Touch();
        }
        catch (Exception e) when (IsConnectionFailure(e))
        {
            throw ConnectionClosed(e);
        }
    }

    /// <summary>How a write to the connection fails when the connection is gone: through the stream (Kestrel's
    /// exceptions) or straight on the socket.</summary>
    private static bool IsConnectionFailure(Exception e) =>
        e is IOException or ObjectDisposedException or InvalidOperationException or ConnectionAbortedException or OperationCanceledException
            or System.Net.Sockets.SocketException;

    /// <summary>A failed write ends the session: the frame may be cut short, which corrupts every stream's framing.</summary>
    private StreamClosedException ConnectionClosed(Exception e)
    {
        Abort();
        return new StreamClosedException($"the SPDY connection is closed: {e.Message}", e);
    }

    /// <summary>One data frame: its header (written under the lock into the session's header buffer), then
    /// <paramref name="payload"/> as it is, without a copy into a frame buffer.</summary>
    private async ValueTask SendDataFrameAsync(int streamId, byte flags, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            SpdyFrameCodec.WriteDataHeader(_dataHeader, streamId, flags, payload.Length);
            await WriteLockedAsync(_dataHeader, payload).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>SYN_REPLY (with no headers) for a peer stream.</summary>
    internal async ValueTask SendReplyAsync(int streamId, bool fin)
    {
        await _writeLock.WaitAsync(_closed.Token).ConfigureAwait(false);
        try
        {
            // Compressed under the lock: blocks must reach the peer in the order they went through the compressor.
            var block = _compressor.Compress(SpdyHeaderBlock.Encode([]));
            await WriteLockedAsync(SpdyFrameCodec.SynReply(streamId, fin ? Spdy.FlagFin : (byte)0, block)).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    internal ValueTask SendResetAsync(int streamId, SpdyRstStatus status) => SendAsync(SpdyFrameCodec.RstStream(streamId, status), _closed.Token);

    internal ValueTask SendWindowUpdateAsync(int streamId, int delta) => SendAsync(SpdyFrameCodec.WindowUpdate(streamId, delta), _closed.Token);

    /// <summary>Sends <paramref name="data"/> on a stream in frames of at most MaxDataFramePayload, within the
    /// windows once they are enforced; <paramref name="fin"/> marks the last frame.</summary>
    internal async ValueTask SendDataAsync(SpdyStream stream, ReadOnlyMemory<byte> data, bool fin, CancellationToken cancellationToken)
    {
        if (data.IsEmpty)
        {
            if (fin)
            {
                await SendDataFrameAsync(stream.Id, Spdy.FlagFin, ReadOnlyMemory<byte>.Empty, cancellationToken).ConfigureAwait(false);
            }

            return;
        }

        while (!data.IsEmpty)
        {
            var length = await ReserveWindowAsync(stream, Math.Min(data.Length, Options.MaxDataFramePayload), cancellationToken).ConfigureAwait(false);
            var last = length == data.Length;
            await SendDataFrameAsync(stream.Id, last && fin ? Spdy.FlagFin : (byte)0, data[..length], cancellationToken).ConfigureAwait(false);
            data = data[length..];
        }
    }

    /// <summary>True when this session's frames can go straight to the connection's socket (plain TCP): data waiting in
    /// a pipe is then best sent with <see cref="SendFromPipeAsync"/>.</summary>
    internal bool HasSocket => _output.HasSocket;

    /// <summary>Sends the <paramref name="length"/> bytes waiting in <paramref name="pipe"/> (a non-blocking pipe's read
    /// end) on a stream, one frame for all of it (the pipe bounds it, and the bytes do not enter this process on a plain
    /// TCP connection, where they move from the pipe to the socket) within the windows once they are enforced.</summary>
    internal async ValueTask SendFromPipeAsync(SpdyStream stream, SafeHandle pipe, int length, CancellationToken cancellationToken)
    {
        while (length > 0)
        {
            var frame = await ReserveWindowAsync(stream, Math.Min(length, Spdy.MaxFrameLength), cancellationToken).ConfigureAwait(false);
            await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                SpdyFrameCodec.WriteDataHeader(_dataHeader, stream.Id, 0, frame);
                await _output.WriteFromPipeAsync(_dataHeader, pipe, frame, _closed.Token).ConfigureAwait(false);
                Touch();
            }
            catch (Exception e) when (IsConnectionFailure(e))
            {
                throw ConnectionClosed(e);
            }
            finally
            {
                _writeLock.Release();
            }

            length -= frame;
        }
    }

    /// <summary>Takes up to <paramref name="wanted"/> bytes of the stream's and the session's send windows, waiting
    /// while they are closed (only once the peer enforces flow control).</summary>
    private async ValueTask<int> ReserveWindowAsync(SpdyStream stream, int wanted, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task changed;
            lock (_windowLock)
            {
                var available = Math.Min(stream.SendWindow, _sessionSendWindow);
                if (!_flowControlEnforced || available > 0)
                {
                    var length = _flowControlEnforced ? (int)Math.Min(wanted, available) : wanted;
                    stream.SendWindow -= length;
                    _sessionSendWindow -= length;
                    return length;
                }

                changed = _windowChanged.Task;
            }

            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    // ------------------------------------------------------------------ ending

    /// <summary>Sends GOAWAY (the last stream id this side accepted) once; later streams are ignored.</summary>
    public async ValueTask GoAwayAsync(SpdyGoAwayStatus status)
    {
        if (_goAwaySent)
        {
            return;
        }

        _goAwaySent = true;
        await SendAsync(SpdyFrameCodec.GoAway(_lastPeerStreamId, status), _closed.Token).ConfigureAwait(false);
    }

    private async Task TrySendGoAwayAsync(SpdyGoAwayStatus status)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            _goAwaySent = true;
            await SendAsync(SpdyFrameCodec.GoAway(_lastPeerStreamId, status), timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
        {
            // the peer is gone already
        }
    }

    /// <summary>Ends the session gracefully: GOAWAY, then up to <paramref name="linger"/> for the peer to close
    /// its side (so nothing it has not read yet is lost to a reset), then the connection closes.</summary>
    public async Task CloseAsync(TimeSpan linger)
    {
        try
        {
            await GoAwayAsync(SpdyGoAwayStatus.Ok).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
        {
            // already gone
        }

        if (_run is not null)
        {
            await _run.WaitAsync(linger).ContinueWith(static _ => { }, TaskScheduler.Default).ConfigureAwait(false);
        }

        Abort();
    }

    /// <summary>Closes the connection at once; every stream ends.</summary>
    public void Abort()
    {
        try
        {
            _closed.Cancel();
        }
        catch (ObjectDisposedException)
        {
            return;
        }

        try
        {
            _transport.Dispose();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
        {
            // closing a broken connection
        }
    }

    private void Shutdown()
    {
        _incoming.Writer.TryComplete();
        foreach (var stream in _streams.Values)
        {
            stream.OnSessionClosed();
        }

        _streams.Clear();
        Abort();
    }

    public async ValueTask DisposeAsync()
    {
        Abort();
        if (_run is not null)
        {
            await _run.ConfigureAwait(false);
        }

        await _input.CompleteAsync().ConfigureAwait(false);
        // The zlib streams are freed once no frame can be written any more.
        await _writeLock.WaitAsync().ConfigureAwait(false);
        _compressor.Dispose();
        _decompressor.Dispose();
    }
}
