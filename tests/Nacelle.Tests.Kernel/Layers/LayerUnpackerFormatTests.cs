using System.Formats.Tar;
using Nacelle.Common;
using Nacelle.ImageService.Layers;
using static Nacelle.Tests.Kernel.Layers.LayerTar;

namespace Nacelle.Tests.Kernel.Layers;

/// <summary>Compression sniffing, the diffID and corrupt input.</summary>
public sealed class LayerUnpackerFormatTests : IDisposable
{
    private readonly List<LayerScratch> _scratches = [];

    public void Dispose()
    {
        foreach (var scratch in _scratches)
        {
            scratch.Dispose();
        }
    }

    [Fact]
    public void AnUnpackLeavesNoBufferInTheSharedPool()
    {
        var tar = Build(Dir("usr/"), File("usr/data", new string('x', 3 << 20)));
        var scratch = NewScratch();
        var kept = Nacelle.Tests.Support.PooledBuffers.KeptAfter(() =>
            LayerUnpacker.Unpack(new MemoryStream(Gzip(tar), writable: false), scratch.Target, CancellationToken.None));
        // Small buffers of the tar reader and the decompressor may stay; the unpack's 1 MB copy buffer must not.
        Assert.InRange(kept, 0, 64 << 10);
        Assert.Equal(3 << 20, new FileInfo(scratch.InTarget("usr/data")).Length);
    }

    [Fact]
    public async Task GzipZstdAndPlainGiveTheSameTreeAndTheDiffIdOfThePlainTar()
    {
        var tar = Build(
            Dir("etc/"),
            File("etc/hostname", "box\n", uid: 7, gid: 8),
            Symlink("bin", "usr/bin"),
            Dir("usr/"),
            Dir("usr/bin/"),
            File("usr/bin/tool", new string('x', 100_000), mode: (UnixFileMode)0x1ED));

        var trees = new List<IReadOnlyList<string>>();
        foreach (var blob in new[] { tar, Gzip(tar), Zstd(tar) })
        {
            var scratch = NewScratch();
            var result = await scratch.UnpackAsync(blob);
            Assert.Equal(DiffId(tar), result.DiffId);
            Assert.Equal(tar.LongLength, result.UncompressedSize);
            Assert.Equal(6, result.Entries);
            trees.Add(scratch.Describe());
        }

        Assert.Equal(6, trees[0].Count); // etc, etc/hostname, bin, usr, usr/bin, usr/bin/tool
        Assert.Equal(trees[0], trees[1]);
        Assert.Equal(trees[0], trees[2]);
        Assert.Contains(trees[0], line => line.StartsWith("usr/bin/tool mode=100755 uid=0 gid=0", StringComparison.Ordinal));
    }

    [Fact]
    public async Task DiffIdCoversPaddingAfterTheEndOfArchive()
    {
        // Real layers often carry more zero blocks than the two that end the archive; the diffID counts them all.
        var tar = Build(File("a", "1")).Concat(new byte[10_240]).ToArray();
        var scratch = NewScratch();

        var result = await scratch.UnpackAsync(Gzip(tar));

        Assert.Equal(DiffId(tar), result.DiffId);
        Assert.Equal(tar.LongLength, result.UncompressedSize);
        Assert.Equal(1, result.Entries);
    }

    [Fact]
    public async Task GlobalPaxHeadersAreSkipped()
    {
        var global = new PaxGlobalExtendedAttributesTarEntry([new KeyValuePair<string, string>("comment", "made by a test")]);
        var scratch = NewScratch();

        var result = await scratch.UnpackAsync(Build(global, File("a", "1")));

        Assert.Equal(1, result.Entries);
        Assert.Equal(["a"], Directory.EnumerateFileSystemEntries(scratch.Target).Select(Path.GetFileName));
    }

    [Fact]
    public async Task EndOfArchiveOnlyIsAnEmptyLayer()
    {
        // The canonical empty layer: just the two zero blocks that end an archive.
        var tar = new byte[1024];
        var scratch = NewScratch();

        var result = await scratch.UnpackAsync(Gzip(tar));

        Assert.Equal(0, result.Entries);
        Assert.Equal(1024, result.UncompressedSize);
        Assert.Equal(DiffId(tar), result.DiffId);
        Assert.Empty(Directory.EnumerateFileSystemEntries(scratch.Target));
    }

    [Fact]
    public async Task EmptyStreamIsNotATar()
    {
        var scratch = NewScratch();

        await scratch.AssertRefusedAsync([], "layer is corrupt");
    }

    [Fact]
    public async Task CorruptGzipIsInvalidArgument()
    {
        var blob = Gzip(Build(File("a", new string('y', 50_000))));
        blob[20] ^= 0xFF;
        blob[21] ^= 0xFF;
        var scratch = NewScratch();

        await scratch.AssertRefusedAsync(blob, "layer is corrupt");
    }

