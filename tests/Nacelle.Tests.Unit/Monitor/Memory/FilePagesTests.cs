using System.Text;
using Nacelle.Monitor.Memory;

namespace Nacelle.Tests.Unit.Monitor.Memory;

/// <summary>
/// Which mappings an idle monitor unmaps (<see cref="FilePages.Selector"/>), from smaps text laid out as Linux 6.x
/// writes it: private, readable, non-writable file mappings without anonymous or swapped-out pages whole, private
/// writable ones page by page (<see cref="FilePages.Range.Writable"/>), nothing locked, huge-page, PFN/IO, userfaultfd
/// or shared; anything incomplete or malformed is left alone. And which pages of a writable one go (pagemap entries).
/// </summary>
public sealed class FilePagesTests
{
    private const string Exe = "/usr/local/bin/nacelle-monitor";
    private const string Libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";

    /// <summary>One smaps entry: the header, then the lines the selector reads among the others the kernel writes.</summary>
    private static string Entry(string header, int anonymousKb = 0, int swapKb = 0, string flags = "rd mr mw me", bool complete = true)
    {
        var text = new StringBuilder();
        text.Append(header).Append('\n');
        text.Append("Size:                 16 kB\nRss:                  16 kB\nPss:                   1 kB\n");
        text.Append("Private_Dirty:         0 kB\n");
        if (complete)
        {
            text.Append($"Anonymous:          {anonymousKb,3} kB\n");
        }

        text.Append("KSM:                   0 kB\nLazyFree:              0 kB\n");
        text.Append($"Swap:               {swapKb,3} kB\nSwapPss:               0 kB\nLocked:                0 kB\nTHPeligible:           0\n");
        text.Append($"VmFlags: {flags} \n");
        return text.ToString();
    }

    private static List<FilePages.Range> Select(string smaps)
    {
        var chosen = new List<FilePages.Range>();
        var selector = new FilePages.Selector();
        foreach (var line in smaps.Split('\n'))
        {
            if (selector.Feed(Encoding.UTF8.GetBytes(line), out var range))
            {
                chosen.Add(range);
            }
        }

        if (selector.Finish(out var last))
        {
            chosen.Add(last);
        }

        return chosen;
    }

    [Fact]
    public void The_executables_and_librarys_code_and_read_only_data_are_chosen_whole_their_data_page_by_page_and_nothing_else()
    {
        var smaps = string.Concat(
            Entry($"00400000-00480000 r--p 00000000 fe:00 5425577                    {Exe}"),
            Entry($"00480000-00a00000 r-xp 00080000 fe:00 5425577                    {Exe}", flags: "rd ex mr mw me"),
            // RELRO: read-only now, but ld.so wrote it before main (anonymous copies): never.
            Entry($"00a00000-00a20000 r--p 00600000 fe:00 5425577                    {Exe}", anonymousKb: 128),
            Entry($"00a20000-00a40000 rw-p 00620000 fe:00 5425577                    {Exe}", flags: "rd wr mr mw me ac"),
            Entry("00a40000-00a60000 rw-p 00000000 00:00 0 ", flags: "rd wr mr mw me ac"),
            Entry("01000000-01021000 rw-p 00000000 00:00 0                          [heap]", flags: "rd wr mr mw me ac"),
            Entry("7f0000000000-7f0000400000 rw-p 00000000 00:00 0 ", flags: "rd wr mr mw me ac"),
            Entry($"7f9000000000-7f9000026000 r--p 00000000 fe:00 332096                     {Libc}"),
            Entry($"7f9000026000-7f900017c000 r-xp 00026000 fe:00 332096                     {Libc}", flags: "rd ex mr mw me"),
            Entry($"7f900017c000-7f90001d0000 r--p 0017c000 fe:00 332096                     {Libc}", swapKb: 4),
            Entry($"7f90001d0000-7f90001d4000 r--p 001cf000 fe:00 332096                     {Libc}", anonymousKb: 16),
            Entry($"7f90001d4000-7f90001d6000 rw-p 001d3000 fe:00 332096                     {Libc}", flags: "rd wr mr mw me ac"),
            Entry($"7f9000200000-7f9000201000 r--s 00000000 fe:00 5425577                    {Exe}", flags: "rd sh mr mw me"),
            Entry($"7f9000300000-7f9000301000 ---p 00000000 fe:00 332096                     {Libc}", flags: "mr mw me"),
            Entry("7ffe686d5000-7ffe686f6000 rw-p 00000000 00:00 0                          [stack]", flags: "rd wr mr mw me gd ac"),
            Entry("7ffe687f6000-7ffe687fa000 r--p 00000000 00:00 0                          [vvar]", flags: "rd mr pf io de dd"),
            Entry("7ffe687fa000-7ffe687fc000 r-xp 00000000 00:00 0                          [vdso]", flags: "rd ex mr mw me de"),
            Entry("ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]", flags: "ex"));

        Assert.Equal(
            [new FilePages.Range(0x400000, 0x480000), new FilePages.Range(0x480000, 0xa00000),
             new FilePages.Range(0xa20000, 0xa40000, Writable: true),
             new FilePages.Range(0x7f9000000000, 0x7f9000026000), new FilePages.Range(0x7f9000026000, 0x7f900017c000),
             new FilePages.Range(0x7f90001d4000, 0x7f90001d6000, Writable: true)],
            Select(smaps));
    }

