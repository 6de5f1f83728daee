using System.Buffers.Text;
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
/// heap, the GC's memory and every writable or shared mapping.
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

    /// <summary>An address range [Start, End).</summary>
    public readonly record struct Range(ulong Start, ulong End)
    {
        public ulong Length => End - Start;
    }

    /// <summary>
    /// Drops the pages of every mapping <see cref="Selector"/> chooses in this process's smaps; returns the bytes of
    /// address space advised (not all of it was resident). Reads smaps through <paramref name="buffer"/> (at least one
    /// whole line: 64 KiB is plenty); allocates nothing on the GC heap but the file handle.
    /// </summary>
    public static long Drop(Span<byte> buffer)
    {
        Span<Range> chosen = stackalloc Range[MaxMappings];
        var count = Select(buffer, chosen);
        long advised = 0;
        foreach (var range in chosen[..count])
        {
            // EINVAL (a mapping that became locked or huge-paged meanwhile) leaves it as it was: nothing to undo.
            if (MemoryAdvice.DontNeed((nuint)range.Start, (nuint)range.Length) == 0)
            {
                advised += (long)range.Length;
            }
        }

        return advised;
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
        private bool _fileReadOnlyPrivate;
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
            chosen = _range;
            var ok = _open && _fileReadOnlyPrivate && _noAnonymous && _noSwap && _flagsAllowed;
            this = default;
            return ok;
        }

        private void Header(ReadOnlySpan<byte> line)
        {
            _open = true;
            var rest = line;
            var addresses = Next(ref rest);
            var perms = Next(ref rest);
            _ = Next(ref rest); // offset
            _ = Next(ref rest); // device
            var inode = Next(ref rest);
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
            _fileReadOnlyPrivate = perms is [(byte)'r', (byte)'-', _, (byte)'p']
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
                while (Next(ref rest) is { Length: > 0 } flag)
                {
                    if (flag.SequenceEqual("lo"u8) || flag.SequenceEqual("ht"u8) || flag.SequenceEqual("pf"u8) || flag.SequenceEqual("io"u8)
                        || flag.SequenceEqual("um"u8) || flag.SequenceEqual("uw"u8) || flag.SequenceEqual("wr"u8) || flag.SequenceEqual("sh"u8))
                    {
                        _flagsAllowed = false;
                    }
                }
            }
        }

        /// <summary>The next space-separated token of <paramref name="rest"/>, which then starts after it.</summary>
        private static ReadOnlySpan<byte> Next(ref ReadOnlySpan<byte> rest)
        {
            rest = rest.TrimStart((byte)' ');
            var space = rest.IndexOf((byte)' ');
            var token = space < 0 ? rest : rest[..space];
            rest = space < 0 ? [] : rest[space..];
            return token;
        }

        private static bool IsZeroKb(ReadOnlySpan<byte> value) => value.Trim((byte)' ').SequenceEqual("0 kB"u8);
    }
}
