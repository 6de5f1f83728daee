using System.Text.Json;
using System.Threading.Channels;
using Nacelle.Sandbox.Streams;

namespace Nacelle.CriServer.Streaming;

/// <summary>
/// The resize stream/channel: a byte stream of JSON objects <c>{"Width":W,"Height":H}</c> (client-go writes one per
/// line; names match case-insensitively, as Go's decoder does), which may arrive split anywhere. Invalid input ends
/// the resize stream, as in kubelet.
/// </summary>
internal sealed class ResizeDecoder
{
    /// <summary>Longest object accepted; a client that sends more without closing one is refused.</summary>
    public const int MaxObjectSize = 4096;

    private readonly List<byte> _pending = [];
    private int _depth;
    private bool _inString;
    private bool _escaped;

    /// <summary>The sizes completed by <paramref name="data"/>; throws <see cref="FormatException"/> on invalid input.</summary>
    public IReadOnlyList<TerminalSize> Feed(ReadOnlySpan<byte> data)
    {
        var sizes = new List<TerminalSize>();
        foreach (var b in data)
        {
            if (_depth == 0 && !_inString)
            {
                if (b is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t')
                {
                    continue;
                }

                if (b != (byte)'{')
                {
                    throw new FormatException($"resize data starts with '{(char)b}', not a JSON object");
                }
            }

            _pending.Add(b);
            if (_pending.Count > MaxObjectSize)
            {
                throw new FormatException($"resize object longer than {MaxObjectSize} bytes");
            }

            if (_inString)
            {
                if (_escaped)
                {
                    _escaped = false;
                }
                else if (b == (byte)'\\')
                {
                    _escaped = true;
                }
                else if (b == (byte)'"')
                {
                    _inString = false;
                }

                continue;
            }

            switch (b)
            {
                case (byte)'"':
                    _inString = true;
                    break;
                case (byte)'{' or (byte)'[':
                    _depth++;
                    break;
                case (byte)'}' or (byte)']':
                    if (--_depth == 0)
                    {
                        sizes.Add(Parse([.. _pending]));
                        _pending.Clear();
                    }

                    break;
            }
        }

        return sizes;
    }

    private static TerminalSize Parse(byte[] json)
    {
        ushort width = 0, height = 0;
        try
        {
            var reader = new Utf8JsonReader(json);
            reader.Read();
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                throw new FormatException("resize data is not a JSON object");
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var name = reader.GetString();
                reader.Read();
                if (string.Equals(name, "width", StringComparison.OrdinalIgnoreCase))
                {
                    width = Dimension(ref reader, "Width");
                }
                else if (string.Equals(name, "height", StringComparison.OrdinalIgnoreCase))
                {
                    height = Dimension(ref reader, "Height");
                }
                else
                {
                    reader.Skip();
                }
            }
        }
        catch (JsonException e)
        {
            throw new FormatException($"resize data is not valid JSON: {e.Message}", e);
        }

        return new TerminalSize(width, height);
    }

    private static ushort Dimension(ref Utf8JsonReader reader, string name) =>
        reader.TokenType == JsonTokenType.Number && reader.TryGetUInt16(out var value)
            ? value
            : throw new FormatException($"resize {name} is not a number from 0 to 65535");

    /// <summary>Reads resize objects from <paramref name="source"/> into <paramref name="sizes"/> until the source
    /// ends or sends something invalid; completes the channel either way.</summary>
    public static async Task PumpAsync(Stream source, ChannelWriter<TerminalSize> sizes, CancellationToken cancellationToken)
    {
        var decoder = new ResizeDecoder();
        var buffer = new byte[1024];
        try
        {
            while (true)
            {
                var read = await source.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                foreach (var size in decoder.Feed(buffer.AsSpan(0, read)))
                {
                    sizes.TryWrite(size);
                }
            }
        }
        catch (Exception e) when (e is FormatException or IOException or OperationCanceledException)
        {
            // No more resizes: the terminal keeps its last size.
        }
        finally
        {
            sizes.TryComplete();
        }
    }

    /// <summary>Starts reading sizes from <paramref name="read"/> (the resize stream or channel) into a channel that
    /// keeps only the latest (a slow backend skips sizes, never holds the client back); <paramref name="pump"/>
    /// ends with the stream.</summary>
    public static ChannelReader<TerminalSize> Start(Func<Memory<byte>, CancellationToken, ValueTask<int>> read, CancellationToken cancellationToken,
        out Task pump)
    {
        var sizes = Channel.CreateBounded<TerminalSize>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest, SingleWriter = true });
        pump = PumpAsync(ChannelStream.Reading(read), sizes.Writer, cancellationToken);
        return sizes.Reader;
    }
}
