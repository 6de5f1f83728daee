using System.Formats.Tar;

namespace Nacelle.Tests.Support.Registry;

/// <summary>
/// Writes deterministic layer tarballs (ustar, fixed mtime, uid/gid 0 unless told): the same calls give the same bytes.
/// Paths are relative to the layer root (no leading slash); directories get a trailing slash.
/// </summary>
public sealed class TarBuilder : IDisposable
{
    /// <summary>The modification time of every entry.</summary>
    public static readonly DateTimeOffset FixedTime = new(2024, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private readonly TarWriter _writer;

    /// <summary>Writes into <paramref name="output"/> (left open).</summary>
    public TarBuilder(Stream output) => _writer = new TarWriter(output, TarEntryFormat.Ustar, leaveOpen: true);

    /// <summary>Adds a directory.</summary>
    public TarBuilder Directory(string path, int mode = 0b111_101_101, int uid = 0, int gid = 0)
    {
        var e = new UstarTarEntry(TarEntryType.Directory, Name(path).TrimEnd('/') + "/");
        Stamp(e, mode, uid, gid);
        _writer.WriteEntry(e);
        return this;
    }

    /// <summary>Adds a regular file with <paramref name="content"/>.</summary>
    public TarBuilder File(string path, byte[] content, int mode = 0b110_100_100, int uid = 0, int gid = 0)
    {
        using var data = new MemoryStream(content, writable: false);
        return File(path, data, mode, uid, gid);
    }

    /// <summary>Adds a regular file from a seekable stream (read to its end).</summary>
    public TarBuilder File(string path, Stream content, int mode = 0b110_100_100, int uid = 0, int gid = 0)
    {
        var e = new UstarTarEntry(TarEntryType.RegularFile, Name(path)) { DataStream = content };
        Stamp(e, mode, uid, gid);
        _writer.WriteEntry(e);
        return this;
    }

    /// <summary>Adds a symbolic link to <paramref name="target"/>.</summary>
    public TarBuilder Symlink(string path, string target)
    {
        var e = new UstarTarEntry(TarEntryType.SymbolicLink, Name(path)) { LinkName = target };
        Stamp(e, 0b111_111_111, 0, 0);
        _writer.WriteEntry(e);
        return this;
    }

    /// <summary>Adds a hard link to the earlier entry <paramref name="target"/>.</summary>
    public TarBuilder HardLink(string path, string target)
    {
        var e = new UstarTarEntry(TarEntryType.HardLink, Name(path)) { LinkName = Name(target) };
        Stamp(e, 0b110_100_100, 0, 0);
        _writer.WriteEntry(e);
        return this;
    }

    /// <summary>Adds a whiteout for <paramref name="path"/> (an empty <c>.wh.NAME</c> file next to it).</summary>
    public TarBuilder Whiteout(string path)
    {
        string name = Name(path);
        int slash = name.LastIndexOf('/');
        string whiteout = slash < 0 ? ".wh." + name : name[..(slash + 1)] + ".wh." + name[(slash + 1)..];
        return File(whiteout, [], 0);
    }

    /// <summary>Marks directory <paramref name="path"/> opaque (an empty <c>.wh..wh..opq</c> inside it).</summary>
    public TarBuilder Opaque(string path) => File(Name(path).TrimEnd('/') + "/.wh..wh..opq", [], 0);

    /// <summary>Builds a tar in memory.</summary>
    public static byte[] Build(Action<TarBuilder> fill)
    {
        using var output = new MemoryStream();
        using (var builder = new TarBuilder(output))
            fill(builder);
        return output.ToArray();
    }

    private static string Name(string path) => path.TrimStart('/');

    private static void Stamp(TarEntry e, int mode, int uid, int gid)
    {
        e.Mode = (UnixFileMode)mode;
        e.ModificationTime = FixedTime;
        e.Uid = uid;
        e.Gid = gid;
        if (e is PosixTarEntry posix)
        {
            posix.UserName = uid == 0 ? "root" : "";
            posix.GroupName = gid == 0 ? "root" : "";
        }
    }

    /// <summary>Writes the end-of-archive marker.</summary>
    public void Dispose() => _writer.Dispose();
}
