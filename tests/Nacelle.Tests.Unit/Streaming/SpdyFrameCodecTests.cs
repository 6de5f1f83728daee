using Nacelle.CriServer.Streaming.Spdy;

namespace Nacelle.Tests.Unit.Streaming;

/// <summary>SPDY/3.1 frame layouts, checked against bytes written out by hand from the specification.</summary>
public sealed class SpdyFrameCodecTests
{
    private static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal));

    [Fact]
    public void ControlFramesAreLaidOutAsTheSpecificationSays()
    {
        // control bit + version 3, type, flags, 24-bit length, payload
        Assert.Equal(Hex("8003 0006 00 000004 00000001"), SpdyFrameCodec.Ping(1));
        Assert.Equal(Hex("8003 0003 00 000008 00000001 00000005"), SpdyFrameCodec.RstStream(1, SpdyRstStatus.Cancel));
        Assert.Equal(Hex("8003 0009 00 000008 00000003 00010000"), SpdyFrameCodec.WindowUpdate(3, 65536));
        Assert.Equal(Hex("8003 0007 00 000008 00000005 00000001"), SpdyFrameCodec.GoAway(5, SpdyGoAwayStatus.ProtocolError));
        Assert.Equal(Hex("8003 0004 00 00000c 00000001 00000007 00000400"),
            SpdyFrameCodec.Settings(0, [new SpdySetting(0, Spdy.SettingsInitialWindowSize, 1024)]));
        Assert.Equal(Hex("8003 0002 01 000006 00000007 abcd"), SpdyFrameCodec.SynReply(7, Spdy.FlagFin, Hex("abcd")));
        Assert.Equal(Hex("8003 0001 02 00000c 00000009 00000000 6000 abcd"), SpdyFrameCodec.SynStream(9, 0, 3, Spdy.FlagUnidirectional, Hex("abcd")));
    }

    [Fact]
    public void DataFramesCarryTheStreamIdFlagsAndLength()
    {
        Assert.Equal(Hex("00000001 01 000002 6869"), SpdyFrameCodec.Data(1, Spdy.FlagFin, "hi"u8));
        var header = SpdyFrameHeader.Read(Hex("7fffffff 01 ffffff"));
        Assert.False(header.IsControl);
        Assert.Equal(int.MaxValue, header.StreamId);
        Assert.Equal(Spdy.FlagFin, header.Flags);
        Assert.Equal(Spdy.MaxFrameLength, header.Length);
    }

    [Fact]
    public void EveryControlFrameParsesBackToWhatWasWritten()
    {
        SpdyControlFrame Parse(byte[] frame) => SpdyFrameCodec.ParseControl(SpdyFrameHeader.Read(frame), frame.AsSpan(Spdy.HeaderSize));

        Assert.Equal(new PingFrame(41), Parse(SpdyFrameCodec.Ping(41)));
        Assert.Equal(new RstStreamFrame(3, SpdyRstStatus.FlowControlError), Parse(SpdyFrameCodec.RstStream(3, SpdyRstStatus.FlowControlError)));
        Assert.Equal(new WindowUpdateFrame(0, 12345), Parse(SpdyFrameCodec.WindowUpdate(0, 12345)));
        Assert.Equal(new GoAwayFrame(11, SpdyGoAwayStatus.Ok), Parse(SpdyFrameCodec.GoAway(11, SpdyGoAwayStatus.Ok)));
        var settings = Assert.IsType<SettingsFrame>(Parse(SpdyFrameCodec.Settings(1, [new SpdySetting(1, 7, 99), new SpdySetting(0, 4, 100)])));
        Assert.Equal(1, settings.Flags);
        Assert.Equal([new SpdySetting(1, 7, 99), new SpdySetting(0, 4, 100)], settings.Settings);
        var syn = Assert.IsType<SynStreamFrame>(Parse(SpdyFrameCodec.SynStream(5, 1, 7, Spdy.FlagFin, [1, 2, 3])));
        Assert.Equal((5, 1, 7, Spdy.FlagFin), (syn.StreamId, syn.AssociatedStreamId, syn.Priority, syn.Flags));
        Assert.Equal([1, 2, 3], syn.HeaderBlock);
        var headers = Assert.IsType<HeadersFrame>(Parse(SpdyFrameCodec.Headers(13, 0, [9])));
        Assert.Equal(13, headers.StreamId);
    }

    [Theory]
    [InlineData("8002 0006 00 000004 00000001", "version 2")] // SPDY/2
    [InlineData("8003 0006 00 000005 0000000100", "exactly 4")] // PING of 5 bytes
    [InlineData("8003 0003 00 000004 00000001", "exactly 8")] // RST_STREAM of 4 bytes
    [InlineData("8003 0003 00 000008 00000001 00000000", "status 0")] // RST_STREAM with status 0
    [InlineData("8003 0007 00 000004 00000001", "exactly 8")] // GOAWAY of 4 bytes
    [InlineData("8003 0009 00 000009 00000001 0000000100", "exactly 8")] // WINDOW_UPDATE of 9 bytes
    [InlineData("8003 0004 00 00000c 00000002 00000007 00000400", "cannot hold 2")] // SETTINGS claiming 2 entries in 1
    [InlineData("8003 0004 00 000004 ffffffff", "cannot hold")] // SETTINGS count overflowing
    [InlineData("8003 0001 00 000008 00000001 00000000", "at least 10")] // SYN_STREAM without priority bytes
    [InlineData("8003 0002 00 000002 0000", "at least 4")] // SYN_REPLY without stream id
    public void MalformedControlFramesAreSessionErrors(string hex, string expected)
    {
        var frame = Hex(hex);
        var e = Assert.Throws<SpdyProtocolException>(() => SpdyFrameCodec.ParseControl(SpdyFrameHeader.Read(frame), frame.AsSpan(Spdy.HeaderSize)));
        Assert.Contains(expected, e.Message);
        Assert.Equal(SpdyGoAwayStatus.ProtocolError, e.Status);
    }

    [Fact]
    public void UnknownControlFrameTypesAreKeptToBeIgnored()
    {
        // NOOP (5) and CREDENTIAL (10) are gone from SPDY/3.1; 0x7777 never existed.
        foreach (var type in new ushort[] { 5, 10, 0x7777 })
        {
            var frame = Hex($"8003 {type:x4} 00 000002 0102");
            Assert.Equal(new UnknownControlFrame(type), SpdyFrameCodec.ParseControl(SpdyFrameHeader.Read(frame), frame.AsSpan(Spdy.HeaderSize)));
        }
    }

    [Fact]
    public void FramesLongerThan24BitsCannotBeWritten() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => SpdyFrameCodec.WriteDataHeader(new byte[8], 1, 0, Spdy.MaxFrameLength + 1));
}
