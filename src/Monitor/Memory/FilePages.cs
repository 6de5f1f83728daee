using System.Buffers.Text;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Nacelle.ContainerCore.Interop;

namespace Nacelle.Monitor.Memory;

/// <summary>
/// Lets go of the file pages an idle monitor has mapped but does not need: the clean pages of its own executable (code,
/// read-only data) and of libc, libm and ld.so that the work touched. Every pod's monitor maps the same executable, so
/// these pages are shared and cost little PSS, but they are most of each monitor's RSS (~6 MB of ~8.7 MB). At the settle
/// they are unmapped from this process (madvise MADV_DONTNEED): they stay in the page cache, and a later touch maps them
/// again with a minor fault. Nothing is read from disk unless the kernel has reclaimed them meanwhile, as it may anyway.
/// <para>
/// What is safe to drop is decided from /proc/self/smaps, mapping by mapping, failing closed. MADV_DONTNEED on a private
/// file mapping loses exactly the pages the process has made its own (copies on write: anonymous pages, resident or
/// swapped out), so a mapping is chosen only when it is file-backed (an inode, a path), private, readable and NOT
/// writable (so nothing can write into it between the check and the advice: the monitor's settle runs on its only
/// working thread, and a Native AOT process changes no mapping's protection after start; ld.so's RELRO was written
/// before main and shows as anonymous pages), holds no anonymous page and no swapped-out one (<c>Anonymous: 0 kB</c>,
/// <c>Swap: 0 kB</c>), and is not locked, huge-page, raw PFN/IO or userfaultfd-registered (VmFlags lo, ht, pf, io, um,
/// uw). A mapping whose smaps entry lacks any of those lines, or does not parse, is left alone; so are the stack, the
/// heap, the GC's memory, every shared mapping and every writable one but the private file mappings below.
/// </para>
/// <para>
/// A private WRITABLE file mapping (the executable's .data: 1.4 MB mapped, nearly all of it resident clean file pages of
/// which a few dozen the monitor wrote) is dropped page by page instead (<see cref="DropUnwritten"/>): /proc/self/pagemap
/// says which pages are present and still the file's (a page the process wrote is an anonymous copy), and only runs of
/// those are advised. Between that look and the advice no page of the range may be written, or the write is lost: so
/// this runs only when every other thread of the process is parked in an untimed futex wait (<see cref="ThreadCensus"/>;
/// in an idle monitor that is the finalizer, which only this thread can wake), and the code between the look and the
/// advice allocates nothing (no collection), takes no lock, wakes nobody and calls only what it called before the look
/// (a first p/invoke call binds its target, a write into .data).
/// </para>
/// <para>
/// Only a Native AOT monitor does this (<see cref="ScratchMemory.DropsFilePages"/>, set by Program): under the JIT other
/// threads load and relocate images at any time (a fresh read-only section is made writable, relocated and protected
/// again), which the check could race with.
/// </para>
/// </summary>
public static class FilePages
{
    /// <summary>At most this many mappings are dropped per pass (a monitor maps some 20 files' sections).</summary>
    public const int MaxMappings = 128;

    /// <summary>
    /// An address range [Start, End); <paramref name="Writable"/>: of a private writable file mapping, whose pages are
    /// dropped one by one, only where they are still the file's (<see cref="DropUnwritten"/>).
    /// </summary>
    public readonly record struct Range(ulong Start, ulong End, bool Writable = false)
    {
        public ulong Length => End - Start;
    }

    private const int PageSize = 4096;
    private const ulong Present = 1UL << 63;
    private const ulong FilePage = 1UL << 61;

    /// <summary>How many times the census is taken before a pass gives up on the writable mappings.</summary>
    private const int CensusAttempts = 5;

    /// <summary>What a pass advised: whole read-only mappings, and the unwritten pages of writable ones.</summary>
    public readonly record struct Dropped(long ReadOnlyBytes, long WritableBytes);

