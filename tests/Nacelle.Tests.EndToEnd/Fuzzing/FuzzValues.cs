using System.Text;

namespace Nacelle.Tests.EndToEnd.Fuzzing;

/// <summary>
/// The fuzzer's source of values, all drawn from one seeded <see cref="Random"/>: plain choices, and the hostile values
/// a caller could send (huge, empty, NUL, invalid UTF-8, path tricks, extreme numbers). Every path that could escape
/// somewhere carries <see cref="Marker"/>, so that the host oracles find anything made from it wherever it lands.
/// </summary>
internal sealed class FuzzValues(int seed, string marker)
{
    /// <summary>
    /// Stands for invalid UTF-8 in a string field: protobuf's C# API cannot put such bytes in a string, so the request is
    /// serialized with this placeholder and its bytes are then replaced, length for length, by <see cref="InvalidUtf8"/>.
    /// </summary>
    public const string InvalidUtf8Placeholder = "\u0001NFZ-BAD-UTF8\u0001";

    /// <summary>As many bytes as the placeholder: a lone continuation byte, an overlong NUL, a surrogate, 0xFF, a cut sequence.</summary>
    public static readonly byte[] InvalidUtf8 = [0x80, 0xC0, 0x80, 0xED, 0xA0, 0x80, 0xFF, 0xFE, 0x61, 0xE2, 0x82, 0x41, 0xF8, 0x88];

    public const int OneMegabyte = 1 << 20;

    private static readonly string Huge = new('x', OneMegabyte);
    private static readonly string Big = new('y', 70_000);

    public Random Random { get; } = new(seed);

    /// <summary>Appears in every hostile path and name this run makes (nfz-&lt;hex&gt;).</summary>
    public string Marker { get; } = marker;

    public bool Chance(double p) => Random.NextDouble() < p;

    public int Int(int minInclusive, int maxExclusive) => Random.Next(minInclusive, maxExclusive);

    public T Pick<T>(IReadOnlyList<T> items) => items[Random.Next(items.Count)];

    public string Hex(int length)
    {
        var bytes = new byte[(length + 1) / 2];
        Random.NextBytes(bytes);
        return Convert.ToHexStringLower(bytes)[..length];
    }

    /// <summary>A short lowercase DNS-label-like name.</summary>
    public string Name(string prefix) => $"{prefix}-{Hex(6)}";

    /// <summary>Strings no field should choke on.</summary>
    public string HostileString() => Random.Next(24) switch
    {
        0 => "",
        1 => Huge,
        2 => Big,
        3 => "a\0b",
        4 => "\0",
        5 => InvalidUtf8Placeholder,
        6 => "x" + InvalidUtf8Placeholder + "y",
        7 => "line1\nline2\r\n\t",
        8 => "%s%n%x${IFS}$(id)`id`;|&",
        9 => "../../../../" + Marker,
        10 => "/",
        11 => ".",
        12 => "..",
        13 => " ",
        14 => "\u202e\u0000\uffff\ud83d\ude00\u00e9\u4e2d",
        15 => new string('\u00e9', 40_000), // two bytes each in UTF-8
        16 => "\ud800", // a lone surrogate (encoded as a replacement character)
        17 => string.Concat(Enumerable.Repeat("a/", 3000)),
        18 => "-1",
        19 => "9223372036854775808",
        20 => "=",
        21 => "\x7f\x1b[31m",
        22 => Marker + ":" + Marker + "@" + Marker,
        _ => new string('z', Random.Next(250, 5000)),
    };

    /// <summary>A string that is a valid name most of the time and hostile otherwise.</summary>
    public string MaybeHostile(string valid, double hostile = 0.3) => Chance(hostile) ? HostileString() : valid;

