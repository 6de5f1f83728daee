using System.Formats.Tar;
using Nacelle.Common;

namespace Nacelle.ImageService.Layers;

/// <summary>What unpacking one layer produced.</summary>
/// <param name="DiffId">"sha256:&lt;hex&gt;" of the uncompressed tar stream, to compare with the image config's diff_ids.</param>
/// <param name="UncompressedSize">How many uncompressed bytes the tar stream had, end-of-archive padding included.</param>
/// <param name="Entries">How many tar entries were processed (global PAX headers not counted).</param>
public sealed record LayerUnpackResult(string DiffId, long UncompressedSize, long Entries);

/// <summary>
/// Unpacks one OCI image layer (a tar stream, gzip- or zstd-compressed or plain) into a snapshot directory
/// usable as an overlayfs lowerdir: OCI whiteouts become overlayfs whiteouts, and nothing is ever written,
/// created, chowned or chmodded outside the target directory, whatever the layer contains.
/// </summary>
public static class LayerUnpacker
{
    /// <summary>
    /// Unpacks <paramref name="layer"/> into <paramref name="targetDirectory"/> (must exist, normally empty).
    /// Compression is sniffed from the first bytes. Malicious or corrupt input throws
    /// <see cref="NacelleException"/> with <see cref="ErrorKind.InvalidArgument"/> naming the entry and the rule.
    /// The layer stream is read to its very end and left open. After a failure the target holds whatever was unpacked
    /// so far and must be discarded by the caller. A failure of the host (disk full, EPERM) is
    /// <see cref="ErrorKind.Internal"/> naming the entry.
    /// </summary>
    public static Task<LayerUnpackResult> UnpackAsync(Stream layer, string targetDirectory, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(layer);
        ArgumentException.ThrowIfNullOrEmpty(targetDirectory);

        // Synchronous on a thread of its own: a layer is thousands of small reads and writes, each of which would
        // otherwise be a hop through the thread pool (FileStream's async path on Linux), slow on a busy node.
        return Task.Factory.StartNew(() => Unpack(layer, targetDirectory, cancellationToken), cancellationToken,
            TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>The synchronous unpack behind <see cref="UnpackAsync"/>; blocks the calling thread on reads of <paramref name="layer"/>.</summary>
    public static LayerUnpackResult Unpack(Stream layer, string targetDirectory, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(layer);
        ArgumentException.ThrowIfNullOrEmpty(targetDirectory);

        var tree = new SnapshotTree(targetDirectory);
        using var hashing = new HashingStream(LayerStreams.OpenTar(layer));
        // A buffer of this unpack's own: the shared pool would keep it, a megabyte, after the pull.
        var buffer = GC.AllocateUninitializedArray<byte>(CopyBufferBytes);
        long entries = 0;
        try
        {
            // The guard refuses oversized PAX/long-name headers before TarReader would allocate their declared size.
            using (var reader = new TarReader(new TarMetadataGuard(hashing), leaveOpen: false))
            {
                while (reader.GetNextEntry(copyData: false) is { } entry)
                {
                    cancellationToken.ThrowIfCancellationRequested();

                    // A global PAX header (git archive puts its commit id there) describes the archive, not a file.
                    if (entry.EntryType == TarEntryType.GlobalExtendedAttributes)
                    {
                        continue;
                    }

                    tree.Apply(entry, buffer);
                    entries++;
                }
            }

            // The diffID covers every byte of the tar, including the zero blocks and padding after the last entry.
            hashing.Drain(buffer);
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException or ZstdSharp.ZstdException)
        {
            throw NacelleException.InvalidArgument(
                $"layer is corrupt after {entries} entries ({hashing.BytesRead} uncompressed bytes): {e.Message}");
        }

        // Directory mtimes last: creating each child changed its parent's mtime.
        tree.ApplyDirectoryTimes();
        return new LayerUnpackResult(hashing.Digest(), hashing.BytesRead, entries);
    }

    // File data moves in 1 MB reads and writes.
    private const int CopyBufferBytes = 1 << 20;
}
