using System.Globalization;
using System.Text;

namespace Nacelle.CriServer.Configuration;

/// <summary>Durations in the config are Go-style strings: "500ms", "10s", "2m", "1h30m".</summary>
public static class Duration
{
    public static bool TryParse(string text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }

        var total = 0.0; // milliseconds
        var i = 0;
        while (i < text.Length)
        {
            var start = i;
            while (i < text.Length && (char.IsAsciiDigit(text[i]) || text[i] == '.'))
            {
                i++;
            }

            if (start == i || !double.TryParse(text.AsSpan(start, i - start), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number))
            {
                return false;
            }

            var unitStart = i;
            while (i < text.Length && char.IsAsciiLetter(text[i]))
            {
                i++;
            }

            double? scale = text[unitStart..i] switch
            {
                "ms" => 1,
                "s" => 1000,
                "m" => 60_000,
                "h" => 3_600_000,
                _ => null,
            };
            if (scale is null)
            {
                return false;
            }

            total += number * scale.Value;
        }

        if (total > TimeSpan.MaxValue.TotalMilliseconds)
        {
            return false;
        }

        value = TimeSpan.FromMilliseconds(total);
        return true;
    }

    public static string Format(TimeSpan value)
    {
        if (value == TimeSpan.Zero)
        {
            return "0s";
        }

        var builder = new StringBuilder();
        if (value.Hours + (value.Days * 24) > 0)
        {
            builder.Append(CultureInfo.InvariantCulture, $"{(int)value.TotalHours}h");
        }

        if (value.Minutes > 0)
        {
            builder.Append(CultureInfo.InvariantCulture, $"{value.Minutes}m");
        }

        if (value.Seconds > 0)
        {
            builder.Append(CultureInfo.InvariantCulture, $"{value.Seconds}s");
        }

        if (value.Milliseconds > 0)
        {
            builder.Append(CultureInfo.InvariantCulture, $"{value.Milliseconds}ms");
        }

        return builder.ToString();
    }
}
