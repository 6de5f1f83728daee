using System.Formats.Tar;
using Nacelle.ContainerCore.Interop;
using static Nacelle.Tests.Kernel.Layers.LayerTar;

namespace Nacelle.Tests.Kernel.Layers;

/// <summary>
/// Crafted layers that try to reach outside the target. Each test asserts the refusal (or the containment) and
/// that the sibling sentinel directory is exactly as it was.
/// </summary>
public sealed class LayerUnpackerSecurityTests : IDisposable
{
    private readonly LayerScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    [Theory]
    [InlineData("../escape")]
    [InlineData("a/../../escape")]
    [InlineData("/../sentinel/escape")]
    [InlineData("./../sentinel/escape")]
    public async Task NameClimbingAboveTheRootIsRefused(string name)
    {
        await _scratch.AssertRefusedAsync(Build(File(name, "pwned")), $"'{name}'", "climbs above the layer root");
        _scratch.AssertContained();
        Assert.Empty(Directory.EnumerateFileSystemEntries(_scratch.Target));
    }

    /// <summary>Regression (found by hostile probes): a name over PATH_MAX was refused with Internal. It is the layer's
    /// fault, so it is InvalidArgument naming the entry (shortened in the message) and the kernel's limit.</summary>
    [Fact]
    public async Task NamesAndTargetsTheKernelCannotHoldAreRefusedNamingTheLimit()
    {
        var deep = string.Join('/', Enumerable.Repeat(new string('d', 200), 25)) + "/file"; // about 5 KB
        await _scratch.AssertRefusedAsync(Build(File(deep, "x")), "PATH_MAX of 4096");
        await _scratch.AssertRefusedAsync(Build(File(new string('n', 300), "x")), "NAME_MAX of 255");
        await _scratch.AssertRefusedAsync(Build(Symlink("link", new string('t', 5000))), "'link'", "PATH_MAX of 4096");
        _scratch.AssertContained();
    }

    [Fact]
    public async Task AbsoluteAndDottedNamesAreContained()
    {
        await _scratch.UnpackAsync(Build(File("/etc/x", "abs"), File("./a/./b", "dot"), File("c/../d", "dd")));

        Assert.Equal("abs", System.IO.File.ReadAllText(_scratch.InTarget("etc/x")));
        Assert.Equal("dot", System.IO.File.ReadAllText(_scratch.InTarget("a/b")));
        Assert.Equal("dd", System.IO.File.ReadAllText(_scratch.InTarget("d")));
        Assert.Equal(FileKind.Missing, FileKinds.Of(_scratch.InTarget("c")));
        _scratch.AssertContained();
    }

    [Theory]
    [InlineData(true)]   // absolute target
    [InlineData(false)]  // relative target climbing out
    public async Task EntryThroughSymlinkFromTheLayerIsRefused(bool absolute)
    {
        var target = absolute ? _scratch.Sentinel : "../sentinel";

        await _scratch.AssertRefusedAsync(
            Build(Symlink("escape", target), File("escape/pwned", "x")),
            "'escape/pwned'", "traverses symlink 'escape'");

        _scratch.AssertContained();
        Assert.Equal(FileKind.Symlink, FileKinds.Of(_scratch.InTarget("escape")));
    }

    [Theory]
    [InlineData("d/pwned")]   // the directory itself was replaced
    [InlineData("d/e/pwned")] // a directory under it, created before the replacement
    public async Task EntryThroughADirectoryTheLayerReplacedWithASymlinkIsRefused(string name)
    {
        // The unpacker remembers the directories it made; replacing one must make it forget it and everything under it.
        Directory.CreateDirectory(Path.Combine(_scratch.Sentinel, "e"));
        await _scratch.AssertRefusedAsync(
            Build(Dir("d/"), Dir("d/e/"), File("d/e/f", "x"), Symlink("d", _scratch.Sentinel), File(name, "x")),
            $"'{name}'", "traverses symlink 'd'");

        _scratch.AssertContained("e");
        Assert.Equal(FileKind.Symlink, FileKinds.Of(_scratch.InTarget("d")));
    }

    [Fact]
    public async Task EntryThroughPreExistingSymlinkIsRefused()
    {
        // The symlink may come from an earlier layer's copy, not this one: it is refused all the same.
        Directory.CreateDirectory(_scratch.InTarget("usr"));
        System.IO.File.CreateSymbolicLink(_scratch.InTarget("usr/lib"), _scratch.Sentinel);

        await _scratch.AssertRefusedAsync(Build(Dir("usr/lib/deep/"), File("usr/lib/deep/x")), "'usr/lib/deep/'", "traverses symlink 'usr/lib'");

        _scratch.AssertContained();
    }

