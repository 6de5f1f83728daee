using System.Globalization;

namespace Nacelle.Sandbox.Network;

/// <summary>CNI spec versions: which ones are accepted and how they compare.</summary>
public static class CniVersions
{
    /// <summary>The spec versions nacelle accepts in a configuration.</summary>
    public static readonly IReadOnlyList<string> Supported = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

    /// <summary>The version of configurations nacelle generates itself.</summary>
    public const string Current = "1.0.0";

    public static bool IsSupported(string? version) => version is not null && Supported.Contains(version);

    /// <summary>True when <paramref name="version"/> is at least <paramref name="minimum"/> (both "major.minor.patch").</summary>
    public static bool AtLeast(string version, string minimum) => Compare(version, minimum) >= 0;

    public static int Compare(string a, string b)
    {
        var left = Parse(a);
        var right = Parse(b);
        for (var i = 0; i < 3; i++)
        {
            var c = left[i].CompareTo(right[i]);
            if (c != 0)
            {
                return c;
            }
        }

        return 0;
    }

    private static int[] Parse(string version)
    {
        var parts = version.Split('.');
        var numbers = new int[3];
        for (var i = 0; i < 3 && i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out numbers[i]))
            {
                throw new FormatException($"'{version}' is not a CNI version (major.minor.patch)");
            }
        }

        return numbers;
    }
}
