using Nacelle.Monitor.Logging;
using Nacelle.Tests.Support.CriLogs;

namespace Nacelle.Tests.Unit.Monitor.Logging;

/// <summary>The timestamp field: Go's time.RFC3339Nano in UTC, byte for byte, and its parser.</summary>
public sealed class CriTimestampTests
{
    [Theory]
    [InlineData(0, "2026-11-23T11:23:35Z")]
    [InlineData(123_456_789, "2026-11-23T11:23:35.123456789Z")]
    [InlineData(120_000_000, "2026-11-23T11:23:35.12Z")]
    [InlineData(100_000_000, "2026-11-23T11:23:35.1Z")]
    [InlineData(1, "2026-11-23T11:23:35.000000001Z")]
    [InlineData(100, "2026-11-23T11:23:35.0000001Z")]
    [InlineData(999_999_999, "2026-11-23T11:23:35.999999999Z")]
    [InlineData(10_000, "2026-11-23T11:23:35.00001Z")]
    public void FormatsLikeGoRfc3339NanoTrimmingTrailingZeros(int nanoseconds, string expected)
    {
        var seconds = new DateTimeOffset(2026, 11, 23, 11, 23, 35, TimeSpan.Zero).ToUnixTimeSeconds();
        Assert.Equal(expected, new CriTimestamp(seconds, nanoseconds).ToString());
    }

    [Fact]
    public void FromDateTimeOffsetConvertsToUtcWithTickPrecision()
    {
        var local = new DateTimeOffset(2026, 1, 2, 5, 4, 5, TimeSpan.FromHours(2)).AddTicks(1_234_567);
        var timestamp = CriTimestamp.FromDateTimeOffset(local);
        Assert.Equal("2026-01-02T03:04:05.1234567Z", timestamp.ToString());
        Assert.Equal(123_456_700, timestamp.Nanoseconds);
        Assert.Equal(local, timestamp.ToDateTimeOffset());
    }

    [Fact]
    public void BeforeTheEpochTheFractionStaysPositive()
    {
        var timestamp = CriTimestamp.FromDateTimeOffset(DateTimeOffset.UnixEpoch.AddTicks(-1_000_000));
        Assert.Equal(-1, timestamp.UnixSeconds);
        Assert.Equal(900_000_000, timestamp.Nanoseconds);
        Assert.Equal("1969-12-31T23:59:59.9Z", timestamp.ToString());
    }

    [Fact]
    public void FormatWritesAtMostMaxLength()
    {
        var buffer = new byte[CriTimestamp.MaxLength];
        var latest = CriTimestamp.FromDateTimeOffset(DateTimeOffset.MaxValue);
        Assert.Equal(28, latest.Format(buffer)); // 9999-12-31T23:59:59.9999999Z
        Assert.Equal(CriTimestamp.MaxLength, new CriTimestamp(latest.UnixSeconds, 999_999_999).Format(buffer));
    }

    [Theory]
    [InlineData("2026-11-23T11:23:35Z", "2026-11-23T11:23:35Z")]
    [InlineData("2026-11-23T11:23:35.123456789Z", "2026-11-23T11:23:35.123456789Z")]
    [InlineData("2026-11-23T11:23:35.120Z", "2026-11-23T11:23:35.12Z")]
    [InlineData("2026-11-23T11:23:35.5+02:00", "2026-11-23T09:23:35.5Z")]
    [InlineData("2026-11-23T23:23:35-01:30", "2026-11-24T00:53:35Z")]
    [InlineData("2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z")]
    public void ParsesRfc3339NanoAndNormalizesToUtc(string text, string expected)
    {
        Assert.Equal(expected, CriTimestampParser.Parse(text).ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("2026-11-23T11:23:35")]
    [InlineData("2026-11-23 11:23:35Z")]
    [InlineData("2026-11-23T11:23:35.Z")]
    [InlineData("2026-11-23T11:23:35.1234567890Z")]
    [InlineData("2026-13-23T11:23:35Z")]
    [InlineData("2026-02-29T11:23:35Z")]
    [InlineData("2026-11-23T24:00:00Z")]
    [InlineData("2026-11-23T11:23:60Z")]
    [InlineData("2026-11-23T11:23:35+0200")]
    [InlineData("2026-11-23T11:23:35ZZ")]
    [InlineData("26-11-23T11:23:35Z")]
    public void RejectsWhatGoRejects(string text)
    {
        Assert.Throws<FormatException>(() => CriTimestampParser.Parse(text));
    }
}
