using System.Buffers;
using System.IO.Pipelines;
using System.Net.WebSockets;
using Microsoft.Extensions.Logging;

namespace Nacelle.CriServer.Streaming.WebSockets;

/// <summary>
/// Numbered channels over one WebSocket (<see cref="WebSocketChannelCodec"/> framing). Received data of a readable
/// channel waits in a buffer of <see cref="ReceiveBuffer"/> bytes for its reader; when it is full the socket is not
/// read (TCP holds the client back). Data for channels nobody reads is dropped. Sends are one message per write
/// (at most <see cref="MaxMessagePayload"/> bytes of data), one at a time.
/// </summary>
internal sealed class WebSocketChannels
{
    public const int ReceiveBuffer = 64 * 1024;
    public const int MaxMessagePayload = 32 * 1024;

    private readonly WebSocket _socket;
    private readonly WebSocketChannelCodec _codec;
    private readonly ILogger _logger;
    private readonly Dictionary<int, Pipe> _inbound = [];
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly CancellationTokenSource _closed = new();
    private long _lastActivity = Environment.TickCount64;
    private Task? _run;

    public WebSocketChannels(WebSocket socket, WebSocketChannelCodec codec, IEnumerable<int> readableChannels, ILogger logger)
    {
        _socket = socket;
        _codec = codec;
        _logger = logger;
        foreach (var channel in readableChannels)
        {
            _inbound[channel] = new Pipe(new PipeOptions(pauseWriterThreshold: ReceiveBuffer, resumeWriterThreshold: ReceiveBuffer / 2,
                useSynchronizationContext: false));
        }
    }

    /// <summary>Fires when the client closed or dropped the connection, or the session was aborted.</summary>
    public CancellationToken Closed => _closed.Token;

    public long LastActivity => Interlocked.Read(ref _lastActivity);

    public string? EndReason { get; private set; }

    public Task RunAsync() => _run ??= ReceiveLoopAsync();

    private void Touch() => Interlocked.Exchange(ref _lastActivity, Environment.TickCount64);

    private async Task ReceiveLoopAsync()
    {
        var buffer = new byte[16 * 1024];
        var events = new List<WebSocketChannelEvent>();
        var ended = new HashSet<int>();
        try
        {
            while (true)
            {
                var result = await _socket.ReceiveAsync(buffer.AsMemory(), _closed.Token).ConfigureAwait(false);
                Touch();
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    break;
                }

                events.Clear();
                _codec.Feed(buffer.AsMemory(0, result.Count), result.EndOfMessage, events);
                foreach (var item in events)
                {
                    if (!_inbound.TryGetValue(item.Channel, out var pipe) || ended.Contains(item.Channel))
                    {
                        continue;
                    }

                    if (item.CloseSignal)
                    {
                        ended.Add(item.Channel);
                        await pipe.Writer.CompleteAsync().ConfigureAwait(false);
                        continue;
                    }

                    await pipe.Writer.WriteAsync(item.Data, _closed.Token).ConfigureAwait(false);
                }
            }
        }
        catch (FormatException e)
        {
            EndReason = e.Message;
            StreamLog.WebSocketProtocolError(_logger, e.Message);
            await TryCloseOutputAsync(WebSocketCloseStatus.InvalidPayloadData, e.Message).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            EndReason ??= e.Message;
        }
        finally
        {
            foreach (var (channel, pipe) in _inbound)
            {
                if (ended.Add(channel))
                {
                    await pipe.Writer.CompleteAsync().ConfigureAwait(false);
                }
            }

            Cancel();
        }
    }

    /// <summary>Reads a readable channel; 0 at its end (v5 close signal, or the connection closed).</summary>
    public async ValueTask<int> ReadAsync(int channel, Memory<byte> destination, CancellationToken cancellationToken)
    {
        var reader = _inbound[channel].Reader;
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (buffer.IsEmpty)
            {
                reader.AdvanceTo(buffer.Start);
                if (result.IsCompleted || result.IsCanceled)
                {
                    return 0;
                }

                continue;
            }

            var length = (int)Math.Min(buffer.Length, destination.Length);
            buffer.Slice(0, length).CopyTo(destination.Span);
            reader.AdvanceTo(buffer.GetPosition(length));
            return length;
        }
    }

    /// <summary>This side will not read <paramref name="channel"/> any more: its data is dropped from now on.</summary>
    public void StopReading(int channel)
    {
        if (_inbound.TryGetValue(channel, out var pipe))
        {
            pipe.Reader.Complete();
        }
    }

    /// <summary>Sends <paramref name="data"/> on <paramref name="channel"/>; an empty write sends an empty message.</summary>
    public async ValueTask WriteAsync(int channel, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        do
        {
            var chunk = data[..Math.Min(data.Length, MaxMessagePayload)];
            var message = _codec.Encode(channel, chunk.Span);
            // The caller's token ends the wait for the lock only: a cancelled send would abort the whole socket.
            await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await _socket.SendAsync(message, _codec.Base64 ? WebSocketMessageType.Text : WebSocketMessageType.Binary,
                    endOfMessage: true, _closed.Token).ConfigureAwait(false);
                Touch();
            }
            catch (Exception e) when (e is WebSocketException or ObjectDisposedException or OperationCanceledException)
            {
                Cancel();
                throw new StreamClosedException($"the WebSocket connection is closed: {e.Message}", e);
            }
            finally
            {
                _sendLock.Release();
            }

            data = data[chunk.Length..];
        }
        while (!data.IsEmpty);
    }

    /// <summary>Ends the session gracefully: a close frame, up to <paramref name="linger"/> for the client's, then
    /// the connection is cut.</summary>
    public async Task CloseAsync(TimeSpan linger)
    {
        await TryCloseOutputAsync(WebSocketCloseStatus.NormalClosure, null).ConfigureAwait(false);
        if (_run is not null)
        {
            await _run.WaitAsync(linger).ContinueWith(static _ => { }, TaskScheduler.Default).ConfigureAwait(false);
        }

        Abort();
    }

    private async Task TryCloseOutputAsync(WebSocketCloseStatus status, string? description)
    {
        // A send stuck on a client that does not read would hold the lock: then the connection is cut instead.
        if (!await _sendLock.WaitAsync(StreamContext.Linger).ConfigureAwait(false))
        {
            Abort();
            return;
        }

        try
        {
            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                using var timeout = new CancellationTokenSource(StreamContext.Linger);
                await _socket.CloseOutputAsync(status, description is { Length: > 100 } ? description[..100] : description, timeout.Token)
                    .ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException)
        {
            // the client is gone
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>Cuts the connection at once.</summary>
    public void Abort()
    {
        Cancel();
        _socket.Abort();
    }

    private void Cancel()
    {
        try
        {
            _closed.Cancel();
        }
        catch (AggregateException)
        {
            // a callback failed; the session is closed all the same
        }
    }
}
