using System.Text;

namespace Nacelle.ContainerCore.Cgroups;

/// <summary>
/// Parsers of the two text shapes of cgroup control files, over their bytes: no string or array per line or value
/// (stats read several such files for each of a hundred containers every few seconds).
/// </summary>
internal static class CgroupText
{
    /// <summary>A single-value file ("123\n"; "max" reads as null, surrounding blanks and newlines ignored); false when
    /// the text is neither a decimal number that fits in 64 bits nor "max".</summary>
    public static bool TryParseNumber(ReadOnlySpan<byte> text, out ulong? value)
    {
        text = text.Trim(" \t\n"u8);
        if (text.SequenceEqual("max"u8))
        {
            value = null;
            return true;
        }

        var parsed = TryParseDigits(text, out var number);
        value = parsed ? number : null;
        return parsed;
    }

    /// <summary>
    /// Looks up <paramref name="keys"/> in a flat keyed file's text ("key value" per line, as cpu.stat, memory.stat,
    /// memory.events and memory.oom_control are): <paramref name="values"/>[i] becomes the number of keys[i], 0 when
    /// no line has it (the last line wins when several do). Returns how many lines are such pairs; other lines are skipped.
    /// </summary>
    public static int ParseKeyed(ReadOnlySpan<byte> text, ReadOnlySpan<string> keys, Span<ulong> values)
    {
        if (values.Length < keys.Length)
        {
            throw new ArgumentException($"{keys.Length} keys need as many values, not {values.Length}", nameof(values));
        }

        values[..keys.Length].Clear();
        var pairs = 0;
        for (var lines = new KeyedLines(text); lines.MoveNext();)
        {
            pairs++;
            for (var i = 0; i < keys.Length; i++)
            {
                if (Ascii.Equals(lines.Key, keys[i]))
                {
                    values[i] = lines.Value;
                    break;
                }
            }
        }

        return pairs;
    }

    /// <summary>Every "key value" pair of a flat keyed file's text, the last one winning for a repeated key.</summary>
    public static Dictionary<string, ulong> ParseKeyed(ReadOnlySpan<byte> text)
    {
        var values = new Dictionary<string, ulong>(StringComparer.Ordinal);
        for (var lines = new KeyedLines(text); lines.MoveNext();)
        {
            values[Encoding.ASCII.GetString(lines.Key)] = lines.Value;
        }

        return values;
    }

    /// <summary>The lines of a flat keyed file that are exactly two fields, separated by spaces, the second a decimal
    /// number: Key and Value of the current one after each true MoveNext.</summary>
    private ref struct KeyedLines(ReadOnlySpan<byte> text)
    {
        private ReadOnlySpan<byte> _rest = text;

        public ReadOnlySpan<byte> Key { get; private set; }

        public ulong Value { get; private set; }

        public bool MoveNext()
        {
            while (!_rest.IsEmpty)
            {
                var end = _rest.IndexOf((byte)'\n');
                var line = end < 0 ? _rest : _rest[..end];
                _rest = end < 0 ? default : _rest[(end + 1)..];
                if (TrySplit(line, out var key, out var value))
                {
                    Key = key;
                    Value = value;
                    return true;
                }
            }

            return false;
        }

        private static bool TrySplit(ReadOnlySpan<byte> line, out ReadOnlySpan<byte> key, out ulong value)
        {
            var first = NextField(ref line);
            var second = NextField(ref line);
            key = first;
            value = 0;
            return !first.IsEmpty && NextField(ref line).IsEmpty && TryParseDigits(second, out value);
        }

        // The next run of non-space bytes, consumed with the spaces before it.
        private static ReadOnlySpan<byte> NextField(scoped ref ReadOnlySpan<byte> line)
        {
            line = line.TrimStart((byte)' ');
            var end = line.IndexOf((byte)' ');
            var field = end < 0 ? line : line[..end];
            line = line[field.Length..];
            return field;
        }
    }

    // Decimal digits only (no sign, no blanks), refusing an empty text and overflow.
    private static bool TryParseDigits(ReadOnlySpan<byte> digits, out ulong value)
    {
        value = 0;
        if (digits.IsEmpty)
        {
            return false;
        }

        foreach (var b in digits)
        {
            var digit = (uint)(b - '0');
            if (digit > 9 || value > (ulong.MaxValue - digit) / 10)
            {
                value = 0;
                return false;
            }

            value = (value * 10) + digit;
        }

        return true;
    }
}
