using System.Globalization;
using Nacelle.Common;

namespace Nacelle.Sandbox.Containers.Spec;

/// <summary>One line of an /etc/passwd.</summary>
public sealed record PasswdEntry(string Name, uint Uid, uint Gid, string Home);

/// <summary>One line of an /etc/group.</summary>
public sealed record GroupEntry(string Name, uint Gid, IReadOnlyList<string> Members);

/// <summary>
/// Resolves the user a container runs as from the image's /etc/passwd and /etc/group, as containerd does: a user given
/// by name must exist in /etc/passwd (it gives the uid and the primary gid); a numeric uid needs no entry (the primary
/// gid is the entry's when there is one, else 0); a group part ("user:group") overrides the primary gid and, by name,
/// must exist in /etc/group.
/// </summary>
public static class ImageUsers
{
    /// <summary>The highest id a container may use (4294967295 is "no id" to the kernel).</summary>
    public const long MaxId = uint.MaxValue - 1L;

    /// <summary>The entries of an /etc/passwd text; comments, blank and malformed lines are skipped (as libc does).</summary>
    public static IReadOnlyList<PasswdEntry> ParsePasswd(string? text)
    {
        var entries = new List<PasswdEntry>();
        foreach (var line in Lines(text))
        {
            var parts = line.Split(':');
            if (parts.Length < 4 || parts[0].Length == 0 || !TryId(parts[2], out var uid) || !TryId(parts[3], out var gid))
            {
                continue;
            }

            entries.Add(new PasswdEntry(parts[0], uid, gid, parts.Length > 5 ? parts[5] : string.Empty));
        }

        return entries;
    }

    /// <summary>The entries of an /etc/group text; comments, blank and malformed lines are skipped.</summary>
    public static IReadOnlyList<GroupEntry> ParseGroup(string? text)
    {
        var entries = new List<GroupEntry>();
        foreach (var line in Lines(text))
        {
            var parts = line.Split(':');
            if (parts.Length < 3 || parts[0].Length == 0 || !TryId(parts[2], out var gid))
            {
                continue;
            }

            var members = parts.Length > 3
                ? parts[3].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                : [];
            entries.Add(new GroupEntry(parts[0], gid, members));
        }

        return entries;
    }

    /// <summary>
    /// The user of a container. <paramref name="user"/> is a uid or a name, <paramref name="group"/> (optional) a gid or a
    /// group name; <paramref name="field"/> names where they came from for error messages.
    /// <paramref name="mergeImageGroups"/> adds the groups /etc/group lists the user in (SupplementalGroupsPolicy Merge);
    /// the primary gid comes first, then those, then <paramref name="supplementalGroups"/>, without repeats.
    /// </summary>
    public static ResolvedUser Resolve(
        string user,
        string? group,
        string field,
        string? passwdText,
        string? groupText,
        bool mergeImageGroups,
        IReadOnlyList<uint> supplementalGroups)
    {
        ArgumentNullException.ThrowIfNull(user);
        var passwd = ParsePasswd(passwdText);
        var groups = ParseGroup(groupText);

        PasswdEntry? entry;
        uint uid;
        uint gid;
        if (user.Length == 0)
        {
            throw NacelleException.InvalidArgument($"{field}: the user name is empty");
        }

        if (IsNumeric(user))
        {
            uid = ParseId(user, field, "uid");
            entry = passwd.FirstOrDefault(p => p.Uid == uid);
            gid = entry?.Gid ?? 0;
        }
        else
        {
            if (passwdText is null)
            {
                throw NacelleException.InvalidArgument($"{field}: user \"{user}\" cannot be resolved: the image has no /etc/passwd");
            }

            entry = passwd.FirstOrDefault(p => p.Name == user)
                ?? throw NacelleException.InvalidArgument($"{field}: user \"{user}\" is not in the image's /etc/passwd");
            uid = entry.Uid;
            gid = entry.Gid;
        }

        if (!string.IsNullOrEmpty(group))
        {
            if (IsNumeric(group))
            {
                gid = ParseId(group, field, "gid");
            }
            else
            {
                if (groupText is null)
                {
                    throw NacelleException.InvalidArgument($"{field}: group \"{group}\" cannot be resolved: the image has no /etc/group");
                }

                gid = (groups.FirstOrDefault(g => g.Name == group)
                    ?? throw NacelleException.InvalidArgument($"{field}: group \"{group}\" is not in the image's /etc/group")).Gid;
            }
        }

        var additional = new List<uint> { gid };
        var name = entry?.Name ?? (IsNumeric(user) ? null : user);
        if (mergeImageGroups && name is not null)
        {
            foreach (var g in groups)
            {
                if (g.Members.Contains(name, StringComparer.Ordinal) && !additional.Contains(g.Gid))
                {
                    additional.Add(g.Gid);
                }
            }
        }

        foreach (var extra in supplementalGroups)
        {
            if (!additional.Contains(extra))
            {
                additional.Add(extra);
            }
        }

        var home = string.IsNullOrEmpty(entry?.Home) ? null : entry.Home;
        return new ResolvedUser(uid, gid, additional, home, name);
    }

    /// <summary>Splits an image config User ("name", "uid", "name:group", "uid:gid") into its parts.</summary>
    public static (string User, string? Group) SplitImageUser(string imageUser)
    {
        ArgumentNullException.ThrowIfNull(imageUser);
        var colon = imageUser.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 ? (imageUser, null) : (imageUser[..colon], imageUser[(colon + 1)..]);
    }

    private static bool IsNumeric(string s) => s.Length > 0 && s.All(char.IsAsciiDigit);

    private static uint ParseId(string s, string field, string what)
    {
        if (!long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var id) || id > MaxId)
        {
            throw NacelleException.InvalidArgument($"{field}: {what} {s} is outside 0..{MaxId}");
        }

        return (uint)id;
    }

    private static bool TryId(string s, out uint id)
    {
        id = 0;
        if (!long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value > MaxId)
        {
            return false;
        }

        id = (uint)value;
        return true;
    }

    private static IEnumerable<string> Lines(string? text)
    {
        if (text is null)
        {
            yield break;
        }

        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            yield return line;
        }
    }
}
