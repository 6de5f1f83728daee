using System.Globalization;

namespace Nacelle.Sandbox.Containers.Spec;

/// <summary>
/// Linux signal names and numbers (x86_64 and aarch64 agree on all of them) for stop signals: an image's StopSignal
/// given by name ("SIGTERM", "TERM", "SIGRTMIN+3") or number ("15"), as Docker parses it, and the canonical name of a
/// number. SIGRTMIN is 34 as glibc (and Docker) count it.
/// </summary>
public static class StopSignals
{
    /// <summary>SIGTERM: the default stop signal.</summary>
    public const int Default = 15;

    /// <summary>SIGRTMIN and SIGRTMAX.</summary>
    public const int RtMin = 34;
    public const int RtMax = 64;

    // The named signals with their Linux numbers, alphabetically (SIGIOT, SIGCLD and SIGPOLL are aliases).
    private static readonly (string Name, int Number)[] Named =
    [
        ("SIGABRT", 6), ("SIGALRM", 14), ("SIGBUS", 7), ("SIGCHLD", 17), ("SIGCLD", 17), ("SIGCONT", 18), ("SIGFPE", 8),
        ("SIGHUP", 1), ("SIGILL", 4), ("SIGINT", 2), ("SIGIO", 29), ("SIGIOT", 6), ("SIGKILL", 9), ("SIGPIPE", 13),
        ("SIGPOLL", 29), ("SIGPROF", 27), ("SIGPWR", 30), ("SIGQUIT", 3), ("SIGSEGV", 11), ("SIGSTKFLT", 16),
        ("SIGSTOP", 19), ("SIGSYS", 31), ("SIGTERM", 15), ("SIGTRAP", 5), ("SIGTSTP", 20), ("SIGTTIN", 21),
        ("SIGTTOU", 22), ("SIGURG", 23), ("SIGUSR1", 10), ("SIGUSR2", 12), ("SIGVTALRM", 26), ("SIGWINCH", 28),
        ("SIGXCPU", 24), ("SIGXFSZ", 25),
    ];

    private static readonly Dictionary<string, int> ByName = BuildNames();

    /// <summary>Parses an image's StopSignal: a name with or without "SIG" in any case, or a number 1..64.</summary>
    public static (int Number, string Name)? Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var trimmed = text.Trim();
        if (int.TryParse(trimmed, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
        {
            return n is >= 1 and <= RtMax ? (n, NameOf(n)) : null;
        }

        var upper = trimmed.ToUpperInvariant();
        if (!upper.StartsWith("SIG", StringComparison.Ordinal))
        {
            upper = "SIG" + upper;
        }

        return ByName.TryGetValue(upper, out var number) ? (number, NameOf(number)) : null;
    }

    /// <summary>The canonical name of a signal number ("SIGTERM", "SIGRTMIN+2", "SIGRTMAX-1"); "SIG&lt;n&gt;" when unnamed.</summary>
    public static string NameOf(int number)
    {
        foreach (var (name, n) in Named)
        {
            // SIGCLD, SIGIOT and SIGPOLL are aliases; the table lists the canonical name first except for these.
            if (n == number && name is not ("SIGCLD" or "SIGIOT" or "SIGPOLL"))
            {
                return name;
            }
        }

        return number switch
        {
            RtMin => "SIGRTMIN",
            RtMax => "SIGRTMAX",
            > RtMin and <= RtMin + 15 => $"SIGRTMIN+{number - RtMin}",
            > RtMin + 15 and < RtMax => $"SIGRTMAX-{RtMax - number}",
            _ => $"SIG{number}",
        };
    }

    private static Dictionary<string, int> BuildNames()
    {
        var map = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (name, number) in Named)
        {
            map[name] = number;
        }

        map["SIGRTMIN"] = RtMin;
        map["SIGRTMAX"] = RtMax;
        for (var i = 1; i <= 15; i++)
        {
            map[$"SIGRTMIN+{i}"] = RtMin + i;
        }

        for (var i = 1; i <= 14; i++)
        {
            map[$"SIGRTMAX-{i}"] = RtMax - i;
        }

        return map;
    }
}
