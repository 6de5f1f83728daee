using System.Globalization;
using Nacelle.ContainerCore.Interop;

namespace Nacelle.CriServer.Hosting;

/// <summary>
/// Hands back the executable's pages that only start-up needed. Start-up runs through most of the program once (the
/// configuration, the host, the kernel probe, the runtime's own type data it unpacks) and the kernel maps whole runs of
/// the file around each page touched: a fresh daemon has ~18 MB of its executable resident although an idle one
/// touches ~3 MB of it. These are clean pages of the file, which the kernel reclaims under memory pressure at no cost;
/// this reclaims them right after start (MADV_PAGEOUT on the executable's read-only mappings: its code and read-only
/// data), so that the daemon's resident set shows what it uses. A page needed again is read back from the file (the
/// page cache) on first touch. Writable mappings are left alone.
/// </summary>
internal static class StartupPages
{
    /// <summary>A mapping of the file: where it starts and how long it is.</summary>
    internal readonly record struct Mapping(ulong Start, ulong Length);

    private const int ENOENT = 2;

    /// <summary>
    /// Reclaims the executable's read-only pages; answers the errno of the first failure, or 0. Nothing here stops the
    /// daemon: without /proc/self/maps (ENOENT) nothing is released.
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

        foreach (var mapping in ReadOnlyMappings(maps, executable))
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
    /// The mappings of <paramref name="path"/> in a /proc/PID/maps text that are neither writable nor shared
    /// ("address perms offset dev inode path", perms like r-xp).
    /// </summary>
    internal static IReadOnlyList<Mapping> ReadOnlyMappings(string maps, string path)
    {
        var found = new List<Mapping>();
        foreach (var line in maps.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 6 || fields[5].Trim() != path || fields[1].Length != 4 || fields[1][1] != '-' || fields[1][3] != 'p')
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
