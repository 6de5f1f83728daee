using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Nacelle.Common;

/// <summary>
/// How this process keeps the metadata of its source-generated JSON contexts. By default each context's
/// <c>Default</c> instance builds it once and keeps it for the life of the process (right for the daemon, which
/// serializes all the time). A small, long-lived process that serializes rarely (nacelle-monitor: a few requests, an
/// exit record now and then) turns caching off at start: each use then gets a context of its own (<c>Current</c>), and
/// its metadata (some 100-150 KB for the OCI spec) is garbage once the call returns, instead of living in every pod's
/// monitor forever.
/// </summary>
public static class JsonMetadata
{
    /// <summary>True (the default): <c>Current</c> is the context's cached <c>Default</c>.</summary>
    public static bool Cached { get; set; } = true;

    /// <summary>
    /// <paramref name="value"/> as UTF-8 JSON, written through a buffer of this call's own. (JsonSerializer's
    /// SerializeToUtf8Bytes borrows a thread-cached writer and a pooled buffer that the pool then keeps on that thread.)
    /// </summary>
    public static byte[] Serialize<T>(T value, JsonTypeInfo<T> type, int capacity = 256)
    {
        ArgumentNullException.ThrowIfNull(type);
        var buffer = new ArrayBufferWriter<byte>(capacity);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = type.Options.Encoder, Indented = type.Options.WriteIndented }))
        {
            JsonSerializer.Serialize(writer, value, type);
        }

        return buffer.WrittenSpan.ToArray();
    }
}
