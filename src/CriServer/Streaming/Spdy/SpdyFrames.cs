using System.Buffers.Binary;

namespace Nacelle.CriServer.Streaming.Spdy;

/// <summary>Control frame types of SPDY/3.1 (NOOP and CREDENTIAL are gone from 3.1).</summary>
internal enum SpdyFrameType : ushort
{
    SynStream = 1,
    SynReply = 2,
    RstStream = 3,
    Settings = 4,
    Ping = 6,
    GoAway = 7,
    Headers = 8,
    WindowUpdate = 9,
}

/// <summary>RST_STREAM status codes.</summary>
internal enum SpdyRstStatus
{
    ProtocolError = 1,
    InvalidStream = 2,
    RefusedStream = 3,
    UnsupportedVersion = 4,
    Cancel = 5,
    InternalError = 6,
    FlowControlError = 7,
    StreamInUse = 8,
    StreamAlreadyClosed = 9,
    FrameTooLarge = 11,
}

/// <summary>GOAWAY status codes.</summary>
internal enum SpdyGoAwayStatus
{
    Ok = 0,
    ProtocolError = 1,
    InternalError = 2,
}

/// <summary>Flags and protocol numbers.</summary>
internal static class Spdy
{
    public const ushort Version = 3;

    /// <summary>FLAG_FIN on data frames, SYN_STREAM, SYN_REPLY and HEADERS: the sender's last frame on the stream.</summary>
    public const byte FlagFin = 0x01;

    /// <summary>FLAG_UNIDIRECTIONAL on SYN_STREAM: the recipient may not send on the stream.</summary>
    public const byte FlagUnidirectional = 0x02;

    /// <summary>SETTINGS id of the initial per-stream window.</summary>
    public const int SettingsInitialWindowSize = 7;

    /// <summary>The window every stream (and, in 3.1, the session) starts with.</summary>
    public const int DefaultWindow = 64 * 1024;

    public const int MaxWindow = int.MaxValue;

    /// <summary>Frame header: 8 bytes before every frame's payload.</summary>
    public const int HeaderSize = 8;

    /// <summary>The largest length a frame header can express (24 bits).</summary>
    public const int MaxFrameLength = 0xFFFFFF;
}

/// <summary>A frame header. Control frames carry a version and type; data frames a stream id.</summary>
internal readonly record struct SpdyFrameHeader(bool IsControl, ushort Version, ushort Type, int StreamId, byte Flags, int Length)
{
    /// <summary>Reads the 8 header bytes from a buffer that may span segments.</summary>
    public static SpdyFrameHeader Read(System.Buffers.ReadOnlySequence<byte> bytes)
    {
        Span<byte> header = stackalloc byte[Spdy.HeaderSize];
        System.Buffers.BuffersExtensions.CopyTo(bytes.Slice(0, Spdy.HeaderSize), header);
        return Read(header);
    }

    /// <summary>Reads the 8 header bytes.</summary>
    public static SpdyFrameHeader Read(ReadOnlySpan<byte> bytes)
    {
        var first = BinaryPrimitives.ReadUInt32BigEndian(bytes);
        var flags = bytes[4];
        var length = (int)(BinaryPrimitives.ReadUInt32BigEndian(bytes[4..]) & 0xFFFFFF);
        return (first & 0x80000000) != 0
            ? new SpdyFrameHeader(true, (ushort)((first >> 16) & 0x7FFF), (ushort)(first & 0xFFFF), 0, flags, length)
            : new SpdyFrameHeader(false, 0, 0, (int)(first & 0x7FFFFFFF), flags, length);
    }
}

/// <summary>A parsed control frame. Header blocks stay compressed: only the session's decompressor may read them,
/// in frame order.</summary>
internal abstract record SpdyControlFrame;

internal sealed record SynStreamFrame(int StreamId, int AssociatedStreamId, byte Priority, byte Flags, byte[] HeaderBlock) : SpdyControlFrame;

internal sealed record SynReplyFrame(int StreamId, byte Flags, byte[] HeaderBlock) : SpdyControlFrame;

internal sealed record RstStreamFrame(int StreamId, SpdyRstStatus Status) : SpdyControlFrame;

internal sealed record SpdySetting(byte Flags, int Id, uint Value);

internal sealed record SettingsFrame(byte Flags, IReadOnlyList<SpdySetting> Settings) : SpdyControlFrame;

internal sealed record PingFrame(uint Id) : SpdyControlFrame;

internal sealed record GoAwayFrame(int LastGoodStreamId, SpdyGoAwayStatus Status) : SpdyControlFrame;

internal sealed record HeadersFrame(int StreamId, byte Flags, byte[] HeaderBlock) : SpdyControlFrame;

internal sealed record WindowUpdateFrame(int StreamId, int Delta) : SpdyControlFrame;

