using System.Buffers;
using System.Buffers.Text;

namespace Nacelle.CriServer.Streaming.WebSockets;

/// <summary>What one received message (or fragment of one) means: data for a channel, or v5's close signal.</summary>
internal readonly record struct WebSocketChannelEvent(int Channel, ReadOnlyMemory<byte> Data, bool CloseSignal);

/// <summary>
/// The channel framing of Kubernetes' WebSocket protocols: every message starts with its channel, as a byte
/// (binary protocols: channel.k8s.io, v4, v5, and port-forward) or as an ASCII digit followed by base64 data
/// (base64.channel.k8s.io, v4.base64.channel.k8s.io). v5 adds the close signal, a message [255, channel] that ends
/// the input of that channel. Incoming messages are decoded fragment by fragment, so no message is buffered whole.
/// </summary>
internal sealed class WebSocketChannelCodec(bool base64, bool closeSignal)
{
    /// <summary>The v5 close signal's first byte.</summary>
    public const byte CloseSignalByte = 255;

    private readonly byte[] _carry = new byte[4];
    private int _carried;
    private int _channel = -1;
    private bool _awaitingCloseChannel;
    private bool _ignoreRest;

    public bool Base64 => base64;

    /// <summary>One outgoing message: the channel, then the data.</summary>
    public byte[] Encode(int channel, ReadOnlySpan<byte> data)
    {
        if (!base64)
        {
            var message = new byte[1 + data.Length];
            message[0] = (byte)channel;
            data.CopyTo(message.AsSpan(1));
            return message;
        }

        var encoded = new byte[1 + System.Buffers.Text.Base64.GetMaxEncodedToUtf8Length(data.Length)];
        encoded[0] = (byte)('0' + channel);
        System.Buffers.Text.Base64.EncodeToUtf8(data, encoded.AsSpan(1), out _, out var written);
        return encoded.AsSpan(0, 1 + written).ToArray();
    }

    /// <summary>Decodes one received fragment into <paramref name="events"/> (data events may point into
    /// <paramref name="fragment"/>: use them before the buffer is reused). Invalid framing throws
    /// <see cref="FormatException"/>.</summary>
    public void Feed(ReadOnlyMemory<byte> fragment, bool endOfMessage, List<WebSocketChannelEvent> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        var data = fragment;
        if (_channel < 0 && !_awaitingCloseChannel && !_ignoreRest && !data.IsEmpty)
        {
            var first = data.Span[0];
            data = data[1..];
            if (closeSignal && first == CloseSignalByte)
            {
                _awaitingCloseChannel = true;
            }
            else if (base64)
            {
                _channel = first is >= (byte)'0' and <= (byte)'9'
                    ? first - '0'
                    : throw new FormatException($"base64 channel message starts with byte {first}, not a channel digit");
            }
            else
            {
                _channel = first;
            }
        }

        if (_awaitingCloseChannel && !data.IsEmpty)
        {
            events.Add(new WebSocketChannelEvent(data.Span[0], ReadOnlyMemory<byte>.Empty, CloseSignal: true));
            _awaitingCloseChannel = false;
            _ignoreRest = true;
        }

        if (_channel >= 0 && !data.IsEmpty)
        {
            var payload = base64 ? DecodeBase64(data.Span) : data;
            if (!payload.IsEmpty)
            {
                events.Add(new WebSocketChannelEvent(_channel, payload, CloseSignal: false));
            }
        }

        if (endOfMessage)
        {
            var carried = _carried;
            _channel = -1;
            _awaitingCloseChannel = false;
            _ignoreRest = false;
            _carried = 0;
            if (carried != 0)
            {
                throw new FormatException($"base64 channel message ends with {carried} stray characters");
            }
        }
    }

    /// <summary>Decodes whole 4-character groups, carrying a partial group over to the next fragment.</summary>
    private byte[] DecodeBase64(ReadOnlySpan<byte> text)
    {
        var total = _carried + text.Length;
        var whole = total - (total % 4);
        var input = ArrayPool<byte>.Shared.Rent(Math.Max(whole, 4));
        try
        {
            var taken = Math.Max(0, whole - _carried);
            if (whole > 0)
            {
                _carry.AsSpan(0, _carried).CopyTo(input);
                text[..taken].CopyTo(input.AsSpan(_carried));
            }
            else
            {
                taken = 0;
            }

            var rest = text[taken..];
            if (whole > 0)
            {
                _carried = 0;
            }

            rest.CopyTo(_carry.AsSpan(_carried));
            _carried += rest.Length;
            if (whole == 0)
            {
                return [];
            }

            var output = new byte[System.Buffers.Text.Base64.GetMaxDecodedFromUtf8Length(whole)];
            var status = System.Buffers.Text.Base64.DecodeFromUtf8(input.AsSpan(0, whole), output, out _, out var written);
            return status == OperationStatus.Done
                ? output.AsSpan(0, written).ToArray()
                : throw new FormatException("base64 channel message holds invalid base64");
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(input);
        }
    }
}
