using System.Text;

namespace Nacelle.Monitor.Logging;

/// <summary>
/// A CRI log timestamp: an instant with nanosecond precision, written exactly as Go's
/// <c>time.RFC3339Nano</c> formats a UTC time (kubelet parses the field with that layout):
/// <c>2006-01-02T15:04:05.999999999Z</c>, trailing zeros of the fraction trimmed and the dot dropped
/// when the fraction is zero (<c>...:05Z</c>).
/// </summary>
/// <param name="UnixSeconds">Whole seconds since 1970-01-01T00:00:00Z (may be negative).</param>
/// <param name="Nanoseconds">The fraction of the second, 0..999 999 999.</param>
public readonly record struct CriTimestamp(long UnixSeconds, int Nanoseconds) : IComparable<CriTimestamp>
{
    /// <summary>The longest text <see cref="Format"/> produces (<c>9999-12-31T23:59:59.999999999Z</c>).</summary>
    public const int MaxLength = 30;

    private static readonly long MinUnixSeconds = (DateTime.MinValue.Ticks - DateTime.UnixEpoch.Ticks) / TimeSpan.TicksPerSecond;
    private static readonly long MaxUnixSeconds = (DateTime.MaxValue.Ticks - DateTime.UnixEpoch.Ticks) / TimeSpan.TicksPerSecond;

    /// <summary>The instant of <paramref name="time"/> (100 ns resolution, the resolution of .NET clocks).</summary>
    public static CriTimestamp FromDateTimeOffset(DateTimeOffset time)
    {
        var ticks = time.UtcTicks - DateTime.UnixEpoch.Ticks;
        var seconds = Math.DivRem(ticks, TimeSpan.TicksPerSecond, out var remainder);
        if (remainder < 0)
        {
            seconds--;
            remainder += TimeSpan.TicksPerSecond;
        }

        return new CriTimestamp(seconds, (int)(remainder * 100));
    }

    /// <summary>This instant as a UTC <see cref="DateTimeOffset"/>, truncated to 100 ns.</summary>
    public DateTimeOffset ToDateTimeOffset() =>
        new(DateTime.UnixEpoch.Ticks + (UnixSeconds * TimeSpan.TicksPerSecond) + (Nanoseconds / 100), TimeSpan.Zero);

    /// <summary>
    /// Writes the RFC3339Nano UTC text to <paramref name="destination"/> (at least <see cref="MaxLength"/> bytes)
    /// and returns the number of bytes written.
    /// </summary>
    public int Format(Span<byte> destination)
    {
        if (UnixSeconds < MinUnixSeconds || UnixSeconds > MaxUnixSeconds || Nanoseconds is < 0 or > 999_999_999)
        {
            throw new ArgumentOutOfRangeException(nameof(UnixSeconds), $"timestamp {UnixSeconds}s+{Nanoseconds}ns is outside years 0001-9999");
        }

        if (destination.Length < MaxLength)
        {
            throw new ArgumentException($"destination needs {MaxLength} bytes", nameof(destination));
        }

        var utc = new DateTime(DateTime.UnixEpoch.Ticks + (UnixSeconds * TimeSpan.TicksPerSecond), DateTimeKind.Utc);
        Digits(destination, 0, utc.Year, 4);
        destination[4] = (byte)'-';
        Digits(destination, 5, utc.Month, 2);
        destination[7] = (byte)'-';
        Digits(destination, 8, utc.Day, 2);
        destination[10] = (byte)'T';
        Digits(destination, 11, utc.Hour, 2);
        destination[13] = (byte)':';
        Digits(destination, 14, utc.Minute, 2);
        destination[16] = (byte)':';
        Digits(destination, 17, utc.Second, 2);
        var length = 19;
        if (Nanoseconds != 0)
        {
            // Go's ".999999999": nine digits, then trailing zeros trimmed (never all of them: the fraction is not 0).
            var fraction = Nanoseconds;
            var digits = 9;
            while (fraction % 10 == 0)
            {
                fraction /= 10;
                digits--;
            }

            destination[length++] = (byte)'.';
            Digits(destination, length, fraction, digits);
            length += digits;
        }

        destination[length++] = (byte)'Z';
        return length;
    }

    /// <summary>The RFC3339Nano UTC text.</summary>
    public override string ToString()
    {
        Span<byte> buffer = stackalloc byte[MaxLength];
        return Encoding.ASCII.GetString(buffer[..Format(buffer)]);
    }

    /// <inheritdoc />
    public int CompareTo(CriTimestamp other)
    {
        var bySeconds = UnixSeconds.CompareTo(other.UnixSeconds);
        return bySeconds != 0 ? bySeconds : Nanoseconds.CompareTo(other.Nanoseconds);
    }

    private static void Digits(Span<byte> destination, int offset, int value, int count)
    {
        for (var i = offset + count - 1; i >= offset; i--)
        {
            destination[i] = (byte)('0' + (value % 10));
            value /= 10;
        }
    }
}