    [Fact]
    public async Task EntryUnderARegularFileIsRefused()
    {
        await _scratch.AssertRefusedAsync(Build(File("f", "x"), File("f/g", "y")), "'f/g'", "is not a directory");
        _scratch.AssertContained();
    }

    [Fact]
    public async Task WhiteoutThroughSymlinkIsRefused()
    {
        System.IO.File.WriteAllText(Path.Combine(_scratch.Sentinel, "victim"), "keep me");

        await _scratch.AssertRefusedAsync(Build(Symlink("link", _scratch.Sentinel), File("link/.wh.victim")), "traverses symlink 'link'");

        Assert.Equal("keep me", System.IO.File.ReadAllText(Path.Combine(_scratch.Sentinel, "victim")));
        _scratch.AssertContained("victim");
    }

    [Fact]
    public async Task OpaqueMarkerThroughSymlinkIsRefused()
    {
        await _scratch.AssertRefusedAsync(Build(Symlink("link", _scratch.Sentinel), File("link/.wh..wh..opq")), "traverses symlink 'link'");

        Assert.Null(FileSystemCalls.GetXattr(_scratch.Sentinel, "trusted.overlay.opaque"));
        _scratch.AssertContained();
    }

    [Fact]
    public async Task OpaqueMarkerOnASymlinkIsRefused()
    {
        // "link/.wh..wh..opq" names the directory "link" itself; a symlink there must not receive the xattr via its target.
        await _scratch.AssertRefusedAsync(Build(Symlink("link", "../sentinel"), File("link/.wh..wh..opq")), "traverses symlink 'link'");
        Assert.Null(FileSystemCalls.GetXattr(_scratch.Sentinel, "trusted.overlay.opaque"));
    }

    [Theory]
    [InlineData("/etc/passwd")]
    [InlineData("etc/../etc/passwd")]
    public async Task HardlinkToHostPathResolvesInsideTheTarget(string linkName)
    {
        await _scratch.UnpackAsync(Build(File("etc/passwd", "root:x:0:0::/root:/bin/sh\n"), HardLink("pw", linkName)));

        var inside = FileSystemCalls.Status(_scratch.InTarget("etc/passwd"))!.Value;
        Assert.Equal(inside.Inode, FileSystemCalls.Status(_scratch.InTarget("pw"))!.Value.Inode);
        Assert.NotEqual(FileSystemCalls.Status("/etc/passwd")!.Value.Inode, inside.Inode);
        Assert.Equal(2u, inside.LinkCount);
    }

    [Fact]
    public async Task HardlinkToMissingTargetIsRefused()
    {
        await _scratch.AssertRefusedAsync(Build(HardLink("pw", "/etc/passwd")), "'pw'", "does not exist in the layer");
        _scratch.AssertContained();
        Assert.Equal(FileKind.Missing, FileKinds.Of(_scratch.InTarget("pw")));
    }

    [Fact]
    public async Task HardlinkClimbingAboveTheRootIsRefused()
    {
        await _scratch.AssertRefusedAsync(Build(HardLink("pw", "../../etc/passwd")), "'pw'", "climbs above the layer root");
        _scratch.AssertContained();
    }

    [Fact]
    public async Task HardlinkThroughSymlinkIsRefused()
    {
        System.IO.File.WriteAllText(Path.Combine(_scratch.Sentinel, "secret"), "s");

        await _scratch.AssertRefusedAsync(
            Build(Symlink("out", _scratch.Sentinel), HardLink("stolen", "out/secret")),
            "'stolen'", "traverses symlink 'out'");

        Assert.Equal(1u, FileSystemCalls.Status(Path.Combine(_scratch.Sentinel, "secret"))!.Value.LinkCount);
        _scratch.AssertContained("secret");
    }

    [Fact]
    public async Task HardlinkToDirectoryIsRefused()
    {
        await _scratch.AssertRefusedAsync(Build(Dir("d/"), HardLink("h", "d")), "'h'", "is a directory");
        _scratch.AssertContained();
    }

    [Fact]
    public async Task HardlinkIntoTheDirectoryItReplacesIsRefused()
    {
        await _scratch.AssertRefusedAsync(Build(Dir("d/"), File("d/f", "x"), HardLink("d", "d/f")), "'d'", "inside the directory it would replace");
        Assert.Equal("x", System.IO.File.ReadAllText(_scratch.InTarget("d/f")));
    }