    /// <summary>Paths a caller must not get away with: relative, dotted, NUL, huge, escaping with "..".</summary>
    public string HostilePath(string insideBase) => Random.Next(14) switch
    {
        0 => "",
        1 => $"../../../../tmp/{Marker}-rel",
        2 => $"{Marker}-relative/dir",
        3 => $"{insideBase}/../{Marker}-escape",
        4 => $"{insideBase}/./{Marker}-dot",
        5 => $"{insideBase}//{Marker}-double-slash",
        6 => $"{insideBase}/{Marker}\0/x",
        7 => $"{insideBase}/{Marker}{InvalidUtf8Placeholder}",
        8 => $"{insideBase}/{new string('p', 5000)}",
        9 => $"{insideBase}/" + string.Concat(Enumerable.Repeat("d/", 2100)) + Marker,
        10 => $"/proc/self/../../tmp/{Marker}-proc",
        11 => "/",
        12 => $"{insideBase}/../../../../../../etc/{Marker}-etc",
        _ => HostileString(),
    };

    public long HostileLong() => Random.Next(14) switch
    {
        0 => 0,
        1 => -1,
        2 => long.MinValue,
        3 => long.MaxValue,
        4 => int.MaxValue,
        5 => int.MinValue,
        6 => 1,
        7 => 2,
        8 => 1L << 40,
        9 => 4096,
        10 => -4096,
        11 => (long)uint.MaxValue + 1,
        12 => 65536,
        _ => Random.NextInt64(long.MinValue, long.MaxValue),
    };

    public int HostileInt() => Random.Next(9) switch
    {
        0 => 0,
        1 => -1,
        2 => int.MinValue,
        3 => int.MaxValue,
        4 => 65535,
        5 => 65536,
        6 => 70000,
        7 => 1,
        _ => Random.Next(int.MinValue, int.MaxValue),
    };

    public uint HostileUInt() => Random.Next(5) switch
    {
        0 => 0,
        1 => uint.MaxValue,
        2 => uint.MaxValue - 1,
        3 => 1u << 31,
        _ => (uint)Random.NextInt64(0, uint.MaxValue),
    };

    /// <summary>An enum value the schema does not have.</summary>
    public T UnknownEnum<T>() where T : struct, Enum => (T)(object)Pick([-1, 99, 1000, int.MaxValue, int.MinValue]);

    /// <summary>A map that is empty, small, or hostile: 10,000 entries, huge values, empty, NUL or invalid keys.</summary>
    /// <summary>Sets every entry of <paramref name="entries"/> in <paramref name="map"/>, replacing keys it has (MapField.Add throws on them).</summary>
    public static void SetAll(Google.Protobuf.Collections.MapField<string, string> map, Dictionary<string, string> entries)
    {
        foreach (var (key, value) in entries)
        {
            map[key] = value;
        }
    }

    public Dictionary<string, string> HostileMap() => Random.Next(8) switch
    {
        0 => Enumerable.Range(0, 10_000).ToDictionary(i => $"k{i}", i => $"v{i}"),
        1 => new Dictionary<string, string> { ["big"] = Huge },
        2 => new Dictionary<string, string> { [""] = "empty-key" },
        3 => new Dictionary<string, string> { ["nul\0key"] = "v\0v" },
        4 => new Dictionary<string, string> { [InvalidUtf8Placeholder] = InvalidUtf8Placeholder },
        5 => new Dictionary<string, string> { [Big] = "v" },
        6 => Enumerable.Range(0, 300).ToDictionary(i => HostileKey(i), _ => HostileString() is { Length: < 100_000 } s ? s : "v"),
        _ => new Dictionary<string, string> { ["io.kubernetes.pod.name"] = Marker, ["a/b"] = "c" },
    };

    private string HostileKey(int i) => Random.Next(4) switch
    {
        0 => $"k{i}\n",
        1 => $"{i}=x",
        2 => $"k{i}/../..",
        _ => $"k{i}\u00e9",
    };

    /// <summary>A list of <paramref name="count"/> strings built by <paramref name="make"/>.</summary>
    public static List<string> Many(int count, Func<int, string> make) => [.. Enumerable.Range(0, count).Select(make)];

    public static string Utf8Length(string text) => Encoding.UTF8.GetByteCount(text).ToString(System.Globalization.CultureInfo.InvariantCulture);
}