    /// <summary>
    /// Drops the pages of every read-only mapping <see cref="Selector"/> chooses in this process's smaps and, when
    /// <paramref name="writable"/> and every other thread is parked (<see cref="ThreadCensus"/>), the unwritten pages
    /// of the writable ones; returns the bytes of address space advised (not all of it was resident). Reads smaps and
    /// pagemap through <paramref name="buffer"/> (at least one whole smaps line: 64 KiB is plenty).
    /// </summary>
    public static Dropped Drop(Span<byte> buffer, bool writable)
    {
        Span<Range> chosen = stackalloc Range[MaxMappings];
        var count = Select(buffer, chosen);
        // The writable ones first: the census and the pagemap run code that the read-only drop then lets go of too (a
        // page touched after that drop comes back with its neighbours: the kernel maps up to 64 KiB around a fault).
        var unwritten = writable ? DropWritable(chosen[..count], buffer) : 0;
        long advised = 0;
        foreach (var range in chosen[..count])
        {
            // EINVAL (a mapping that became locked or huge-paged meanwhile) leaves it as it was: nothing to undo.
            if (!range.Writable && MemoryAdvice.DontNeed((nuint)range.Start, (nuint)range.Length) == 0)
            {
                advised += (long)range.Length;
            }
        }

        return new Dropped(advised, unwritten);
    }

    /// <summary>The unwritten pages of the writable mappings among <paramref name="chosen"/> (none: 0).</summary>
    private static long DropWritable(ReadOnlySpan<Range> chosen, Span<byte> buffer)
    {
        var first = 0;
        while (first < chosen.Length && !chosen[first].Writable)
        {
            first++;
        }

        if (first == chosen.Length)
        {
            return 0;
        }

        using var pagemap = File.OpenHandle("/proc/self/pagemap");
        using var census = ThreadCensus.Open();
        if (census is null)
        {
            return 0;
        }

        // Bind the two calls the look-then-drop makes before any look (a first call writes its target into .data).
        _ = DescriptorCalls.ReadAt(pagemap, buffer[..8], (long)(chosen[first].Start / PageSize) * 8);
        _ = MemoryAdvice.DontNeed((nuint)chosen[first].Start, 0);
        for (var attempt = 0; !census.AllOthersParked(buffer); attempt++)
        {
            if (attempt == CensusAttempts)
            {
                return 0;
            }

            Thread.Sleep(1);
        }

        // From here to the end: no allocation, no lock, no wake-up, no first call (see the class).
        long advised = 0;
        foreach (var range in chosen)
        {
            if (range.Writable)
            {
                advised += DropUnwritten(range, pagemap, buffer);
            }
        }

        return advised;
    }

    /// <summary>
    /// Advises away the pages of <paramref name="range"/> that pagemap shows present and still the file's (bit 63
    /// present, bit 61 file page; a page this process wrote is an anonymous copy, bit 61 clear, and stays), a run at a
    /// time, reading pagemap through <paramref name="buffer"/> in chunks; returns the bytes advised. Nothing may write
    /// the range while this runs (see the class): it allocates nothing and calls only <see cref="DescriptorCalls.ReadAt"/>
    /// and <see cref="MemoryAdvice.DontNeed"/>, which the caller must have called once before.
    /// </summary>
    public static long DropUnwritten(Range range, SafeFileHandle pagemap, Span<byte> buffer)
    {
        long advised = 0;
        var chunkPages = (ulong)(buffer.Length / 8);
        for (var page = range.Start / PageSize; page < range.End / PageSize; page += chunkPages)
        {
            var pages = (int)Math.Min(chunkPages, (range.End / PageSize) - page);
            var read = DescriptorCalls.ReadAt(pagemap, buffer[..(pages * 8)], (long)page * 8);
            if (read != pages * 8)
            {
                break;
            }

            var entries = MemoryMarshal.Cast<byte, ulong>(buffer[..read]);
            for (var i = 0; i < entries.Length;)
            {
                var length = UnwrittenRun(entries[i..]);
                if (length == 0)
                {
                    i++;
                    continue;
                }

                if (MemoryAdvice.DontNeed((nuint)((page + (ulong)i) * PageSize), (nuint)length * PageSize) == 0)
                {
                    advised += (long)length * PageSize;
                }

                i += length;
            }
        }

        return advised;
    }

    /// <summary>How many pagemap entries from the first are present file pages (0 when the first is not).</summary>
    public static int UnwrittenRun(ReadOnlySpan<ulong> entries)
    {
        var length = 0;
        while (length < entries.Length && (entries[length] & (Present | FilePage)) == (Present | FilePage))
        {
            length++;
        }

        return length;
    }

