using System.Globalization;

namespace Nacelle.ContainerCore.Runtime;

/// <summary>A process's identity beyond its pid: its start time, which a reused pid cannot share, and its parent.</summary>
public static class ProcessIdentity
{
    /// <summary>Field 22 of /proc/PID/stat (start time in clock ticks since boot); null when the process is gone.</summary>
    public static ulong? StartTime(int pid) => ReadStat(pid) is { } stat ? ParseStartTime(stat) : null;

    /// <summary>Whether the process that started at <paramref name="startTime"/> still runs as <paramref name="pid"/>: the pid
    /// is not reused (same start time) and the process is not a zombie waiting for a parent that may never reap it.</summary>
    public static bool IsRunning(int pid, ulong startTime) =>
        ReadStat(pid) is { } stat && ParseStartTime(stat) == startTime && FieldsAfterCommand(stat) is [var state, ..] && state is not ("Z" or "X");

    /// <summary>Whether <paramref name="pid"/> runs (not a zombie) as a child of <paramref name="parent"/> (field 4 of
    /// /proc/PID/stat): a pid reused by anything else has another parent.</summary>
    public static bool IsRunningChildOf(int pid, int parent) =>
        ReadStat(pid) is { } stat && FieldsAfterCommand(stat) is [var state, var ppid, ..] && state is not ("Z" or "X") &&
        int.TryParse(ppid, NumberStyles.None, CultureInfo.InvariantCulture, out var actual) && actual == parent;

    /// <summary>Parses the start time out of a /proc/PID/stat line (the command may hold spaces and parentheses).</summary>
    public static ulong? ParseStartTime(string stat)
    {
        // After "pid (comm) " come fields 3.. ; the start time is field 22, the 20th of those.
        var fields = FieldsAfterCommand(stat);
        return fields.Length >= 20 && ulong.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks) ? ticks : null;
    }

    private static string? ReadStat(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Fields 3 onwards of a stat line: everything after the last ')' closing the command.</summary>
    private static string[] FieldsAfterCommand(string stat)
    {
        var close = stat.LastIndexOf(')');
        return close < 0 ? [] : stat[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
    }
}
