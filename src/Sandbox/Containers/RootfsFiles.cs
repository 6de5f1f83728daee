using Nacelle.Common;

namespace Nacelle.Sandbox.Containers;

/// <summary>
/// Reads files of a container's root filesystem from the host without ever leaving it: every path component is
/// resolved inside the root, the way the kernel would resolve it for a process chrooted there (absolute symlinks
/// restart at the root, ".." stops at the root). An image whose /etc/passwd is a symlink to /../../etc/shadow
/// therefore reads its own /etc/shadow, never the host's.
/// </summary>
public static class RootfsFiles
{
    /// <summary>The most symlinks followed for one path (the kernel's limit).</summary>
    public const int MaxSymlinks = 40;

    /// <summary>The largest file read (an /etc/passwd bigger than this is refused).</summary>
    public const int MaxBytes = 4 << 20;

    /// <summary>The host path that <paramref name="path"/> names inside <paramref name="root"/>, with every symlink
    /// resolved inside the root. The last component need not exist.</summary>
    public static string Resolve(string root, string path)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(path);
        root = Path.GetFullPath(root).TrimEnd('/');
        var resolved = new List<string>();
        var pending = new Stack<string>(Components(path).Reverse());
        var links = 0;
        while (pending.TryPop(out var part))
        {
            if (part == "..")
            {
                if (resolved.Count > 0)
                {
                    resolved.RemoveAt(resolved.Count - 1);
                }

                continue;
            }

            var candidate = root + "/" + string.Join('/', resolved.Append(part));
            if (new FileInfo(candidate).LinkTarget is { } linkTarget)
            {
                if (++links > MaxSymlinks)
                {
                    throw NacelleException.InvalidArgument($"{path} in the container's root: too many levels of symbolic links");
                }

                if (linkTarget.StartsWith('/'))
                {
                    resolved.Clear();
                }

                foreach (var next in Components(linkTarget).Reverse())
                {
                    pending.Push(next);
                }

                continue;
            }

            resolved.Add(part);
        }

        return resolved.Count == 0 ? root : root + "/" + string.Join('/', resolved);
    }

    /// <summary>The text of the regular file at <paramref name="path"/> inside <paramref name="root"/>, or null when it
    /// does not exist or is not a regular file.</summary>
    public static string? ReadText(string root, string path)
    {
        var host = Resolve(root, path);
        var info = new FileInfo(host);
        if (!info.Exists || info.LinkTarget is not null)
        {
            return null;
        }

        if (info.Length > MaxBytes)
        {
            throw NacelleException.InvalidArgument($"{path} in the image is {info.Length} bytes, more than the {MaxBytes} read");
        }

        return File.ReadAllText(host);
    }

    private static IEnumerable<string> Components(string path) =>
        path.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".");
}