/// <summary>A control frame of a type SPDY/3.1 does not define: the recipient must ignore it.</summary>
internal sealed record UnknownControlFrame(ushort Type) : SpdyControlFrame;

/// <summary>A session error: the session answers with GOAWAY and closes.</summary>
internal sealed class SpdyProtocolException(string message, SpdyGoAwayStatus status = SpdyGoAwayStatus.ProtocolError) : Exception(message)
{
    public SpdyGoAwayStatus Status { get; } = status;
}

/// <summary>A stream error: the stream is answered with RST_STREAM; the session goes on.</summary>
internal sealed class SpdyStreamException(string message, SpdyRstStatus status) : Exception(message)
{
    public SpdyRstStatus Status { get; } = status;
}

/// <summary>
/// SPDY/3.1 frame layouts (SPDY/3 section 2.2 and 2.6, 3.1's session flow control): parsing of control frame payloads
/// and serialisation of every frame. Pure: no I/O, no compression state.
/// </summary>
internal static class SpdyFrameCodec
{
    /// <summary>Parses a control frame's payload; malformed frames are session errors.</summary>
    public static SpdyControlFrame ParseControl(SpdyFrameHeader header, ReadOnlySpan<byte> payload)
    {
        if (!header.IsControl)
        {
            throw new ArgumentException("not a control frame", nameof(header));
        }

        if (header.Version != Spdy.Version)
        {
            throw new SpdyProtocolException($"control frame of SPDY version {header.Version} (only 3 is spoken)");
        }

        switch ((SpdyFrameType)header.Type)
        {
            case SpdyFrameType.SynStream:
                AtLeast(header, payload, 10);
                return new SynStreamFrame(StreamId(payload), StreamId(payload[4..]), (byte)(payload[8] >> 5), header.Flags, payload[10..].ToArray());
            case SpdyFrameType.SynReply:
                AtLeast(header, payload, 4);
                return new SynReplyFrame(StreamId(payload), header.Flags, payload[4..].ToArray());
            case SpdyFrameType.RstStream:
                Exactly(header, payload, 8);
                var status = BinaryPrimitives.ReadInt32BigEndian(payload[4..]);
                if (status == 0)
                {
                    throw new SpdyProtocolException("RST_STREAM with status 0");
                }

                return new RstStreamFrame(StreamId(payload), (SpdyRstStatus)status);
            case SpdyFrameType.Settings:
                return ParseSettings(header, payload);
            case SpdyFrameType.Ping:
                Exactly(header, payload, 4);
                return new PingFrame(BinaryPrimitives.ReadUInt32BigEndian(payload));
            case SpdyFrameType.GoAway:
                Exactly(header, payload, 8);
                return new GoAwayFrame(StreamId(payload), (SpdyGoAwayStatus)BinaryPrimitives.ReadInt32BigEndian(payload[4..]));
            case SpdyFrameType.Headers:
                AtLeast(header, payload, 4);
                return new HeadersFrame(StreamId(payload), header.Flags, payload[4..].ToArray());
            case SpdyFrameType.WindowUpdate:
                Exactly(header, payload, 8);
                return new WindowUpdateFrame(StreamId(payload), (int)(BinaryPrimitives.ReadUInt32BigEndian(payload[4..]) & 0x7FFFFFFF));
            default:
                return new UnknownControlFrame(header.Type);
        }
    }

    private static SettingsFrame ParseSettings(SpdyFrameHeader header, ReadOnlySpan<byte> payload)
    {
        AtLeast(header, payload, 4);
        var count = BinaryPrimitives.ReadUInt32BigEndian(payload);
        if (count > (uint)(payload.Length - 4) / 8 || payload.Length != 4 + (8 * count))
        {
            throw new SpdyProtocolException($"SETTINGS frame of {payload.Length} bytes cannot hold {count} entries");
        }

        var settings = new List<SpdySetting>((int)count);
        for (var i = 0; i < count; i++)
        {
            var entry = payload.Slice(4 + (8 * i), 8);
            var idAndFlags = BinaryPrimitives.ReadUInt32BigEndian(entry);
            settings.Add(new SpdySetting((byte)(idAndFlags >> 24), (int)(idAndFlags & 0xFFFFFF), BinaryPrimitives.ReadUInt32BigEndian(entry[4..])));
        }

        return new SettingsFrame(header.Flags, settings);
    }

    private static int StreamId(ReadOnlySpan<byte> bytes) => (int)(BinaryPrimitives.ReadUInt32BigEndian(bytes) & 0x7FFFFFFF);

    private static void AtLeast(SpdyFrameHeader header, ReadOnlySpan<byte> payload, int length)
    {
        if (payload.Length < length)
        {
            throw new SpdyProtocolException($"{(SpdyFrameType)header.Type} frame of {payload.Length} bytes (at least {length})");
        }
    }

