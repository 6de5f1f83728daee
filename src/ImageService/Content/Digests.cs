using System.Security.Cryptography;
using Nacelle.Common;

namespace Nacelle.ImageService.Content;

/// <summary>OCI content digests ("sha256:&lt;64 hex&gt;"): validation before they become file names, and computing them.</summary>
public static class Digests
{
    /// <summary>True for "sha256:" followed by exactly 64 lowercase hex digits, the only algorithm nacelle stores.</summary>
    public static bool IsValid(string? digest) =>
        digest is { Length: 71 } && digest.StartsWith("sha256:", StringComparison.Ordinal) && digest.AsSpan(7).IndexOfAnyExcept("0123456789abcdef") < 0;

    /// <summary>Returns the hex part, or throws InvalidArgument naming the digest (it is about to become a path).</summary>
    public static string Hex(string digest) =>
        IsValid(digest) ? digest[7..] : throw NacelleException.InvalidArgument($"'{digest}' is not a sha256 digest (sha256:<64 lowercase hex>)");

    public static string Of(ReadOnlySpan<byte> content) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(content));

    /// <summary>The digest of everything appended to a SHA-256 <paramref name="hash"/> so far.</summary>
    public static string FromHash(IncrementalHash hash) => "sha256:" + Convert.ToHexStringLower(hash.GetCurrentHash());

    /// <summary>OCI chain id: chain(L0) = diff(L0); chain(Ln) = sha256(chain(Ln-1) + " " + diff(Ln)).</summary>
    public static IReadOnlyList<string> ChainIds(IReadOnlyList<string> diffIds)
    {
        var chains = new string[diffIds.Count];
        for (var i = 0; i < diffIds.Count; i++)
        {
            chains[i] = i == 0 ? diffIds[0] : Of(System.Text.Encoding.ASCII.GetBytes($"{chains[i - 1]} {diffIds[i]}"));
        }

        return chains;
    }
}
