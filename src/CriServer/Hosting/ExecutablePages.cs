using System.Globalization;
using Nacelle.ContainerCore.Interop;

namespace Nacelle.CriServer.Hosting;

/// <summary>
/// Hands back the executable's pages that the daemon is not using. Start-up runs through most of the program once (the
/// configuration, the host, the kernel probe) and the kernel maps whole runs of the file around each page touched: a
/// fresh daemon had ~18 MB of its executable resident although an idle one touches ~3 MB of it, and the first calls of a
/// client bring back ~10 MB more that an idle daemon does not touch again. These are clean pages of the file, which the
/// kernel reclaims under memory pressure at no cost; this reclaims them (MADV_PAGEOUT on every private mapping of the
/// executable: code, read-only data, and the data section, whose type data stays clean file pages in a daemon linked
/// at a fixed address without dehydration) right after start and when the daemon has been left alone, so that its
/// resident set shows what it uses. PAGEOUT never changes what a page holds: a page the daemon wrote (its own copy) goes
/// to swap or, without swap, stays; a page needed again is read back from the file on first touch.
/// </summary>
internal static class ExecutablePages
{
    /// <summary>A mapping of the file: where it starts and how long it is.</summary>
    internal readonly record struct Mapping(ulong Start, ulong Length);

    private const int ENOENT = 2;

    /// <summary>
    /// Reclaims the executable's pages; answers the errno of the first failure, or 0. Nothing here stops the daemon:
    /// without /proc/self/maps (ENOENT) nothing is released.
    /// </summary>
    public static int Release()
    {
        var executable = Environment.ProcessPath;
        string maps;
        try
        {
            maps = File.ReadAllText("/proc/self/maps");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return ENOENT;
        }

        if (executable is null)
        {
            return 0;
        }

        foreach (var mapping in PrivateMappings(maps, executable))
        {
            var errno = MemoryAdvice.PageOut((nuint)mapping.Start, (nuint)mapping.Length);
            if (errno != 0)
            {
                return errno;
            }
        }

        return 0;
    }

    /// <summary>
    /// The private mappings of <paramref name="path"/> in a /proc/PID/maps text ("address perms offset dev inode path",
    /// perms like r-xp or rw-p; a shared mapping, r--s, is not the process's alone to reclaim).
    /// </summary>
    internal static IReadOnlyList<Mapping> PrivateMappings(string maps, string path)
    {
        var found = new List<Mapping>();
        foreach (var line in maps.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 6 || fields[5].Trim() != path || fields[1].Length != 4 || fields[1][3] != 'p')
            {
                continue;
            }

            var range = fields[0].Split('-');
            if (range.Length == 2 && ulong.TryParse(range[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var start)
                && ulong.TryParse(range[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var end) && end > start)
            {
                found.Add(new Mapping(start, end - start));
            }
        }

        return found;
    }
}