    private static void Exactly(SpdyFrameHeader header, ReadOnlySpan<byte> payload, int length)
    {
        if (payload.Length != length)
        {
            throw new SpdyProtocolException($"{(SpdyFrameType)header.Type} frame of {payload.Length} bytes (exactly {length})");
        }
    }

    // ------------------------------------------------------------------ serialisation

    /// <summary>Writes a control frame header for <paramref name="type"/> with a payload of <paramref name="length"/>.</summary>
    public static void WriteControlHeader(Span<byte> destination, SpdyFrameType type, byte flags, int length)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, 0x80000000u | ((uint)Spdy.Version << 16) | (ushort)type);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], ((uint)flags << 24) | CheckLength(length));
    }

    /// <summary>Writes a data frame header.</summary>
    public static void WriteDataHeader(Span<byte> destination, int streamId, byte flags, int length)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)streamId & 0x7FFFFFFF);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], ((uint)flags << 24) | CheckLength(length));
    }

    public static byte[] SynStream(int streamId, int associatedStreamId, byte priority, byte flags, ReadOnlySpan<byte> headerBlock)
    {
        var frame = new byte[Spdy.HeaderSize + 10 + headerBlock.Length];
        WriteControlHeader(frame, SpdyFrameType.SynStream, flags, 10 + headerBlock.Length);
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(8), streamId & 0x7FFFFFFF);
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(12), associatedStreamId & 0x7FFFFFFF);
        frame[16] = (byte)(priority << 5);
        headerBlock.CopyTo(frame.AsSpan(18));
        return frame;
    }

    public static byte[] SynReply(int streamId, byte flags, ReadOnlySpan<byte> headerBlock) =>
        StreamAndBlock(SpdyFrameType.SynReply, streamId, flags, headerBlock);

    public static byte[] Headers(int streamId, byte flags, ReadOnlySpan<byte> headerBlock) =>
        StreamAndBlock(SpdyFrameType.Headers, streamId, flags, headerBlock);

    public static byte[] RstStream(int streamId, SpdyRstStatus status) => TwoWords(SpdyFrameType.RstStream, (uint)streamId & 0x7FFFFFFF, (uint)status);

    public static byte[] GoAway(int lastGoodStreamId, SpdyGoAwayStatus status) =>
        TwoWords(SpdyFrameType.GoAway, (uint)lastGoodStreamId & 0x7FFFFFFF, (uint)status);

    public static byte[] WindowUpdate(int streamId, int delta) => TwoWords(SpdyFrameType.WindowUpdate, (uint)streamId & 0x7FFFFFFF, (uint)delta & 0x7FFFFFFF);

    public static byte[] Ping(uint id)
    {
        var frame = new byte[Spdy.HeaderSize + 4];
        WriteControlHeader(frame, SpdyFrameType.Ping, 0, 4);
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(8), id);
        return frame;
    }

    public static byte[] Settings(byte flags, IReadOnlyList<SpdySetting> settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var frame = new byte[Spdy.HeaderSize + 4 + (8 * settings.Count)];
        WriteControlHeader(frame, SpdyFrameType.Settings, flags, 4 + (8 * settings.Count));
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(8), settings.Count);
        for (var i = 0; i < settings.Count; i++)
        {
            var entry = frame.AsSpan(12 + (8 * i));
            BinaryPrimitives.WriteUInt32BigEndian(entry, ((uint)settings[i].Flags << 24) | ((uint)settings[i].Id & 0xFFFFFF));
            BinaryPrimitives.WriteUInt32BigEndian(entry[4..], settings[i].Value);
        }

        return frame;
    }

    public static byte[] Data(int streamId, byte flags, ReadOnlySpan<byte> payload)
    {
        var frame = new byte[Spdy.HeaderSize + payload.Length];
        WriteDataHeader(frame, streamId, flags, payload.Length);
        payload.CopyTo(frame.AsSpan(Spdy.HeaderSize));
        return frame;
    }

    private static byte[] StreamAndBlock(SpdyFrameType type, int streamId, byte flags, ReadOnlySpan<byte> headerBlock)
    {
        var frame = new byte[Spdy.HeaderSize + 4 + headerBlock.Length];
        WriteControlHeader(frame, type, flags, 4 + headerBlock.Length);
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(8), streamId & 0x7FFFFFFF);
        headerBlock.CopyTo(frame.AsSpan(12));
        return frame;
    }

    private static byte[] TwoWords(SpdyFrameType type, uint first, uint second)
    {
        var frame = new byte[Spdy.HeaderSize + 8];
        WriteControlHeader(frame, type, 0, 8);
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(8), first);
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(12), second);
        return frame;
    }

    private static uint CheckLength(int length) =>
        length is >= 0 and <= Spdy.MaxFrameLength ? (uint)length : throw new ArgumentOutOfRangeException(nameof(length), length, "a SPDY frame holds at most 2^24-1 bytes");
}
