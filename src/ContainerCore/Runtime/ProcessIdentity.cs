using System.Globalization;

namespace Nacelle.ContainerCore.Runtime;

/// <summary>A process's identity beyond its pid: its start time, which a reused pid cannot share.</summary>
public static class ProcessIdentity
{
    /// <summary>Field 22 of /proc/PID/stat (start time in clock ticks since boot); null when the process is gone.</summary>
    public static ulong? StartTime(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        return ParseStartTime(stat);
    }

    /// <summary>Parses the start time out of a /proc/PID/stat line (the command may hold spaces and parentheses).</summary>
    public static ulong? ParseStartTime(string stat)
    {
        var close = stat.LastIndexOf(')');
        if (close < 0)
        {
            return null;
        }

        // After "pid (comm) " come fields 3.. ; the start time is field 22, the 20th of those.
        var fields = stat[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return fields.Length >= 20 && ulong.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks) ? ticks : null;
    }
}