    [Theory]
    [InlineData("rd mr mw me lo")] // locked: MADV_DONTNEED refuses, and mlock'd memory is meant to stay
    [InlineData("rd mr mw me ht")] // hugetlb
    [InlineData("rd mr pf io")] // raw PFN / device memory
    [InlineData("rd mr mw me um")] // userfaultfd: a fault would go to its handler
    [InlineData("rd mr mw me uw")]
    public void A_mapping_with_a_flag_outside_plain_file_memory_is_left_alone(string flags)
    {
        Assert.Empty(Select(Entry($"00400000-00480000 r--p 00000000 fe:00 5425577 {Exe}", flags: flags)));
    }

    [Theory]
    [InlineData($"00400000-00480000 r--p 00000000 fe:00 5425577 {Exe} (deleted)", true)] // its pages are held by the mapping's file
    [InlineData("00400000-00480000 r--p 00000000 fe:00 0 /not/an/inode", false)]
    [InlineData($"00400000-00480000 r--p 00000000 fe:00 5425577", false)] // no path
    [InlineData($"00480000-00400000 r--p 00000000 fe:00 5425577 {Exe}", false)] // end before start
    [InlineData($"0040000g-00480000 r--p 00000000 fe:00 5425577 {Exe}", false)]
    [InlineData($"00400000-00480000 r--P 00000000 fe:00 5425577 {Exe}", false)]
    [InlineData($"00400000-00480000 rw-p 00000000 fe:00 5425577 {Exe}", true)] // writable: page by page
    [InlineData($"00400000-00480000 rwxp 00000000 fe:00 5425577 {Exe}", false)]
    [InlineData("00400000-00480000 rw-p 00000000 00:00 0 ", false)] // anonymous
    [InlineData($"00400000-00480000 r--s 00000000 fe:00 5425577 {Exe}", false)]
    [InlineData($"00400000-00480000 -r-p 00000000 fe:00 5425577 {Exe}", false)]
    public void Only_a_well_formed_private_read_only_file_mapping_is_chosen(string header, bool chosen)
    {
        Assert.Equal(chosen, Select(Entry(header)).Count == 1);
    }

    [Theory]
    [InlineData("rd wr mr mw me ac lo")]
    [InlineData("rd wr mr mw me ac um")]
    [InlineData("rd wr sh mr mw me")]
    public void A_writable_mapping_with_a_flag_outside_plain_private_file_memory_is_left_alone(string flags)
    {
        Assert.Empty(Select(Entry($"00a20000-00a40000 rw-p 00620000 fe:00 5425577 {Exe}", anonymousKb: 12, swapKb: 4, flags: flags)));
    }

    [Fact]
    public void A_writable_mapping_is_chosen_whatever_its_anonymous_and_swapped_pages_pagemap_decides_per_page()
    {
        Assert.Equal(
            [new FilePages.Range(0xa20000, 0xa40000, Writable: true)],
            Select(Entry($"00a20000-00a40000 rw-p 00620000 fe:00 5425577 {Exe}", anonymousKb: 12, swapKb: 4, flags: "rd wr mr mw me ac")));
    }

    private const ulong Present = 1UL << 63;
    private const ulong Swapped = 1UL << 62;
    private const ulong FilePage = 1UL << 61;
    private const ulong Exclusive = 1UL << 56;

    [Fact]
    public void Only_runs_of_present_file_pages_are_unwritten_never_an_anonymous_copy_a_swapped_or_an_absent_page()
    {
        ulong[] entries =
        [
            Present | FilePage | 0x1234, Present | FilePage | Exclusive, Present | FilePage, // three file pages, one run
            Present | Exclusive | 0x99, // written: the process's own copy
            Swapped | 0x5, // an anonymous page swapped out
            0, // not resident
            FilePage, // a file page's flag without present (a shared-memory swap entry): not resident
            Present | FilePage,
        ];

        Assert.Equal(3, FilePages.UnwrittenRun(entries));
        Assert.Equal(2, FilePages.UnwrittenRun(entries.AsSpan(1)));
        Assert.Equal(0, FilePages.UnwrittenRun(entries.AsSpan(3)));
        Assert.Equal(0, FilePages.UnwrittenRun(entries.AsSpan(4)));
        Assert.Equal(0, FilePages.UnwrittenRun(entries.AsSpan(5)));
        Assert.Equal(0, FilePages.UnwrittenRun(entries.AsSpan(6)));
        Assert.Equal(1, FilePages.UnwrittenRun(entries.AsSpan(7)));
        Assert.Equal(0, FilePages.UnwrittenRun([]));
    }

    [Fact]
    public void A_mapping_whose_entry_lacks_the_anonymous_count_is_left_alone()
    {
        Assert.Empty(Select(Entry($"00400000-00480000 r--p 00000000 fe:00 5425577 {Exe}", complete: false)));
        Assert.Empty(Select($"00400000-00480000 r--p 00000000 fe:00 5425577 {Exe}\nAnonymous:             0 kB\nSwap:                  0 kB\n"));
    }

    [Fact]
    public void Lines_before_the_first_header_are_ignored()
    {
        Assert.Empty(Select("Anonymous:             0 kB\nSwap:                  0 kB\nVmFlags: rd mr\n"));
    }
}
