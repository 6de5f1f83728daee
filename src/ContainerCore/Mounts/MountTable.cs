using System.Globalization;
using Nacelle.ContainerCore.Interop;

namespace Nacelle.ContainerCore.Mounts;

/// <summary>One line of /proc/self/mountinfo: the mount's id, where it is mounted and its propagation.</summary>
/// <param name="Shared">"shared:N": mount and unmount events under it propagate to its peers (and from them).</param>
/// <param name="Slave">"master:N": it receives its master's events.</param>
public sealed record MountEntry(ulong Id, string MountPoint, bool Shared, bool Slave);

/// <summary>
/// The mount table of this process's mount namespace (/proc/self/mountinfo), for the propagation rules: a
/// PROPAGATION_BIDIRECTIONAL volume needs a source on a shared mount, a HOST_TO_CONTAINER one a shared or slave one.
/// </summary>
public static class MountTable
{
    /// <summary>Parses mountinfo text (proc(5)): "id parent major:minor root mountpoint options [optional...] - type ...".</summary>
    public static IReadOnlyList<MountEntry> Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var entries = new List<MountEntry>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = line.Split(' ');
            var separator = Array.IndexOf(fields, "-");
            if (fields.Length < 7 || separator < 6 || !ulong.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var id))
            {
                continue;
            }

            var optional = fields[6..separator];
            entries.Add(new MountEntry(id, Unescape(fields[4]),
                optional.Any(f => f.StartsWith("shared:", StringComparison.Ordinal)),
                optional.Any(f => f.StartsWith("master:", StringComparison.Ordinal))));
        }

        return entries;
    }

    /// <summary>The mount <paramref name="path"/> is on (symlinks followed), or null when the path does not exist.</summary>
    public static MountEntry? MountOf(string path)
    {
        ulong id;
        try
        {
            id = MountTrees.MountIdOf(path);
        }
        catch (IOException)
        {
            return null;
        }

        return Parse(File.ReadAllText("/proc/self/mountinfo")).FirstOrDefault(e => e.Id == id);
    }

    // mountinfo escapes space, tab, newline and backslash as \ooo (octal).
    private static string Unescape(string field)
    {
        if (!field.Contains('\\', StringComparison.Ordinal))
        {
            return field;
        }

        var text = new System.Text.StringBuilder(field.Length);
        for (var i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && IsOctal(field, i + 1))
            {
                text.Append((char)Convert.ToInt32(field.Substring(i + 1, 3), 8));
                i += 3;
            }
            else
            {
                text.Append(field[i]);
            }
        }

        return text.ToString();
    }

    private static bool IsOctal(string s, int at) =>
        at + 3 <= s.Length && s.AsSpan(at, 3).IndexOfAnyExcept("01234567") < 0;
}
