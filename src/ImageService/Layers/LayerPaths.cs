namespace Nacelle.ImageService.Layers;

/// <summary>What an entry name means for an overlayfs snapshot once OCI whiteout names are recognised.</summary>
internal enum WhiteoutKind
{
    /// <summary>An ordinary entry: create it.</summary>
    None,
    /// <summary><c>dir/.wh.name</c>: <c>dir/name</c> is deleted in this layer.</summary>
    File,
    /// <summary><c>dir/.wh..wh..opq</c>: <c>dir</c> hides everything the lower layers have in it.</summary>
    Opaque,
    /// <summary>Any other <c>.wh..wh.</c> name: aufs bookkeeping with no meaning for overlayfs.</summary>
    AufsMetadata,
}

/// <summary>
/// Pure name handling for layer entries: turns a tar entry name into a path relative to the snapshot root,
/// purely lexically (the file system is never consulted, so a symlink can never steer it).
/// </summary>
internal static class LayerPaths
{
    internal const string WhiteoutPrefix = ".wh.";
    internal const string OpaqueName = ".wh..wh..opq";

    /// <summary>
    /// The components of <paramref name="name"/> relative to the root: leading "/" and "./" are dropped
    /// (absolute names are contained, not refused), empty and "." components vanish, ".." removes the
    /// previous component. Returns null when ".." would climb above the root. The root itself is an empty array.
    /// </summary>
    public static string[]? Normalize(string name)
    {
        var components = new List<string>();
        foreach (var part in name.Split('/'))
        {
            switch (part)
            {
                case "" or ".":
                    continue;
                case "..":
                    if (components.Count == 0)
                    {
                        return null;
                    }

                    components.RemoveAt(components.Count - 1);
                    continue;
                default:
                    components.Add(part);
                    continue;
            }
        }

        return [.. components];
    }

    /// <summary>Recognises OCI whiteout names by their last component.</summary>
    public static WhiteoutKind Classify(string lastComponent)
    {
        if (!lastComponent.StartsWith(WhiteoutPrefix, StringComparison.Ordinal))
        {
            return WhiteoutKind.None;
        }

        if (lastComponent == OpaqueName)
        {
            return WhiteoutKind.Opaque;
        }

        return lastComponent.StartsWith(WhiteoutPrefix + WhiteoutPrefix, StringComparison.Ordinal)
            ? WhiteoutKind.AufsMetadata
            : WhiteoutKind.File;
    }

    /// <summary>"a/b/c" for display and for joining onto the root.</summary>
    public static string Join(IReadOnlyList<string> components) => string.Join('/', components);
}
