using System.Formats.Tar;
using System.Text;
using Nacelle.ContainerCore.Interop;
using static Nacelle.Tests.Kernel.Layers.LayerTar;

namespace Nacelle.Tests.Kernel.Layers;

/// <summary>Every entry type and every preserved attribute, whiteouts and replacing existing paths.</summary>
public sealed class LayerUnpackerEntryTests : IDisposable
{
    private readonly LayerScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    private FileStatus StatusOf(string relative) =>
        FileSystemCalls.Status(_scratch.InTarget(relative)) ?? throw new Xunit.Sdk.XunitException($"{relative} is missing");

    [Fact]
    public async Task RegularFileKeepsContentOwnerSetuidModeAndNanosecondMtime()
    {
        var file = File("usr/bin/su", "#!/bin/sh\n", mode: (UnixFileMode)0x9ED, uid: 1234, gid: 5678); // 04755
        file.ModificationTime = Epoch2001.AddTicks(1_234_567);

        var result = await _scratch.UnpackAsync(Build(file));

        var status = StatusOf("usr/bin/su");
        Assert.Equal(0x89EDu, status.Mode); // S_IFREG | 04755: chmod came after chown, which clears setuid
        Assert.Equal(1234u, status.Uid);
        Assert.Equal(5678u, status.Gid);
        Assert.Equal(1_000_000_000, status.MtimeSeconds);
        Assert.Equal(123_456_700u, status.MtimeNanoseconds);
        Assert.Equal("#!/bin/sh\n", System.IO.File.ReadAllText(_scratch.InTarget("usr/bin/su")));
        Assert.Equal(1, result.Entries);

        // The missing parents were created 0755, owned by root.
        Assert.Equal(0x41EDu, StatusOf("usr").Mode);
        Assert.Equal(0u, StatusOf("usr/bin").Uid);
    }

    [Fact]
    public async Task DirectoryKeepsSetgidModeOwnerAndMtimeDespiteLaterChildren()
    {
        var dir = Dir("srv/", mode: (UnixFileMode)0x5E8); // 02750
        dir.Uid = 42;
        dir.Gid = 43;
        var sub = Dir("srv/sub/");
        sub.ModificationTime = Epoch2001.AddSeconds(5);

        await _scratch.UnpackAsync(Build(dir, sub, File("srv/sub/a", "1"), File("srv/b", "2")));

        var status = StatusOf("srv");
        Assert.Equal(0x45E8u, status.Mode);
        Assert.Equal(42u, status.Uid);
        Assert.Equal(43u, status.Gid);
        Assert.Equal(1_000_000_000, status.MtimeSeconds);
        Assert.Equal(1_000_000_005, StatusOf("srv/sub").MtimeSeconds);
    }

    [Fact]
    public async Task RootEntryAppliesToTheTargetDirectory()
    {
        var root = Dir("./", mode: (UnixFileMode)0x1ED);
        root.ModificationTime = Epoch2001.AddSeconds(9);

        await _scratch.UnpackAsync(Build(root, File("a")));

        var status = FileSystemCalls.Status(_scratch.Target)!.Value;
        Assert.Equal(0x41EDu, status.Mode);
        Assert.Equal(1_000_000_009, status.MtimeSeconds);
    }

    [Fact]
    public async Task SymlinkKeepsTargetTextOwnerAndItsOwnMtime()
    {
        var link = Symlink("bin/sh", "/bin/busybox");
        link.Uid = 11;
        link.Gid = 12;
        link.ModificationTime = Epoch2001.AddSeconds(3);

        await _scratch.UnpackAsync(Build(link));

        var path = _scratch.InTarget("bin/sh");
        Assert.Equal(FileKind.Symlink, FileKinds.Of(path));
        Assert.Equal("/bin/busybox", new FileInfo(path).LinkTarget);
        var status = StatusOf("bin/sh");
        Assert.Equal(11u, status.Uid);
        Assert.Equal(12u, status.Gid);
        Assert.Equal(1_000_000_003, status.MtimeSeconds);
    }

