using System.Text;
using Nacelle.CriServer.Streaming.WebSockets;

namespace Nacelle.Tests.Unit.Streaming;

/// <summary>The channel framing of the WebSocket protocols: binary, base64 and v5's close signal.</summary>
public sealed class WebSocketChannelCodecTests
{
    private static List<WebSocketChannelEvent> Feed(WebSocketChannelCodec codec, params (byte[] Fragment, bool End)[] fragments)
    {
        var events = new List<WebSocketChannelEvent>();
        foreach (var (fragment, end) in fragments)
        {
            var before = events.Count;
            codec.Feed(fragment, end, events);
            // Data may point into the fragment's buffer: copy it as a receiver must.
            for (var i = before; i < events.Count; i++)
            {
                events[i] = events[i] with { Data = events[i].Data.ToArray() };
            }
        }

        return events;
    }

    [Fact]
    public void BinaryMessagesStartWithTheChannelByte()
    {
        var codec = new WebSocketChannelCodec(base64: false, closeSignal: false);
        Assert.Equal([1, (byte)'h', (byte)'i'], codec.Encode(1, "hi"u8));
        Assert.Equal([3], codec.Encode(3, []));

        var events = Feed(codec, ([0, 1, 2], true), ([2], true), ([4, 9], false), ([8], true));
        Assert.Equal([(0, "0102"), (4, "09"), (4, "08")], events.Select(e => (e.Channel, Convert.ToHexString(e.Data.Span))));
        Assert.DoesNotContain(events, e => e.CloseSignal);
    }

    [Fact]
    public void Base64MessagesStartWithAChannelDigitAndSurviveFragmentation()
    {
        var codec = new WebSocketChannelCodec(base64: true, closeSignal: false);
        Assert.Equal("1aGVsbG8=", Encoding.ASCII.GetString(codec.Encode(1, "hello"u8)));

        // "0" + base64("hello world") split in the middle of a 4-character group.
        var events = Feed(codec, ("0aGVsbG8gd"u8.ToArray(), false), ("29ybGQ="u8.ToArray(), true));
        Assert.Equal("hello world", string.Concat(events.Select(e => Encoding.ASCII.GetString(e.Data.Span))));
        Assert.All(events, e => Assert.Equal(0, e.Channel));
    }

    [Theory]
    [InlineData("xaGk=", "channel digit")]
    [InlineData("0aGk", "stray characters")]
    [InlineData("0a$k=", "invalid base64")]
    public void InvalidBase64MessagesAreRefused(string message, string expected)
    {
        var codec = new WebSocketChannelCodec(base64: true, closeSignal: false);
        Assert.Contains(expected, Assert.Throws<FormatException>(() => Feed(codec, (Encoding.ASCII.GetBytes(message), true))).Message);
    }

    [Fact]
    public void V5sCloseSignalNamesTheChannelItEnds()
    {
        var codec = new WebSocketChannelCodec(base64: false, closeSignal: true);
        var events = Feed(codec, ([0, 7], true), ([255, 0], true), ([255], false), ([2, 99], true), ([255], true));
        Assert.Equal([(0, false), (0, true), (2, true)], events.Select(e => (e.Channel, e.CloseSignal)));

        // Without v5, 255 is just a channel number.
        var v4 = Feed(new WebSocketChannelCodec(base64: false, closeSignal: false), ([255, 0], true));
        Assert.Equal((255, false), (Assert.Single(v4).Channel, v4[0].CloseSignal));
    }
}