    [Fact]
    public async Task TruncatedTarIsInvalidArgument()
    {
        var tar = Build(File("a", new string('y', 50_000)));
        var scratch = NewScratch();

        await scratch.AssertRefusedAsync(tar[..10_000], "layer is corrupt");
    }

    [Fact]
    public async Task UnknownEntryTypeIsRefusedByName()
    {
        var tar = Build(File("dir/strange"));
        SetTypeFlag(tar, 'Z');
        var scratch = NewScratch();

        await scratch.AssertRefusedAsync(tar, "'dir/strange'", "unsupported entry type");
        Assert.Empty(Directory.EnumerateFileSystemEntries(scratch.Target));
    }

    [Fact]
    public async Task UstarGnuLongNamesAndV7EntriesAreRead()
    {
        var longDirectory = string.Join('/', Enumerable.Repeat("long-directory-name", 12));
        using var buffer = new MemoryStream();
        using (var writer = new TarWriter(buffer, leaveOpen: true))
        {
            writer.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, "ustar") { DataStream = new MemoryStream("u"u8.ToArray()) });
            writer.WriteEntry(new GnuTarEntry(TarEntryType.RegularFile, longDirectory + "/gnu") { DataStream = new MemoryStream("g"u8.ToArray()) });
            writer.WriteEntry(new GnuTarEntry(TarEntryType.SymbolicLink, "gnu-link") { LinkName = longDirectory + "/gnu" });
            writer.WriteEntry(new V7TarEntry(TarEntryType.V7RegularFile, "v7") { DataStream = new MemoryStream("7"u8.ToArray()) });
        }

        var scratch = NewScratch();
        var result = await scratch.UnpackAsync(buffer.ToArray());

        Assert.Equal(4, result.Entries);
        Assert.Equal("u", System.IO.File.ReadAllText(scratch.InTarget("ustar")));
        Assert.Equal("g", System.IO.File.ReadAllText(scratch.InTarget(longDirectory + "/gnu")));
        Assert.Equal(longDirectory + "/gnu", new FileInfo(scratch.InTarget("gnu-link")).LinkTarget);
        Assert.Equal("7", System.IO.File.ReadAllText(scratch.InTarget("v7")));
    }

    [Theory]
    [InlineData('x')]
    [InlineData('L')]
    public async Task OversizedMetadataHeaderIsRefusedBeforeItIsAllocated(char type)
    {
        // One header that claims 1.5 GB of PAX records (or long name), followed by nothing: TarReader alone would
        // allocate the full 1.5 GB before noticing that the stream ends.
        var tar = Build(File("a"));
        tar[156] = (byte)type;
        SetSize(tar, 0, 1_500_000_000);
        var scratch = NewScratch();
        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);

        await scratch.AssertRefusedAsync(Gzip(tar), "layer is corrupt", "declares 1500000000 bytes");

        Assert.True(GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore < 500_000_000);
    }

    [Fact]
    public async Task MissingTargetIsInvalidArgument()
    {
        var scratch = NewScratch();

        var error = await Assert.ThrowsAsync<NacelleException>(() =>
            LayerUnpacker.UnpackAsync(new MemoryStream(Build(File("a"))), scratch.InTarget("nope"), CancellationToken.None));

        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains("not an existing directory", error.Message, StringComparison.Ordinal);
    }

    private LayerScratch NewScratch()
    {
        var scratch = new LayerScratch();
        _scratches.Add(scratch);
        return scratch;
    }

    /// <summary>Writes an octal size into the header at <paramref name="header"/> and fixes its checksum.</summary>
    private static void SetSize(byte[] tar, int header, long size)
    {
        System.Text.Encoding.ASCII.GetBytes(Convert.ToString(size, 8).PadLeft(11, '0') + "\0").CopyTo(tar, header + 124);
        FixChecksum(tar, header);
    }

    private static void FixChecksum(byte[] tar, int header)
    {
        var sum = 0;
        for (var i = 0; i < 512; i++)
        {
            sum += i is >= 148 and < 156 ? ' ' : tar[header + i];
        }

        System.Text.Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ").CopyTo(tar, header + 148);
    }

    /// <summary>Rewrites the typeflag of the last header in a PAX tar (the data entry after its extended header) and fixes its checksum.</summary>
    private static void SetTypeFlag(byte[] tar, char flag)
    {
        // Build() of one PAX entry: [x header][x data][entry header][data][end]; find the header named "dir/strange".
        var header = 0;
        for (var offset = 0; offset < tar.Length; offset += 512)
        {
            if (tar[offset + 156] != (byte)'x' && tar[offset] == (byte)'d')
            {
                header = offset;
                break;
            }
        }

        tar[header + 156] = (byte)flag;
        FixChecksum(tar, header);
    }
}
