using Nacelle.Common;
using Nacelle.ImageService.References;
using Nacelle.ImageService.Store;

namespace Nacelle.ImageService;

/// <summary>
/// Images the node keeps whatever kubelet's image garbage collection decides (CRI's <c>Image.pinned</c>): the pause
/// image of a cluster, an air-gapped node's preloaded images. A pattern is either
/// <list type="bullet">
/// <item>an image name, normalised as image names are (<c>busybox</c> is <c>docker.io/library/busybox</c>): with a tag
/// or digest it pins exactly that name, without one every tag and digest of the repository; or</item>
/// <item>a glob with <c>*</c> (any run of characters, <c>/</c> and <c>:</c> included) over the full normalised name,
/// e.g. <c>registry.k8s.io/pause:*</c> or <c>*/coredns/*</c>.</item>
/// </list>
/// An image is pinned when one of its repo tags or repo digests matches.
/// </summary>
public sealed class PinnedImages
{
    private readonly IReadOnlyList<(string Pattern, Func<string, bool> Matches)> _patterns;

    public PinnedImages(IEnumerable<string> patterns)
    {
        ArgumentNullException.ThrowIfNull(patterns);
        _patterns = [.. patterns.Select(p => (p, Compile(p)))];
    }

    /// <summary>No image is pinned.</summary>
    public static PinnedImages None { get; } = new([]);

    /// <summary>Why <paramref name="pattern"/> is not a valid pattern, or null.</summary>
    public static string? Invalid(string pattern)
    {
        try
        {
            _ = Compile(pattern);
            return null;
        }
        catch (NacelleException e)
        {
            return e.Message;
        }
    }

    /// <summary>The first pattern that pins <paramref name="name"/> (a normalised repo tag or repo digest), or null.</summary>
    public string? PatternFor(string name) => _patterns.FirstOrDefault(p => p.Matches(name)).Pattern;

    /// <summary>The first pattern that pins any name of <paramref name="image"/>, or null.</summary>
    public string? PatternFor(ImageRecord image) =>
        image.RepoTags.Concat(image.RepoDigests).Select(PatternFor).FirstOrDefault(p => p is not null);

    /// <summary><paramref name="image"/> with <see cref="ImageRecord.Pinned"/> as the patterns say.</summary>
    public ImageRecord Apply(ImageRecord image)
    {
        var pinned = PatternFor(image) is not null;
        return pinned == image.Pinned ? image : image with { Pinned = pinned };
    }

    private static Func<string, bool> Compile(string pattern)
    {
        if (string.IsNullOrWhiteSpace(pattern) || pattern.Any(char.IsWhiteSpace))
        {
            throw NacelleException.InvalidArgument($"pinned image pattern '{pattern}' is empty or contains white space");
        }

        if (pattern.Contains('*', StringComparison.Ordinal))
        {
            if (pattern.Trim('*').Length == 0)
            {
                throw NacelleException.InvalidArgument($"pinned image pattern '{pattern}' would pin every image; name a registry or repository");
            }

            var parts = pattern.Split('*');
            return name => Glob(name, parts);
        }

        var reference = ImageReference.Parse(pattern);
        var lastSlash = pattern.LastIndexOf('/');
        var namesVersion = pattern.Contains('@', StringComparison.Ordinal) || pattern.IndexOf(':', lastSlash + 1) >= 0;
        if (namesVersion)
        {
            var exact = reference.ToString();
            // name:tag@digest pins both the tag and the digest form.
            var digestForm = reference is { Tag: not null, Digest: not null } ? reference.WithDigest(reference.Digest) : null;
            return name => name == exact || name == digestForm;
        }

        var repository = reference.Name;
        return name => name.Length > repository.Length && name.StartsWith(repository, StringComparison.Ordinal)
            && name[repository.Length] is ':' or '@';
    }

    // '*' matches any run of characters: the parts between the stars must appear in order, the first at the start and the
    // last at the end.
    private static bool Glob(string name, string[] parts)
    {
        if (!name.StartsWith(parts[0], StringComparison.Ordinal) || !name.EndsWith(parts[^1], StringComparison.Ordinal)
            || name.Length < parts[0].Length + parts[^1].Length)
        {
            return false;
        }

        var position = parts[0].Length;
        var end = name.Length - parts[^1].Length;
        for (var i = 1; i < parts.Length - 1; i++)
        {
            var found = name.IndexOf(parts[i], position, end - position, StringComparison.Ordinal);
            if (found < 0)
            {
                return false;
            }

            position = found + parts[i].Length;
        }

        return true;
    }
}
