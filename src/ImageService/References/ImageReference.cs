using System.Text.RegularExpressions;
using Nacelle.Common;

namespace Nacelle.ImageService.References;

/// <summary>
/// A parsed, normalised image reference: <c>domain/repository[:tag][@digest]</c>. Short names are expanded the way
/// Docker does it: <c>busybox</c> is <c>docker.io/library/busybox:latest</c>, <c>user/app</c> is
/// <c>docker.io/user/app:latest</c>. The first path component is a registry domain when it contains a dot or a
/// colon or is <c>localhost</c>.
/// </summary>
public sealed partial record ImageReference(string Domain, string Repository, string? Tag, string? Digest)
{
    /// <summary>The registry domain Docker Hub images are normalised to.</summary>
    public const string DockerHubDomain = "docker.io";

    private const int MaxNameLength = 255;

    /// <summary>Parses and normalises <paramref name="text"/>; throws <see cref="NacelleException"/> (InvalidArgument) naming the text and the reason.</summary>
    public static ImageReference Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length == 0)
            throw Invalid(text, "it is empty");
        if (text.Trim().Length != text.Length || text.Any(char.IsWhiteSpace))
            throw Invalid(text, "it contains whitespace");

        string remainder = text;
        string? digest = null;
        int at = remainder.IndexOf('@');
        if (at >= 0)
        {
            digest = remainder[(at + 1)..];
            remainder = remainder[..at];
            if (!IsValidDigest(digest))
                throw Invalid(text, $"'{digest}' is not a valid digest (expected sha256:<64 hex> or sha512:<128 hex>)");
        }

        if (remainder.Length == 0)
            throw Invalid(text, "it has no repository name");

        // The tag follows the last colon after the last slash (a colon before a slash is a port).
        string? tag = null;
        int lastSlash = remainder.LastIndexOf('/');
        int colon = remainder.IndexOf(':', lastSlash + 1);
        if (colon >= 0)
        {
            tag = remainder[(colon + 1)..];
            remainder = remainder[..colon];
            if (!TagPattern().IsMatch(tag))
                throw Invalid(text, $"'{tag}' is not a valid tag (letters, digits, '_', '.', '-', at most 128, not starting with '.' or '-')");
        }

        if (remainder.Length == 0)
            throw Invalid(text, "it has no repository name");

        string domain;
        string repository;
        int firstSlash = remainder.IndexOf('/');
        string first = firstSlash >= 0 ? remainder[..firstSlash] : remainder;
        if (firstSlash >= 0 && (first.Contains('.') || first.Contains(':') || first == "localhost" || first.StartsWith('[')))
        {
            domain = first;
            repository = remainder[(firstSlash + 1)..];
            if (!DomainPattern().IsMatch(domain))
                throw Invalid(text, $"'{domain}' is not a valid registry host");
        }
        else
        {
            domain = DockerHubDomain;
            repository = remainder;
        }

        if (domain == "index.docker.io" || domain == "registry-1.docker.io")
            domain = DockerHubDomain;
        if (domain == DockerHubDomain && !repository.Contains('/'))
            repository = "library/" + repository;

        if (repository.Length == 0)
            throw Invalid(text, "it has no repository name");
        if (repository.Any(char.IsUpper))
            throw Invalid(text, $"repository name '{repository}' must be lowercase");
        foreach (string component in repository.Split('/'))
        {
            if (!ComponentPattern().IsMatch(component))
                throw Invalid(text, $"'{component}' is not a valid repository path component (lowercase letters, digits and single separators '.', '_', '__' or '-')");
        }
        if (domain == DockerHubDomain && repository.StartsWith("library/", StringComparison.Ordinal) && HexIdPattern().IsMatch(repository["library/".Length..]) && tag is null && digest is null)
            throw Invalid(text, "a 64-character hexadecimal string is an image id, not a repository name");
        if (domain.Length + 1 + repository.Length > MaxNameLength)
            throw Invalid(text, $"the name is longer than {MaxNameLength} characters");

        if (tag is null && digest is null)
            tag = "latest";
        return new ImageReference(domain, repository, tag, digest);
    }

    /// <summary>Whether <paramref name="digest"/> is <c>sha256:&lt;64 lowercase hex&gt;</c> or <c>sha512:&lt;128 lowercase hex&gt;</c>.</summary>
    public static bool IsValidDigest(string digest) => DigestPattern().IsMatch(digest);

    /// <summary>The repository name including its registry domain, e.g. <c>docker.io/library/busybox</c>.</summary>
    public string Name => Domain + "/" + Repository;

    /// <summary>The normalised reference: <c>name:tag</c>, <c>name@digest</c> or <c>name:tag@digest</c>.</summary>
    public override string ToString()
    {
        string s = Name;
        if (Tag is not null)
            s += ":" + Tag;
        if (Digest is not null)
            s += "@" + Digest;
        return s;
    }

    /// <summary>The repo digest form <c>name@digest</c> of this repository and <paramref name="digest"/>.</summary>
    public string WithDigest(string digest)
    {
        if (!IsValidDigest(digest))
            throw NacelleException.InvalidArgument($"'{digest}' is not a valid digest");
        return Name + "@" + digest;
    }

    private static NacelleException Invalid(string text, string why) =>
        NacelleException.InvalidArgument($"invalid image reference \"{text}\": {why}");

    [GeneratedRegex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    private static partial Regex TagPattern();

    [GeneratedRegex("^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")]
    private static partial Regex ComponentPattern();

    [GeneratedRegex(@"^(?:(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])(?:\.(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]))*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")]
    private static partial Regex DomainPattern();

    [GeneratedRegex("^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")]
    private static partial Regex DigestPattern();

    [GeneratedRegex("^[a-f0-9]{64}$")]
    private static partial Regex HexIdPattern();
}
