using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Nacelle.Common;

/// <summary>
/// How this process keeps the metadata of its source-generated JSON contexts. By default each context's
/// <c>Default</c> instance builds it once and keeps it for the life of the process (right for the daemon, which
/// serializes all the time). A small, long-lived process that serializes in bursts (nacelle-monitor: requests while
/// kubelet works on its pod, an exit record now and then) turns caching off at start: each context's <c>Current</c> is
/// then a context of its own (<see cref="Releasable{T}"/>) kept only until the process calls <see cref="Release"/>
/// (the monitor's settle, once it is idle), when its metadata (some 100-150 KB for the OCI spec) becomes garbage,
/// instead of living in every pod's monitor forever. Building it per use instead made a busy monitor churn through
/// megabytes (a new monitor had ~6 MB of anonymous memory after its first two creates; docs/architecture.md).
/// </summary>
public static class JsonMetadata
{
    private static readonly Lock Gate = new();
    private static readonly List<IReleasable> Contexts = [];
    private static bool _used;

    /// <summary>True (the default): <c>Current</c> is the context's cached <c>Default</c>.</summary>
    public static bool Cached { get; set; } = true;

    /// <summary>Drops every context <see cref="Releasable{T}.Get"/> has handed out: the next use builds a new one.</summary>
    public static void Release()
    {
        lock (Gate)
        {
            Contexts.ForEach(c => c.Release());
            _used = false;
        }
    }

    /// <summary>
    /// <see cref="Release"/> unless a context was asked for since the last call or release (for a process still busy
    /// with other work: contexts it does not use meanwhile go, those it keeps using stay); true if released.
    /// </summary>
    public static bool ReleaseIfUnused()
    {
        lock (Gate)
        {
            if (_used)
            {
                _used = false;
                return false;
            }
        }

        Release();
        return true;
    }

    /// <summary>
    /// <paramref name="value"/> as UTF-8 JSON, written through a buffer of this call's own. (JsonSerializer's
    /// SerializeToUtf8Bytes borrows a thread-cached writer and a pooled buffer that the pool then keeps on that thread.)
    /// </summary>
    public static byte[] Serialize<T>(T value, JsonTypeInfo<T> type, int capacity = 256) => Write(value, type, capacity).WrittenSpan.ToArray();

    /// <summary><paramref name="value"/> as JSON text, written through a buffer of this call's own (JsonSerializer's
    /// string overload borrows a pooled one, as <see cref="Serialize{T}"/> says).</summary>
    public static string SerializeToString<T>(T value, JsonTypeInfo<T> type, int capacity = 256) =>
        Encoding.UTF8.GetString(Write(value, type, capacity).WrittenSpan);

    /// <summary>
    /// Parses JSON text from UTF-8 bytes of its own. JsonSerializer's string overloads first transcode the text into a
    /// buffer rented from the shared array pool, three times its length (up to 1 MB), which the pool then keeps on that
    /// thread: an annotation map of 10,000 entries left a megabyte behind after it was read once.
    /// </summary>
    public static T? Deserialize<T>(string json, JsonTypeInfo<T> type)
    {
        ArgumentNullException.ThrowIfNull(json);
        return JsonSerializer.Deserialize(Encoding.UTF8.GetBytes(json), type);
    }

    private static ArrayBufferWriter<byte> Write<T>(T value, JsonTypeInfo<T> type, int capacity)
    {
        ArgumentNullException.ThrowIfNull(type);
        var buffer = new ArrayBufferWriter<byte>(capacity);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = type.Options.Encoder, Indented = type.Options.WriteIndented }))
        {
            JsonSerializer.Serialize(writer, value, type);
        }

        return buffer;
    }

    private interface IReleasable
    {
        void Release();
    }

    /// <summary>A context of a type's own, built on first use and kept until <see cref="JsonMetadata.Release"/>.</summary>
    public sealed class Releasable<T> : IReleasable
        where T : class
    {
        private readonly Func<T> _create;
        private T? _context;

        /// <param name="create">Builds the context (with the options of its source generator's attribute).</param>
        public Releasable(Func<T> create)
        {
            _create = create;
            lock (Gate)
            {
                Contexts.Add(this);
            }
        }

        public T Get()
        {
            _used = true;
            if (Volatile.Read(ref _context) is { } context)
            {
                return context;
            }

            var created = _create();
            return Interlocked.CompareExchange(ref _context, created, null) ?? created;
        }

        void IReleasable.Release() => Volatile.Write(ref _context, null);
    }
}
