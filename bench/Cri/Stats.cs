using System.Diagnostics;
using System.Globalization;

namespace Nacelle.Bench.Cri;

/// <summary>The latencies, in milliseconds, of one measured step over the iterations.</summary>
internal sealed class Samples
{
    private readonly List<double> _values = [];

    public int Count => _values.Count;

    public void Add(double milliseconds) => _values.Add(milliseconds);

    /// <summary>Adds the time since <paramref name="startTimestamp"/> (a <see cref="Stopwatch.GetTimestamp"/>).</summary>
    public void AddSince(long startTimestamp) => Add(Stopwatch.GetElapsedTime(startTimestamp).TotalMilliseconds);

    public double Median => Percentile(0.5);

    public double P90 => Percentile(0.9);

    /// <summary>Nearest-rank percentile (no interpolation): a value that was actually measured.</summary>
    public double Percentile(double p)
    {
        if (_values.Count == 0)
        {
            return double.NaN;
        }

        var sorted = _values.Order().ToList();
        var rank = (int)Math.Ceiling(p * sorted.Count);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Count - 1)];
    }
}

/// <summary>Markdown output with invariant number formatting.</summary>
internal static class Table
{
    public static string F(double value, int decimals = 1) =>
        double.IsNaN(value) ? "-" : value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    public static void Header(params string[] columns)
    {
        Console.WriteLine("| " + string.Join(" | ", columns) + " |");
        Console.WriteLine("|---|" + string.Concat(Enumerable.Repeat("---:|", columns.Length - 1)));
    }

    public static void Row(params string[] cells) => Console.WriteLine("| " + string.Join(" | ", cells) + " |");

    /// <summary>A latency row: median, p90 and the median's ratio to <paramref name="reference"/> (below 1: faster).</summary>
    public static void LatencyRow(string name, Samples samples, Samples? reference)
    {
        var ratio = reference is null || reference.Count == 0 ? "-" : F(samples.Median / reference.Median, 2) + "x";
        Row(name, F(samples.Median), F(samples.P90), ratio);
    }
}
