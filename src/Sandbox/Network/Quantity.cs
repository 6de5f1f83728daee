using System.Globalization;

namespace Nacelle.Sandbox.Network;

/// <summary>
/// Kubernetes resource quantities ("10M", "1.5Gi", "500k", "1e6", "100m") as the integer value Kubernetes' <c>Value()</c>
/// gives (rounded up).
/// </summary>
public static class Quantity
{
    private static readonly (string Suffix, decimal Factor)[] Suffixes =
    [
        ("Ki", 1024m), ("Mi", 1024m * 1024), ("Gi", 1024m * 1024 * 1024), ("Ti", 1024m * 1024 * 1024 * 1024),
        ("Pi", 1024m * 1024 * 1024 * 1024 * 1024), ("Ei", 1024m * 1024 * 1024 * 1024 * 1024 * 1024),
        ("n", 0.000000001m), ("u", 0.000001m), ("m", 0.001m), ("k", 1e3m), ("M", 1e6m), ("G", 1e9m), ("T", 1e12m),
        ("P", 1e15m), ("E", 1e18m),
    ];

    public static bool TryParse(string? text, out decimal value)
    {
        value = 0;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        var s = text.Trim();
        var factor = 1m;
        foreach (var (suffix, f) in Suffixes)
        {
            if (s.EndsWith(suffix, StringComparison.Ordinal))
            {
                s = s[..^suffix.Length];
                factor = f;
                break;
            }
        }

        if (s.Length == 0 || s.Contains(' ', StringComparison.Ordinal))
        {
            return false;
        }

        var exponent = 0;
        var e = s.IndexOfAny(['e', 'E']);
        if (e >= 0)
        {
            if (factor != 1m || !int.TryParse(s[(e + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out exponent)
                || exponent is < -18 or > 18)
            {
                return false;
            }

            s = s[..e];
        }

        if (!decimal.TryParse(s, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number))
        {
            return false;
        }

        try
        {
            var scaled = number * factor;
            for (var i = 0; i < Math.Abs(exponent); i++)
            {
                scaled = exponent > 0 ? scaled * 10 : scaled / 10;
            }

            value = decimal.Ceiling(scaled);
            return true;
        }
        catch (OverflowException)
        {
            return false;
        }
    }
}
