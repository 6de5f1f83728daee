using Google.Protobuf.Collections;

namespace Nacelle.CriServer.Services;

/// <summary>Records' string maps into CRI messages.</summary>
internal static class CriMaps
{
    /// <summary>Copies a record's labels or annotations into a message's map (no intermediate dictionary).</summary>
    public static void Copy(IReadOnlyDictionary<string, string> from, MapField<string, string> to)
    {
        foreach (var (key, value) in from)
        {
            to[key] = value;
        }
    }
}
