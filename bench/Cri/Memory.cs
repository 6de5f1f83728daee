using System.Globalization;

namespace Nacelle.Bench.Cri;

/// <summary>Process memory and threads from /proc, in MB.</summary>
internal static class Memory
{
    /// <summary>
    /// Proportional set size: each resident page divided by the number of processes mapping it, so summing it over
    /// processes counts shared code (the same monitor binary in every pod) once overall.
    /// </summary>
    public static double PssMb(int pid) => FieldKb($"/proc/{pid}/smaps_rollup", "Pss:") / 1024;

    /// <summary>Resident set size (VmRSS): every page the process maps, shared ones counted in full.</summary>
    public static double RssMb(int pid) => FieldKb($"/proc/{pid}/status", "VmRSS:") / 1024;

    /// <summary>
    /// Anonymous memory (smaps_rollup): the process's own pages (heaps, stacks, written data), which no other process
    /// shares. Unlike PSS it does not depend on who else maps the same files: a monitor whose idle peers have unmapped the
    /// binary's pages is charged all of the pages it touches in PSS, not in this.
    /// </summary>
    public static double AnonymousMb(int pid) => FieldKb($"/proc/{pid}/smaps_rollup", "Anonymous:") / 1024;

    /// <summary>
    /// Memory in memfd files the process holds open (their size, rounded up to pages): shared memory charged to whoever
    /// wrote it, which PSS, RSS and smaps' Anonymous show only for the pages the process maps, often none (a sealed
    /// copy of a helper binary that is only executed). Like PSS, a memfd several processes hold open is divided among
    /// them (the daemon hands its one copy of nacelle-spawn to every monitor). 0 when none.
    /// </summary>
    public static double MemfdMb(int pid)
    {
        double bytes = 0;
        Dictionary<long, int>? holders = null;
        foreach (var (inode, size) in Memfds(pid))
        {
            holders ??= MemfdHolders();
            bytes += (double)size / Math.Max(1, holders.GetValueOrDefault(inode));
        }

        return bytes / (1024 * 1024);
    }

    /// <summary>The memfds a process holds open: inode and size rounded up to pages (each once).</summary>
    private static Dictionary<long, long> Memfds(int pid)
    {
        var found = new Dictionary<long, long>();
        try
        {
            foreach (var fd in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
            {
                try
                {
                    if (new FileInfo(fd).LinkTarget is { } target && target.StartsWith("/memfd:", StringComparison.Ordinal))
                    {
                        var inode = long.Parse(File.ReadLines($"/proc/{pid}/fdinfo/{Path.GetFileName(fd)}")
                            .First(l => l.StartsWith("ino:", StringComparison.Ordinal))[4..].Trim(), CultureInfo.InvariantCulture);
                        // The file's own size (fstat through a new descriptor), not the /proc link's.
                        using var file = File.OpenHandle(fd, FileMode.Open, FileAccess.Read);
                        found[inode] = (RandomAccess.GetLength(file) + 4095) / 4096 * 4096;
                    }
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
                {
                    // Closed meanwhile.
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The process is gone.
        }

        return found;
    }

    /// <summary>How many processes on the node hold each memfd open.</summary>
    private static Dictionary<long, int> MemfdHolders()
    {
        var holders = new Dictionary<long, int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), out var pid))
            {
                foreach (var inode in Memfds(pid).Keys)
                {
                    holders[inode] = holders.GetValueOrDefault(inode) + 1;
                }
            }
        }

        return holders;
    }

    /// <summary>The process's threads.</summary>
    public static int Threads(int pid) => (int)FieldKb($"/proc/{pid}/status", "Threads:");

    /// <summary>PSS, RSS, anonymous memory, threads and held memfd memory at once.</summary>
    public static Usage Of(int pid) => new(PssMb(pid), RssMb(pid), Threads(pid), AnonymousMb(pid), MemfdMb(pid));

    /// <summary>
    /// Where a process's PSS is, from /proc/pid/smaps: anonymous memory (heap, GC heap, stacks) and file pages per
    /// mapped file, largest first; and the private dirty total. In kB.
    /// </summary>
    public static (double AnonymousKb, double PrivateDirtyKb, IReadOnlyList<(string Mapping, double PssKb)> Top) Breakdown(int pid, int top = 6)
    {
        var byMapping = new Dictionary<string, double>();
        double anonymous = 0, privateDirty = 0;
        var current = "[anon]";
        foreach (var line in File.ReadLines($"/proc/{pid}/smaps"))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 5 && parts[0].Contains('-', StringComparison.Ordinal) && !parts[0].EndsWith(':'))
            {
                current = parts.Length >= 6 ? Path.GetFileName(parts[5]) is { Length: > 0 } name ? name : parts[5] : "[anon]";
                continue;
            }

            if (parts.Length >= 2 && double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var kb))
            {
                switch (parts[0])
                {
                    case "Pss:":
                        byMapping[current] = byMapping.GetValueOrDefault(current) + kb;
                        break;
                    case "Anonymous:":
                        anonymous += kb;
                        break;
                    case "Private_Dirty:":
                        privateDirty += kb;
                        break;
                }
            }
        }

        return (anonymous, privateDirty, byMapping.OrderByDescending(m => m.Value).Take(top).Select(m => (m.Key, m.Value)).ToList());
    }

    private static double FieldKb(string file, string field)
    {
        var line = File.ReadLines(file).First(l => l.StartsWith(field, StringComparison.Ordinal));
        return double.Parse(line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    }
}

/// <summary>One process's (or a sum's) memory and threads.</summary>
internal readonly record struct Usage(double PssMb, double RssMb, int Threads, double AnonymousMb, double MemfdMb)
{
    public static Usage operator +(Usage a, Usage b) =>
        new(a.PssMb + b.PssMb, a.RssMb + b.RssMb, a.Threads + b.Threads, a.AnonymousMb + b.AnonymousMb, a.MemfdMb + b.MemfdMb);

    public Usage Per(int n) => new(PssMb / n, RssMb / n, Threads / n, AnonymousMb / n, MemfdMb / n);

    public Usage Max(Usage other) =>
        new(Math.Max(PssMb, other.PssMb), Math.Max(RssMb, other.RssMb), Math.Max(Threads, other.Threads), Math.Max(AnonymousMb, other.AnonymousMb),
            Math.Max(MemfdMb, other.MemfdMb));
}
