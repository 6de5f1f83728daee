using System.Globalization;
using System.Text;
using Nacelle.Common;

namespace Nacelle.ContainerCore.Spec;

/// <summary>
/// User and group id mappings ("containerID hostID size", as uid_map takes them): the checks the kernel would otherwise
/// answer with a bare EINVAL, their uid_map text, and lookups.
/// </summary>
public static class IdMappings
{
    /// <summary>The most lines a uid_map or gid_map takes (Linux 4.15 and later).</summary>
    public const int KernelLimit = 340;

    private const long IdSpace = 1L << 32;

    /// <summary>
    /// Refuses (InvalidArgument, naming <paramref name="field"/>[i]) an empty range, a range that ends past 2^32-1,
    /// container or host ranges that overlap, and more lines than the kernel takes. <paramref name="lengthField"/> is
    /// what the caller's format calls a range's length (OCI "size", CRI "length").
    /// </summary>
    public static void Validate(IReadOnlyList<SpecIdMapping> mappings, string field, string lengthField = "size")
    {
        ArgumentNullException.ThrowIfNull(mappings);
        if (mappings.Count > KernelLimit)
        {
            throw NacelleException.InvalidArgument($"{field}: {mappings.Count} mappings, more than the kernel's {KernelLimit}");
        }

        for (var i = 0; i < mappings.Count; i++)
        {
            var m = mappings[i];
            if (m.Size == 0)
            {
                throw NacelleException.InvalidArgument($"{field}[{i}].{lengthField}: must be at least 1");
            }

            if ((long)m.ContainerId + m.Size > IdSpace || (long)m.HostId + m.Size > IdSpace)
            {
                throw NacelleException.InvalidArgument(
                    $"{field}[{i}]: {m.ContainerId}+{m.Size} (container) or {m.HostId}+{m.Size} (host) ends past the id space (2^32)");
            }

            for (var j = 0; j < i; j++)
            {
                var o = mappings[j];
                if (Overlap(m.ContainerId, o.ContainerId, m.Size, o.Size))
                {
                    throw NacelleException.InvalidArgument($"{field}[{i}]: container ids {m.ContainerId}..{(long)m.ContainerId + m.Size - 1} overlap {field}[{j}]");
                }

                if (Overlap(m.HostId, o.HostId, m.Size, o.Size))
                {
                    throw NacelleException.InvalidArgument($"{field}[{i}]: host ids {m.HostId}..{(long)m.HostId + m.Size - 1} overlap {field}[{j}]");
                }
            }
        }
    }

    /// <summary>The uid_map/gid_map text: one "containerID hostID size" line per mapping.</summary>
    public static string ToText(IEnumerable<SpecIdMapping> mappings)
    {
        ArgumentNullException.ThrowIfNull(mappings);
        var text = new StringBuilder();
        foreach (var m in mappings)
        {
            text.Append(CultureInfo.InvariantCulture, $"{m.ContainerId} {m.HostId} {m.Size}\n");
        }

        return text.ToString();
    }

    /// <summary>Whether two lists map the same ids the same way, line by line.</summary>
    public static bool Same(IReadOnlyList<SpecIdMapping>? a, IReadOnlyList<SpecIdMapping>? b)
    {
        a ??= [];
        b ??= [];
        return a.Count == b.Count && a.Zip(b).All(p => p.First.ContainerId == p.Second.ContainerId && p.First.HostId == p.Second.HostId && p.First.Size == p.Second.Size);
    }

    /// <summary>The host id that <paramref name="containerId"/> maps to, or null when it is not mapped.</summary>
    public static uint? HostIdOf(IEnumerable<SpecIdMapping> mappings, uint containerId)
    {
        ArgumentNullException.ThrowIfNull(mappings);
        foreach (var m in mappings)
        {
            if (containerId >= m.ContainerId && (long)containerId < (long)m.ContainerId + m.Size)
            {
                return (uint)(m.HostId + (containerId - m.ContainerId));
            }
        }

        return null;
    }

    private static bool Overlap(uint a, uint b, uint sizeA, uint sizeB) => (long)a < (long)b + sizeB && (long)b < (long)a + sizeA;
}