    [Fact]
    public async Task HardlinkSharesTheInode()
    {
        await _scratch.UnpackAsync(Build(File("bin/busybox", "elf"), HardLink("bin/ls", "bin/busybox"), HardLink("/sbin/init", "/bin/busybox")));

        var original = StatusOf("bin/busybox");
        Assert.Equal(original.Inode, StatusOf("bin/ls").Inode);
        Assert.Equal(original.Inode, StatusOf("sbin/init").Inode);
        Assert.Equal(3u, original.LinkCount);
    }

    [Fact]
    public async Task DevicesAndFifoKeepTypeNumbersAndMode()
    {
        var null_ = new PaxTarEntry(TarEntryType.CharacterDevice, "dev/null") { DeviceMajor = 1, DeviceMinor = 3, Mode = (UnixFileMode)0x1B6 };
        // A minor above 8 bits exercises the split minor of makedev (the kernel allows 12-bit majors, 20-bit minors).
        var disk = new PaxTarEntry(TarEntryType.BlockDevice, "dev/nvme") { DeviceMajor = 259, DeviceMinor = 70000, Mode = (UnixFileMode)0x1B0, Gid = 6 };
        var fifo = new PaxTarEntry(TarEntryType.Fifo, "run/pipe") { Mode = (UnixFileMode)0x180, Uid = 5 };

        await _scratch.UnpackAsync(Build(null_, disk, fifo));

        var nullStatus = StatusOf("dev/null");
        Assert.Equal(0x21B6u, nullStatus.Mode); // S_IFCHR | 0666
        Assert.Equal((1u, 3u), (nullStatus.RdevMajor, nullStatus.RdevMinor));
        var diskStatus = StatusOf("dev/nvme");
        Assert.Equal(0x61B0u, diskStatus.Mode); // S_IFBLK | 0660
        Assert.Equal((259u, 70000u), (diskStatus.RdevMajor, diskStatus.RdevMinor));
        Assert.Equal(6u, diskStatus.Gid);
        var fifoStatus = StatusOf("run/pipe");
        Assert.Equal(0x1180u, fifoStatus.Mode); // S_IFIFO | 0600
        Assert.Equal(5u, fifoStatus.Uid);
    }

    [Fact]
    public async Task XattrsFromPaxRecordsAreSet()
    {
        var file = WithXattrs(TarEntryType.RegularFile, "etc/conf", ("user.comment", "hello"), ("trusted.note", "root-only"));
        var dir = WithXattrs(TarEntryType.Directory, "var/", ("user.kind", "dir"));

        await _scratch.UnpackAsync(Build(file, dir));

        Assert.Equal("hello", Xattr("etc/conf", "user.comment"));
        Assert.Equal("root-only", Xattr("etc/conf", "trusted.note"));
        Assert.Equal("dir", Xattr("var", "user.kind"));
        Assert.Null(Xattr("etc/conf", "user.other"));
    }

    [Fact]
    public async Task OverlayXattrsFromTheLayerAreRefused()
    {
        var dir = WithXattrs(TarEntryType.Directory, "d/", ("trusted.overlay.redirect", "/elsewhere"));

        await _scratch.AssertRefusedAsync(Build(dir), "'d/'", "reserved for overlayfs");
        Assert.Null(FileSystemCalls.GetXattr(_scratch.InTarget("d"), "trusted.overlay.redirect"));
    }

    [Fact]
    public async Task XattrValueThatWasNotUtf8IsRefusedRatherThanCorrupted()
    {
        // TarReader decodes PAX values as UTF-8; craft a value with bytes that are not, by patching the archive.
        var tar = Build(WithXattrs(TarEntryType.RegularFile, "bin/ping", ("security.capability", "QQQQ")));
        var at = tar.AsSpan().IndexOf("QQQQ"u8);
        tar[at] = 0xFF;
        tar[at + 1] = 0xFE;

        await _scratch.AssertRefusedAsync(tar, "'bin/ping'", "security.capability", "not valid UTF-8");
    }

