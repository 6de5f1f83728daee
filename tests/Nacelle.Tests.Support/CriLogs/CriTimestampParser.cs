using System.Text;
using Nacelle.Monitor.Logging;

namespace Nacelle.Tests.Support.CriLogs;

/// <summary>Reads back the timestamps the monitor's <see cref="CriTimestamp"/> writes (tests and readers only).</summary>
public static class CriTimestampParser
{
    /// <summary>Parses <paramref name="text"/> (UTF-8) as RFC3339Nano; see <see cref="TryParse"/>.</summary>
    public static CriTimestamp Parse(string text) =>
        TryParse(Encoding.UTF8.GetBytes(text), out var value) ? value : throw new FormatException($"\"{text}\" is not an RFC3339Nano timestamp");

    /// <summary>
    /// Parses an RFC3339 timestamp as Go's <c>time.Parse(time.RFC3339Nano, ...)</c> accepts it:
    /// <c>YYYY-MM-DDTHH:MM:SS</c>, an optional fraction of 1 to 9 digits, then <c>Z</c> or a <c>+HH:MM</c>/<c>-HH:MM</c>
    /// offset (the value is converted to UTC). Leap seconds (<c>:60</c>) are rejected, as Go does.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> text, out CriTimestamp value)
    {
        value = default;
        if (text.Length < 20
            || !TryDigits(text, 0, 4, out var year) || text[4] != '-'
            || !TryDigits(text, 5, 2, out var month) || text[7] != '-'
            || !TryDigits(text, 8, 2, out var day) || text[10] != 'T'
            || !TryDigits(text, 11, 2, out var hour) || text[13] != ':'
            || !TryDigits(text, 14, 2, out var minute) || text[16] != ':'
            || !TryDigits(text, 17, 2, out var second))
        {
            return false;
        }

        if (year < 1 || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month) || hour > 23 || minute > 59 || second > 59)
        {
            return false;
        }

        var position = 19;
        var nanoseconds = 0;
        if (text[position] == '.')
        {
            position++;
            var digits = 0;
            while (position < text.Length && text[position] is >= (byte)'0' and <= (byte)'9')
            {
                if (++digits > 9)
                {
                    return false;
                }

                nanoseconds = (nanoseconds * 10) + (text[position] - '0');
                position++;
            }

            if (digits == 0)
            {
                return false;
            }

            for (var i = digits; i < 9; i++)
            {
                nanoseconds *= 10;
            }
        }

        long offsetSeconds;
        var zone = text[position..];
        if (zone.Length == 1 && zone[0] == 'Z')
        {
            offsetSeconds = 0;
        }
        else if (zone.Length == 6 && zone[0] is (byte)'+' or (byte)'-' && zone[3] == ':'
                 && TryDigits(zone, 1, 2, out var offsetHours) && TryDigits(zone, 4, 2, out var offsetMinutes)
                 && offsetHours <= 23 && offsetMinutes <= 59)
        {
            offsetSeconds = ((offsetHours * 60) + offsetMinutes) * 60L * (zone[0] == '-' ? -1 : 1);
        }
        else
        {
            return false;
        }

        var local = new DateTime(year, month, day, hour, minute, second, DateTimeKind.Unspecified);
        var unixSeconds = ((local.Ticks - DateTime.UnixEpoch.Ticks) / TimeSpan.TicksPerSecond) - offsetSeconds;
        value = new CriTimestamp(unixSeconds, nanoseconds);
        return true;
    }

    private static bool TryDigits(ReadOnlySpan<byte> text, int offset, int count, out int value)
    {
        value = 0;
        for (var i = offset; i < offset + count; i++)
        {
            if (text[i] is < (byte)'0' or > (byte)'9')
            {
                return false;
            }

            value = (value * 10) + (text[i] - '0');
        }

        return true;
    }
}
