using Nacelle.Common;
using Nacelle.ContainerCore.Interop;
using Nacelle.Storage;
using Nacelle.ImageService.Content;
using Nacelle.ImageService.Snapshots;
using Nacelle.ImageService.Store;

namespace Nacelle.Tests.Kernel.Storage;

public sealed class SnapshotAndRootfsTests : IDisposable
{
    private readonly TempRoot _root = new();
    private readonly MetadataDatabase _database;
    private readonly SnapshotStore _snapshots;
    private readonly RootfsManager _rootfs;

    public SnapshotAndRootfsTests()
    {
        _database = new MetadataDatabase(Path.Combine(_root.Path, "metadata.db"));
        _database.Migrate(ImageSchema.Domain, ImageSchema.Migrations);
        _snapshots = new SnapshotStore(_database, _root.Path);
        _rootfs = new RootfsManager(_database, _snapshots, _root.Path);
    }

    public void Dispose()
    {
        _rootfs.Dispose();
        _root.Dispose();
    }

    private static string Diff(char c) => "sha256:" + new string(c, 64);

    // A fake unpack that writes the given files and claims the given diff id.
    private static Func<string, CancellationToken, Task<(string, long)>> Writes(string diffId, params (string Path, string Text)[] files) =>
        async (dir, ct) =>
        {
            foreach (var (path, text) in files)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(dir, path))!);
                await File.WriteAllTextAsync(Path.Combine(dir, path), text, ct);
            }

            return (diffId, files.Sum(f => (long)f.Text.Length));
        };

    private async Task<IReadOnlyList<string>> TwoLayers()
    {
        var chains = Digests.ChainIds([Diff('a'), Diff('b')]);
        await _snapshots.EnsureAsync(chains[0], null, Diff('a'), Writes(Diff('a'), ("etc/base", "base"), ("etc/shadowed", "lower")), CancellationToken.None);
        await _snapshots.EnsureAsync(chains[1], chains[0], Diff('b'), Writes(Diff('b'), ("etc/shadowed", "upper"), ("app/run", "run")), CancellationToken.None);
        return chains;
    }

    [Fact]
    public async Task SnapshotsGetShortDirectoriesAndAreUnpackedOnce()
    {
        var chains = await TwoLayers();
        var first = _snapshots.Find(chains[0])!;
        Assert.Equal(Path.Combine(_root.Path, "snapshots", first.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)), first.Path);
        Assert.Equal("base", await File.ReadAllTextAsync(Path.Combine(first.Path, "etc/base")));

        var calls = 0;
        await _snapshots.EnsureAsync(chains[0], null, Diff('a'), (d, ct) => { calls++; return Task.FromResult((Diff('a'), 0L)); }, CancellationToken.None);
        Assert.Equal(0, calls);
        Assert.Equal(2, _snapshots.List().Count);
    }

    [Fact]
    public async Task ADiffIdMismatchLeavesNoSnapshot()
    {
        var chain = Diff('c');
        var e = await Assert.ThrowsAsync<NacelleException>(() =>
            _snapshots.EnsureAsync(chain, null, chain, Writes(Diff('d'), ("x", "y")), CancellationToken.None));

        Assert.Contains($"has diff id {Diff('d')}, but the image config lists {chain}", e.Message);
        Assert.Null(_snapshots.Find(chain));
        Assert.Empty(Directory.GetDirectories(Path.Combine(_root.Path, "snapshots")));
    }

    [Fact]
    public async Task InterruptedUnpacksAreClearedAtStart()
    {
        await TwoLayers();
        Directory.CreateDirectory(Path.Combine(_root.Path, "snapshots", "tmp-crashed", "half"));
        Directory.CreateDirectory(Path.Combine(_root.Path, "snapshots", "999"));

        var reopened = new SnapshotStore(_database, _root.Path);

        Assert.Equal(2, reopened.List().Count);
        Assert.False(Directory.Exists(Path.Combine(_root.Path, "snapshots", "tmp-crashed")));
        Assert.False(Directory.Exists(Path.Combine(_root.Path, "snapshots", "999")));
    }

    [Fact]
    public async Task ARootfsIsAWritableOverlayThatLeavesTheLayersUntouched()
    {
        var chains = await TwoLayers();
        var rootfs = _rootfs.Create("c1", "sha256:image", chains);
        Assert.Equal(2, rootfs.LowerDirs.Count);
        Assert.Equal(_snapshots.Find(chains[1])!.Path, rootfs.LowerDirs[0]); // top layer first

        _rootfs.Mount("c1");
        try
        {
            // The mount root is one (statx's STATX_ATTR_MOUNT_ROOT), a directory inside it and a missing path are not.
            Assert.True(Nacelle.ContainerCore.Interop.Mounts.IsMountPoint(rootfs.Path));
            Assert.True(Nacelle.ContainerCore.Interop.Mounts.IsMountPoint(rootfs.Path + "/"));
            Assert.False(Nacelle.ContainerCore.Interop.Mounts.IsMountPoint(Path.Combine(rootfs.Path, "etc")));
            Assert.False(Nacelle.ContainerCore.Interop.Mounts.IsMountPoint(Path.Combine(rootfs.Path, "no-such-dir")));
            Assert.Equal("upper", await File.ReadAllTextAsync(Path.Combine(rootfs.Path, "etc/shadowed")));
            Assert.Equal("base", await File.ReadAllTextAsync(Path.Combine(rootfs.Path, "etc/base")));
            await File.WriteAllTextAsync(Path.Combine(rootfs.Path, "etc/base"), "changed by the container");
            File.Delete(Path.Combine(rootfs.Path, "app/run"));

            Assert.Equal("base", await File.ReadAllTextAsync(Path.Combine(_snapshots.Find(chains[0])!.Path, "etc/base")));
            Assert.True(File.Exists(Path.Combine(_snapshots.Find(chains[1])!.Path, "app/run")));
            Assert.Equal("changed by the container", await File.ReadAllTextAsync(Path.Combine(rootfs.UpperDir, "etc/base")));
            _rootfs.Mount("c1"); // idempotent
        }
        finally
        {
            _rootfs.Unmount("c1");
        }

        Assert.False(Nacelle.ContainerCore.Interop.Mounts.IsMountPoint(rootfs.Path));
        Assert.Equal([chains[1]], _rootfs.TopChains());
        Assert.Equal(chains, _rootfs.ChainOf(chains[1]));

        _rootfs.Mount("c1");
        var deleted = _rootfs.Remove("c1");
        Assert.False(Nacelle.ContainerCore.Interop.Mounts.IsMountPoint(rootfs.Path));
        Assert.False(Directory.Exists(Path.Combine(_root.Path, "containers", "c1")));
        Assert.Null(_rootfs.Get("c1"));
        await _rootfs.Remove("c1"); // idempotent

        // Moved into the trash at once, unmounted and deleted in the background.
        await deleted;
        Assert.Empty(Nacelle.ContainerCore.Interop.Mounts.MountPointsUnder(_root.Path));
        Assert.Empty(Directory.GetFileSystemEntries(_rootfs.Trash.Directory));
        Assert.Equal(0, _rootfs.Trash.Pending);
        Assert.True(Directory.Exists(_snapshots.Find(chains[1])!.Path)); // the layers stay
    }

    [Fact]
    public async Task WhatARemovalCutShortLeftIsDeletedAtTheNextStart()
    {
        var chains = await TwoLayers();
        _rootfs.Create("kept", "sha256:image", chains);
        _rootfs.Mount("kept");
        var trashed = _rootfs.Create("trashed", "sha256:image", chains);
        _rootfs.Mount("trashed");
        var unrecorded = _rootfs.Create("unrecorded", "sha256:image", chains);
        _rootfs.Mount("unrecorded");
        await File.WriteAllTextAsync(Path.Combine(trashed.Path, "written"), "by the container");

        // A daemon killed in Remove after the move into the trash (its overlay still mounted there), and one killed after
        // the record went but before the move (or a record a machine crash took back): the directory has no record.
        Directory.CreateDirectory(_rootfs.Trash.Directory);
        Directory.Move(Path.Combine(_root.Path, "containers", "trashed"), Path.Combine(_rootfs.Trash.Directory, "trashed.cut"));
        using (var connection = _database.Open())
        {
            MetadataDatabase.Execute(connection, "DELETE FROM rootfs WHERE container_id IN ('trashed', 'unrecorded')");
        }

        using var restarted = new RootfsManager(_database, _snapshots, _root.Path);
        await restarted.Trash.Emptied;

        Assert.Empty(Directory.GetFileSystemEntries(restarted.Trash.Directory));
        Assert.False(Directory.Exists(Path.Combine(_root.Path, "containers", "unrecorded")));
        Assert.Equal([Path.Combine(_root.Path, "containers", "kept", "rootfs")], Nacelle.ContainerCore.Interop.Mounts.MountPointsUnder(_root.Path));
        Assert.NotNull(restarted.Get("kept"));
        Assert.True(Directory.Exists(_snapshots.Find(chains[0])!.Path)); // the layers under the deleted overlays stay
        await restarted.Remove("kept");
        Assert.Empty(Nacelle.ContainerCore.Interop.Mounts.MountPointsUnder(_root.Path));
    }

    [Fact]
    public async Task ManyLayersFitOneOverlayMount()
    {
        // Short snapshot paths keep 120 layers well inside the kernel's one-page limit for mount options.
        var diffs = Enumerable.Range(0, 120).Select(i => "sha256:" + i.ToString("x64", System.Globalization.CultureInfo.InvariantCulture)).ToList();
        var chains = Digests.ChainIds(diffs);
        for (var i = 0; i < chains.Count; i++)
        {
            await _snapshots.EnsureAsync(chains[i], i == 0 ? null : chains[i - 1], diffs[i], Writes(diffs[i], ($"layer{i}", $"{i}")), CancellationToken.None);
        }

        var rootfs = _rootfs.Create("many", "sha256:image", chains);
        _rootfs.Mount("many");
        try
        {
            Assert.Equal("0", await File.ReadAllTextAsync(Path.Combine(rootfs.Path, "layer0")));
            Assert.Equal("119", await File.ReadAllTextAsync(Path.Combine(rootfs.Path, "layer119")));
        }
        finally
        {
            await _rootfs.Remove("many");
        }
    }

    [Fact]
    public async Task UnreferencedSnapshotsAreRemoved()
    {
        var chains = await TwoLayers();
        Assert.Equal(1, _snapshots.RemoveUnreferenced(new HashSet<string> { chains[0] }));
        Assert.NotNull(_snapshots.Find(chains[0]));
        Assert.Null(_snapshots.Find(chains[1]));
        Assert.Single(Directory.GetDirectories(Path.Combine(_root.Path, "snapshots")));
    }

    [Fact]
    public void TheSnapshotsDirectoryIsATopDirectoryForExt4sAllocator()
    {
        // Where the file system keeps FS_TOPDIR_FL (ext2/3/4; tmpfs has no inode flags), the store sets it on snapshots/.
        var probe = Directory.CreateDirectory(Path.Combine(_root.Path, "probe")).FullName;
        var kept = DirectoryCalls.GetInodeFlags(probe) is { } probeFlags
            && DirectoryCalls.SetInodeFlags(probe, probeFlags | DirectoryCalls.TopDirectoryFlag)
            && (DirectoryCalls.GetInodeFlags(probe)!.Value & DirectoryCalls.TopDirectoryFlag) != 0;
        Assert.SkipUnless(kept, $"the file system of {_root.Path} does not keep FS_TOPDIR_FL");

        var flags = DirectoryCalls.GetInodeFlags(Path.Combine(_root.Path, "snapshots"));
        Assert.NotNull(flags);
        Assert.NotEqual(0, flags.Value & DirectoryCalls.TopDirectoryFlag);
    }

    [Fact]
    public void BadContainerIdsAreRefused()
    {
        foreach (var bad in new[] { "../escape", "a/b", "", ".hidden", "UPPER" })
        {
            Assert.Equal(ErrorKind.InvalidArgument, Assert.Throws<NacelleException>(() => _rootfs.Get(bad)).Kind);
        }
    }
}
