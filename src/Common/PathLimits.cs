using System.Text;

namespace Nacelle.Common;

/// <summary>The kernel's limits on a path: NAME_MAX bytes per component, PATH_MAX bytes for the whole (with its NUL).</summary>
public static class PathLimits
{
    public const int NameMax = 255;
    public const int PathMax = 4096;

    /// <summary>Why the kernel could not hold <paramref name="path"/> (a sentence to follow the field name), or null when it can.</summary>
    public static string? Exceeded(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var length = Encoding.UTF8.GetByteCount(path);
        if (length >= PathMax)
        {
            return $"path is {length} bytes, over the kernel's PATH_MAX of {PathMax} (with its NUL)";
        }

        var longest = path.Split('/').Max(component => Encoding.UTF8.GetByteCount(component));
        return longest > NameMax ? $"path has a component of {longest} bytes, over the kernel's NAME_MAX of {NameMax}" : null;
    }
}
