using System.Text;
using Nacelle.Monitor.Memory;

namespace Nacelle.Tests.Kernel.Memory;

/// <summary>
/// The idle monitor's choice of mappings to unmap (<see cref="FilePages.Selector"/>), checked against this kernel's
/// own account of this process: every page of every mapping chosen is a file page (or not resident), never an
/// anonymous copy and never swapped out (/proc/self/pagemap), while the process does have read-only file mappings that
/// hold anonymous pages (the RELRO of its shared libraries) and those are not chosen. Nothing is unmapped here: this
/// test host is a JIT process whose other threads load images (the monitor does it only as Native AOT). Writable
/// mappings (data sections, chosen to be dropped page by page) are covered by <see cref="UnwrittenPagesKernelTests"/>.
/// </summary>
public sealed class FilePagesKernelTests
{
    private const ulong Present = 1UL << 63;
    private const ulong Swapped = 1UL << 62;
    private const ulong FileOrSharedAnonymous = 1UL << 61;

    [Fact]
    public void Every_page_of_every_mapping_chosen_is_a_file_page_and_relro_is_never_chosen()
    {
        Assert.SkipUnless(Environment.IsPrivilegedProcess, "pagemap shows page frames and flags to root only");
        var first = Choose(File.ReadAllText("/proc/self/smaps"), out var readOnlyWithAnonymous);
        var pages = new Dictionary<FilePages.Range, (long Resident, long Anonymous)>();
        using (var pagemap = File.OpenHandle("/proc/self/pagemap"))
        {
            var entries = new byte[8 * 512];
            foreach (var range in first)
            {
                long resident = 0, anonymous = 0;
                for (var page = range.Start / 4096; page < range.End / 4096; page += 512)
                {
                    var count = (int)Math.Min(512, (range.End / 4096) - page);
                    var read = RandomAccess.Read(pagemap, entries.AsSpan(0, count * 8), (long)page * 8);
                    for (var i = 0; i < read / 8; i++)
                    {
                        var entry = BitConverter.ToUInt64(entries, i * 8);
                        resident += (entry & Present) != 0 ? 1 : 0;
                        anonymous += (entry & Swapped) != 0 || ((entry & Present) != 0 && (entry & FileOrSharedAnonymous) == 0) ? 1 : 0;
                    }
                }

                pages[range] = (resident, anonymous);
            }
        }

        // A mapping another thread changed meanwhile (an image being loaded and relocated) is chosen in one look only.
        var second = Choose(File.ReadAllText("/proc/self/smaps"), out _).ToHashSet();
        // The writable mappings chosen are dropped page by page, only where pagemap shows the file's pages (their written
        // pages are anonymous): UnwrittenPagesKernelTests. Whole mappings are only the read-only ones.
        var stable = first.Where(second.Contains).Where(r => !r.Writable).ToList();
        Assert.Contains(first, r => r.Writable);
        Assert.NotEmpty(readOnlyWithAnonymous);
        Assert.NotEmpty(stable);
        Assert.True(stable.Sum(r => pages[r].Resident) > 0, "no page of the mappings chosen is resident");
        Assert.All(stable, r => Assert.True(pages[r].Anonymous == 0, $"0x{r.Start:x}-0x{r.End:x}: {pages[r].Anonymous} anonymous or swapped pages"));
        Assert.Empty(readOnlyWithAnonymous.Intersect(first));
    }

    /// <summary>The mappings the selector chooses in a smaps text, and those that are private, read-only, file-backed
    /// and hold anonymous pages (which it must never choose).</summary>
    private static List<FilePages.Range> Choose(string smaps, out List<FilePages.Range> readOnlyWithAnonymous)
    {
        var chosen = new List<FilePages.Range>();
        readOnlyWithAnonymous = [];
        var selector = new FilePages.Selector();
        FilePages.Range current = default;
        var readOnlyFile = false;
        foreach (var line in smaps.Split('\n'))
        {
            if (selector.Feed(Encoding.ASCII.GetBytes(line), out var range))
            {
                chosen.Add(range);
            }

            var fields = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length == 6 && fields[0].Split('-') is [var from, var to] && !fields[0].EndsWith(':'))
            {
                current = new FilePages.Range(Convert.ToUInt64(from, 16), Convert.ToUInt64(to, 16));
                readOnlyFile = fields[1] is "r--p" or "r-xp" && fields[5].StartsWith('/');
            }
            else if (readOnlyFile && fields is ["Anonymous:", var kb, "kB"] && kb != "0")
            {
                readOnlyWithAnonymous.Add(current);
            }
        }

        if (selector.Finish(out var last))
        {
            chosen.Add(last);
        }

        return chosen;
    }
}
