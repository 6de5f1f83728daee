namespace Nacelle.Monitor.Memory;

/// <summary>The space-separated fields of a line of a /proc text (smaps, task/TID/syscall), read without allocating.</summary>
internal static class ProcFields
{
    /// <summary>The next run of non-space bytes of <paramref name="rest"/> (empty at its end); <paramref name="rest"/> is
    /// left after it, its leading spaces trimmed.</summary>
    public static ReadOnlySpan<byte> Next(ref ReadOnlySpan<byte> rest)
    {
        rest = rest.TrimStart((byte)' ');
        var space = rest.IndexOf((byte)' ');
        var token = space < 0 ? rest : rest[..space];
        rest = space < 0 ? [] : rest[space..].TrimStart((byte)' ');
        return token;
    }
}
