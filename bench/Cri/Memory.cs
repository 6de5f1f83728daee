using System.Globalization;

namespace Nacelle.Bench.Cri;

/// <summary>Process memory from /proc, in MB.</summary>
internal static class Memory
{
    /// <summary>
    /// Proportional set size: each resident page divided by the number of processes mapping it, so summing it over
    /// processes counts shared code (the same monitor binary in every pod) once overall.
    /// </summary>
    public static double PssMb(int pid) => FieldKb($"/proc/{pid}/smaps_rollup", "Pss:") / 1024;

    /// <summary>Resident set size (VmRSS), used for the daemon, which is a single process.</summary>
    public static double RssMb(int pid) => FieldKb($"/proc/{pid}/status", "VmRSS:") / 1024;

    private static double FieldKb(string file, string field)
    {
        var line = File.ReadLines(file).First(l => l.StartsWith(field, StringComparison.Ordinal));
        return double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    }
}
