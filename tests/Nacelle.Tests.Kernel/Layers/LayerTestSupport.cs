using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using Nacelle.Common;
using Nacelle.ContainerCore.Interop;
using Nacelle.ImageService.Layers;

namespace Nacelle.Tests.Kernel.Layers;

/// <summary>
/// A scratch area under /var/tmp for one test: <c>target/</c> receives the layer, <c>sentinel/</c> is a sibling
/// that a malicious layer would like to reach; containment tests check that it stays as it was.
/// </summary>
public sealed class LayerScratch : IDisposable
{
    public LayerScratch()
    {
        Root = Path.Combine("/var/tmp", "nacelle-layer-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Target);
        Directory.CreateDirectory(Sentinel);
    }

    public string Root { get; }
    public string Target => Path.Combine(Root, "target");
    public string Sentinel => Path.Combine(Root, "sentinel");

    public string InTarget(string relative) => Path.Combine(Target, relative);

    public Task<LayerUnpackResult> UnpackAsync(byte[] blob) =>
        LayerUnpacker.UnpackAsync(new MemoryStream(blob, writable: false), Target, CancellationToken.None);

    /// <summary>Unpacks and expects an InvalidArgument refusal whose message contains every fragment given.</summary>
    public async Task<NacelleException> AssertRefusedAsync(byte[] blob, params string[] fragments)
    {
        var error = await Assert.ThrowsAsync<NacelleException>(() => UnpackAsync(blob));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        foreach (var fragment in fragments)
        {
            Assert.Contains(fragment, error.Message, StringComparison.Ordinal);
        }

        return error;
    }

    /// <summary>Nothing but target/ and sentinel/ exists in the scratch root, and the sentinel holds exactly these names.</summary>
    public void AssertContained(params string[] sentinelEntries)
    {
        Assert.Equal(["sentinel", "target"], Directory.EnumerateFileSystemEntries(Root).Select(Path.GetFileName).Order());
        var actual = Directory.EnumerateFileSystemEntries(Sentinel, "*", SearchOption.AllDirectories)
            .Select(path => Path.GetRelativePath(Sentinel, path))
            .Order(StringComparer.Ordinal);
        Assert.Equal(sentinelEntries.Order(StringComparer.Ordinal), actual);
    }

    /// <summary>
    /// One line per inode under the target, with everything the unpacker is meant to reproduce (no inode numbers),
    /// so two unpacked trees can be compared for equality.
    /// </summary>
    public IReadOnlyList<string> Describe()
    {
        var lines = new List<string>();
        foreach (var path in Walk(Target).Order(StringComparer.Ordinal))
        {
            var status = FileSystemCalls.Status(path)!.Value;
            var line = $"{Path.GetRelativePath(Target, path)} mode={Convert.ToString(status.Mode, 8)} uid={status.Uid} gid={status.Gid} " +
                $"rdev={status.RdevMajor}:{status.RdevMinor} mtime={status.MtimeSeconds}.{status.MtimeNanoseconds:D9}";
            var kind = FileKinds.Of(path);
            if (kind == FileKind.Regular)
            {
                line += " sha256=" + Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));
            }
            else if (kind == FileKind.Symlink)
            {
                line += " -> " + new FileInfo(path).LinkTarget;
            }

            lines.Add(line);
        }

        return lines;
    }

    /// <summary>Every path under <paramref name="directory"/>, never descending through a symlink.</summary>
    private static IEnumerable<string> Walk(string directory)
    {
        foreach (var path in Directory.EnumerateFileSystemEntries(directory))
        {
            yield return path;
            if (FileKinds.Of(path) == FileKind.Directory)
            {
                foreach (var child in Walk(path))
                {
                    yield return child;
                }
            }
        }
    }

    public void Dispose()
    {
        // Directory.Delete removes symlinks themselves, never what they point to.
        if (Directory.Exists(Root))
        {
            Directory.Delete(Root, recursive: true);
        }
    }
}

/// <summary>Builds crafted layers in memory with TarWriter (PAX format unless the entry says otherwise).</summary>
public static class LayerTar
{
    public static readonly DateTimeOffset Epoch2001 = DateTimeOffset.FromUnixTimeSeconds(1_000_000_000);

    public static byte[] Build(params TarEntry[] entries)
    {
        using var buffer = new MemoryStream();
        using (var writer = new TarWriter(buffer, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var entry in entries)
            {
                writer.WriteEntry(entry);
            }
        }

        return buffer.ToArray();
    }

    public static byte[] Gzip(byte[] tar)
    {
        using var buffer = new MemoryStream();
        using (var gzip = new GZipStream(buffer, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(tar);
        }

        return buffer.ToArray();
    }

    public static byte[] Zstd(byte[] tar)
    {
        using var buffer = new MemoryStream();
        using (var zstd = new ZstdSharp.CompressionStream(buffer, leaveOpen: true))
        {
            zstd.Write(tar);
        }

        return buffer.ToArray();
    }

    public static string DiffId(byte[] tar) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(tar));

    public static PaxTarEntry File(string name, string content = "", UnixFileMode mode = (UnixFileMode)0x1A4, int uid = 0, int gid = 0) =>
        new(TarEntryType.RegularFile, name)
        {
            DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)),
            Mode = mode,
            Uid = uid,
            Gid = gid,
            ModificationTime = Epoch2001,
        };

    public static PaxTarEntry Dir(string name, UnixFileMode mode = (UnixFileMode)0x1ED) =>
        new(TarEntryType.Directory, name) { Mode = mode, ModificationTime = Epoch2001 };

    public static PaxTarEntry Symlink(string name, string target) =>
        new(TarEntryType.SymbolicLink, name) { LinkName = target, Mode = (UnixFileMode)0x1FF, ModificationTime = Epoch2001 };

    public static PaxTarEntry HardLink(string name, string target) =>
        new(TarEntryType.HardLink, name) { LinkName = target, Mode = (UnixFileMode)0x1A4, ModificationTime = Epoch2001 };

    public static PaxTarEntry WithXattrs(TarEntryType type, string name, params (string Name, string Value)[] xattrs) =>
        new(type, name, xattrs.Select(x => new KeyValuePair<string, string>("SCHILY.xattr." + x.Name, x.Value)))
        {
            Mode = (UnixFileMode)0x1ED,
            ModificationTime = Epoch2001,
        };
}