    [Fact]
    public async Task CancelledUnpackStops()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            Nacelle.ImageService.Layers.LayerUnpacker.UnpackAsync(new MemoryStream(Build(File("a"))), _scratch.Target, cancelled.Token));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_scratch.Target));
    }

    [Fact]
    public async Task WhiteoutBecomesCharacterDeviceZeroZero()
    {
        Directory.CreateDirectory(_scratch.InTarget("etc"));
        System.IO.File.WriteAllText(_scratch.InTarget("etc/old"), "lower layer leftover");

        await _scratch.UnpackAsync(Build(File("etc/.wh.old"), File("opt/.wh.gone")));

        foreach (var name in new[] { "etc/old", "opt/gone" })
        {
            var status = StatusOf(name);
            Assert.Equal(0x2000u, status.Mode & 0xF000);
            Assert.Equal((0u, 0u), (status.RdevMajor, status.RdevMinor));
        }

        Assert.Equal(FileKind.Missing, FileKinds.Of(_scratch.InTarget("etc/.wh.old")));
        Assert.Equal(FileKind.Missing, FileKinds.Of(_scratch.InTarget("opt/.wh.gone")));
    }

    [Fact]
    public async Task OpaqueMarkerSetsTheOverlayXattrAndCreatesMissingDirectories()
    {
        await _scratch.UnpackAsync(Build(Dir("var/"), File("var/.wh..wh..opq"), File("new/deep/.wh..wh..opq")));

        Assert.Equal("y", Xattr("var", "trusted.overlay.opaque"));
        Assert.Equal("y", Xattr("new/deep", "trusted.overlay.opaque"));
        Assert.Null(Xattr("new", "trusted.overlay.opaque"));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_scratch.InTarget("var")));
    }

    [Fact]
    public async Task AufsBookkeepingIsSkipped()
    {
        var result = await _scratch.UnpackAsync(Build(Dir(".wh..wh.plnk/"), File(".wh..wh.plnk/1234.5678", "x"), File("etc/.wh..wh.aufs"), File("kept")));

        Assert.Equal(4, result.Entries);
        Assert.Equal(["kept"], Directory.EnumerateFileSystemEntries(_scratch.Target).Select(Path.GetFileName));
    }

    [Fact]
    public async Task DirectoryOverDirectoryKeepsContentsAndUpdatesMode()
    {
        Directory.CreateDirectory(_scratch.InTarget("data"));
        System.IO.File.WriteAllText(_scratch.InTarget("data/keep"), "lower");

        await _scratch.UnpackAsync(Build(Dir("data/", mode: (UnixFileMode)0x1C0)));

        Assert.Equal(0x41C0u, StatusOf("data").Mode);
        Assert.Equal("lower", System.IO.File.ReadAllText(_scratch.InTarget("data/keep")));
    }

    [Fact]
    public async Task FileReplacesDirectoryAndDirectoryReplacesFile()
    {
        Directory.CreateDirectory(_scratch.InTarget("was-dir/child"));
        System.IO.File.WriteAllText(_scratch.InTarget("was-dir/child/f"), "x");
        System.IO.File.WriteAllText(_scratch.InTarget("was-file"), "x");

        await _scratch.UnpackAsync(Build(File("was-dir", "now a file"), Dir("was-file/"), File("was-file/inner", "y")));

        Assert.Equal("now a file", System.IO.File.ReadAllText(_scratch.InTarget("was-dir")));
        Assert.Equal(FileKind.Directory, FileKinds.Of(_scratch.InTarget("was-file")));
        Assert.Equal("y", System.IO.File.ReadAllText(_scratch.InTarget("was-file/inner")));
    }

    [Fact]
    public async Task LaterEntryReplacesEarlierOneOfTheSameName()
    {
        await _scratch.UnpackAsync(Build(File("a", "first"), Symlink("a", "b"), File("a", "third")));

        Assert.Equal(FileKind.Regular, FileKinds.Of(_scratch.InTarget("a")));
        Assert.Equal("third", System.IO.File.ReadAllText(_scratch.InTarget("a")));
    }

    private string? Xattr(string relative, string name) =>
        FileSystemCalls.GetXattr(_scratch.InTarget(relative), name) is { } value ? Encoding.UTF8.GetString(value) : null;
}
