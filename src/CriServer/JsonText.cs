using System.Text;
using System.Text.Json;

namespace Nacelle.CriServer;

/// <summary>JSON strings for CRI verbose info maps, written with Utf8JsonWriter (no reflection, Native AOT safe).</summary>
internal static class JsonText
{
    public static string Write(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            write(json);
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }
}