    /// <summary>Reads /proc/self/smaps and fills <paramref name="chosen"/>; returns how many were chosen (0 when smaps
    /// cannot be read whole, or a line is longer than <paramref name="buffer"/>).</summary>
    private static int Select(Span<byte> buffer, Span<Range> chosen)
    {
        using var smaps = File.OpenHandle("/proc/self/smaps", FileMode.Open, FileAccess.Read);
        var selector = new Selector();
        var count = 0;
        var filled = 0;
        while (true)
        {
            var n = DescriptorCalls.Read(smaps, buffer[filled..]);
            if (n <= 0)
            {
                break;
            }

            filled += n;
            var consumed = 0;
            int newline;
            while ((newline = buffer[consumed..filled].IndexOf((byte)'\n')) >= 0)
            {
                if (selector.Feed(buffer.Slice(consumed, newline), out var range) && count < chosen.Length)
                {
                    chosen[count++] = range;
                }

                consumed += newline + 1;
            }

            buffer[consumed..filled].CopyTo(buffer);
            filled -= consumed;
            if (filled == buffer.Length)
            {
                return 0;
            }
        }

        if (filled > 0 && selector.Feed(buffer[..filled], out var last) && count < chosen.Length)
        {
            chosen[count++] = last;
        }

        if (selector.Finish(out var final) && count < chosen.Length)
        {
            chosen[count++] = final;
        }

        return count;
    }

    /// <summary>
    /// The choice, fed the lines of a smaps text one at a time (a mapping's header line "start-end perms offset dev inode
    /// path", then its "Name: value" lines). A mapping is chosen when the next header, or <see cref="Finish"/>, closes it.
    /// </summary>
    public struct Selector
    {
        private Range _range;
        private bool _open;
        private bool _filePrivate;
        private bool _writable;
        private bool _noAnonymous;
        private bool _noSwap;
        private bool _flagsAllowed;

        /// <summary>One line (without its newline); true with the mapping it closed when that one is to be dropped.</summary>
        public bool Feed(ReadOnlySpan<byte> line, out Range chosen)
        {
            var first = line.IndexOf((byte)' ');
            var name = first < 0 ? line : line[..first];
            if (name.Length > 0 && name[^1] == (byte)':')
            {
                Field(name, first < 0 ? [] : line[(first + 1)..]);
                chosen = default;
                return false;
            }

            var closed = Finish(out chosen);
            Header(line);
            return closed;
        }

        /// <summary>The end of the text: true with the last mapping when it is to be dropped.</summary>
        public bool Finish(out Range chosen)
        {
            chosen = _range with { Writable = _writable };
            var ok = _open && _filePrivate && _flagsAllowed && (_writable || (_noAnonymous && _noSwap));
            this = default;
            return ok;
        }

        private void Header(ReadOnlySpan<byte> line)
        {
            _open = true;
            var rest = line;
            var addresses = ProcFields.Next(ref rest);
            var perms = ProcFields.Next(ref rest);
            _ = ProcFields.Next(ref rest); // offset
            _ = ProcFields.Next(ref rest); // device
            var inode = ProcFields.Next(ref rest);
            var path = rest.TrimStart((byte)' ');
            var dash = addresses.IndexOf((byte)'-');
            if (dash <= 0
                || !Utf8Parser.TryParse(addresses[..dash], out ulong start, out var used, 'x') || used != dash
                || !Utf8Parser.TryParse(addresses[(dash + 1)..], out ulong end, out used, 'x') || used != addresses.Length - dash - 1
                || end <= start)
            {
                return;
            }

            _range = new Range(start, end);
            _writable = perms is [(byte)'r', (byte)'w', (byte)'-', (byte)'p'];
            _filePrivate = (_writable || perms is [(byte)'r', (byte)'-', _, (byte)'p'])
                && Utf8Parser.TryParse(inode, out ulong number, out used) && used == inode.Length && number != 0
                && path is [(byte)'/', ..];
        }

        private void Field(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
        {
            if (!_open)
            {
                return;
            }

            if (name.SequenceEqual("Anonymous:"u8))
            {
                _noAnonymous = IsZeroKb(value);
            }
            else if (name.SequenceEqual("Swap:"u8))
            {
                _noSwap = IsZeroKb(value);
            }
            else if (name.SequenceEqual("VmFlags:"u8))
            {
                _flagsAllowed = true;
                var rest = value;
                while (ProcFields.Next(ref rest) is { Length: > 0 } flag)
                {
                    if (flag.SequenceEqual("lo"u8) || flag.SequenceEqual("ht"u8) || flag.SequenceEqual("pf"u8) || flag.SequenceEqual("io"u8)
                        || flag.SequenceEqual("um"u8) || flag.SequenceEqual("uw"u8) || flag.SequenceEqual("sh"u8)
                        || (flag.SequenceEqual("wr"u8) && !_writable))
                    {
                        _flagsAllowed = false;
                    }
                }
            }
        }

        private static bool IsZeroKb(ReadOnlySpan<byte> value) => value.Trim((byte)' ').SequenceEqual("0 kB"u8);
    }
}