    [Fact]
    public async Task NulInANameIsRefused()
    {
        // A PAX path record (used for names over 100 bytes) can carry a NUL; cut there, the name would be "link".
        var entry = File("link\0" + new string('j', 120) + "/f");

        await _scratch.AssertRefusedAsync(Build(Symlink("link", _scratch.Sentinel), entry), "NUL character");
        _scratch.AssertContained();
    }

    [Fact]
    public async Task HardlinkToSymlinkLinksTheSymlinkItself()
    {
        // linkat without AT_SYMLINK_FOLLOW: the new name is another symlink, never a link to the file outside.
        System.IO.File.WriteAllText(Path.Combine(_scratch.Sentinel, "secret"), "s");

        await _scratch.UnpackAsync(Build(Symlink("s", Path.Combine(_scratch.Sentinel, "secret")), HardLink("h", "s")));

        Assert.Equal(FileKind.Symlink, FileKinds.Of(_scratch.InTarget("h")));
        Assert.Equal(1u, FileSystemCalls.Status(Path.Combine(_scratch.Sentinel, "secret"))!.Value.LinkCount);
        _scratch.AssertContained("secret");
    }

    [Fact]
    public async Task FileOverSymlinkReplacesTheSymlinkNotItsTarget()
    {
        var victim = Path.Combine(_scratch.Sentinel, "victim");
        System.IO.File.WriteAllText(victim, "original");
        var before = FileSystemCalls.Status(victim)!.Value;

        var file = File("s", "overwritten?", mode: (UnixFileMode)0x9FF, uid: 99);
        await _scratch.UnpackAsync(Build(Symlink("s", victim), file));

        Assert.Equal(FileKind.Regular, FileKinds.Of(_scratch.InTarget("s")));
        Assert.Equal("overwritten?", System.IO.File.ReadAllText(_scratch.InTarget("s")));
        Assert.Equal("original", System.IO.File.ReadAllText(victim));
        var after = FileSystemCalls.Status(victim)!.Value;
        Assert.Equal((before.Mode, before.Uid, before.MtimeSeconds, before.MtimeNanoseconds), (after.Mode, after.Uid, after.MtimeSeconds, after.MtimeNanoseconds));
        _scratch.AssertContained("victim");
    }

    [Fact]
    public async Task DirectoryOverSymlinkToDirectoryReplacesTheSymlink()
    {
        Directory.CreateDirectory(Path.Combine(_scratch.Sentinel, "inner"));
        var before = FileSystemCalls.Status(_scratch.Sentinel)!.Value;

        await _scratch.UnpackAsync(Build(Symlink("d", _scratch.Sentinel), Dir("d/", mode: (UnixFileMode)0x1FF)));

        Assert.Equal(FileKind.Directory, FileKinds.Of(_scratch.InTarget("d")));
        var after = FileSystemCalls.Status(_scratch.Sentinel)!.Value;
        Assert.Equal(before.Mode, after.Mode);
        _scratch.AssertContained("inner");
    }

    [Fact]
    public async Task DeferredDirectoryTimesNeverFollowALaterSymlink()
    {
        // d/sub gets an mtime recorded for the end; then d becomes a symlink to the sentinel, which has a "sub" too.
        var sentinelSub = Path.Combine(_scratch.Sentinel, "sub");
        Directory.CreateDirectory(sentinelSub);
        FileSystemCalls.SetTimes(sentinelSub, 2_000_000_000, 0, 2_000_000_000, 0);

        await _scratch.UnpackAsync(Build(Dir("d/"), Dir("d/sub/"), Symlink("d", _scratch.Sentinel)));

        Assert.Equal(2_000_000_000, FileSystemCalls.Status(sentinelSub)!.Value.MtimeSeconds);
        Assert.Equal(FileKind.Symlink, FileKinds.Of(_scratch.InTarget("d")));
        _scratch.AssertContained("sub");
    }

    [Fact]
    public async Task RootEntryThatIsNotADirectoryIsRefused()
    {
        await _scratch.AssertRefusedAsync(Build(File("./", "x")), "names the layer root");
        _scratch.AssertContained();
    }

    [Fact]
    public async Task DeviceInsideTheTargetDoesNotEscape()
    {
        // Devices are allowed (a rootfs has /dev/null), but only ever created at their contained path.
        var device = new PaxTarEntry(TarEntryType.CharacterDevice, "/../../dev/evil") { DeviceMajor = 1, DeviceMinor = 3 };

        await _scratch.AssertRefusedAsync(Build(device), "climbs above the layer root");
        Assert.Equal(FileKind.Missing, FileKinds.Of("/dev/evil"));
        _scratch.AssertContained();
    }
}
