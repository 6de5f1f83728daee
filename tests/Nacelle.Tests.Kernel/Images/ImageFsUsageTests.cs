using Microsoft.Data.Sqlite;
using Nacelle.Storage;
using Nacelle.ContainerCore.Interop;
using Nacelle.ImageService;
using Nacelle.ImageService.Snapshots;
using Nacelle.Tests.Kernel.Storage;
using Nacelle.Tests.Support;
using Nacelle.Tests.Support.Registry;

namespace Nacelle.Tests.Kernel.Images;

/// <summary>
/// ImageFsInfo's numbers against GNU du (--one-file-system) of the same directories: images are the unpacked layers
/// plus the content store's blobs, containers are their upper directories only, with mounted root filesystems, a
/// mount inside an upper directory and symlinks out of it that must not be counted or followed.
/// </summary>
public sealed class ImageFsUsageTests : RegistryImageTest
{
    private readonly List<string> _mounts = [];

    public override async ValueTask DisposeAsync()
    {
        foreach (var mount in Enumerable.Reverse(_mounts))
        {
            Mounts.Unmount(mount);
        }

        await base.DisposeAsync();
    }

    // What du says the image file system holds: every snapshot directory and every blob file.
    private UsageNumbers DuOfImages() => Du.Of([
        .. Directory.GetDirectories(Path.Combine(Root.Path, "snapshots")),
        .. Directory.GetFiles(Path.Combine(Root.Path, "content/blobs/sha256"))]);

    private UsageNumbers DuOfUppers() =>
        Du.Of([.. Directory.GetDirectories(Path.Combine(Root.Path, "containers")).Select(c => Path.Combine(c, "upper"))]);

    private static UsageNumbers ImageUsage(ImageFsUsage usage) => new(usage.ImageBytes, usage.ImageInodes);

    private static UsageNumbers ContainerUsage(ImageFsUsage usage) => new(usage.ContainerBytes, usage.ContainerInodes);

    [Fact]
    public async Task TheNumbersMatchDuOfTheLayersBlobsAndUpperDirectories()
    {
        await TestImages.PushWhiteoutImageAsync(Pusher, "kernel/fs", "w");
        var image = await Images.PullAsync(Ref("kernel/fs", "w"), null, CancellationToken.None);
        Assert.Equal(DuOfImages(), ImageUsage(Images.FsUsage()));
        Assert.Equal(Path.Combine(Root.Path, "snapshots"), Images.FsUsage().ImageMountpoint);

        // Two containers with mounted root filesystems: the image's files show through them but are not theirs.
        var one = Images.CreateRootfs("one", image.Id);
        var two = Images.CreateRootfs("two", image.Id);
        Images.Rootfs.Mount("one");
        _mounts.Add(one.Path);
        Images.Rootfs.Mount("two");
        _mounts.Add(two.Path);
        Assert.Equal(DuOfUppers(), ContainerUsage(Images.FsUsage())); // empty upper dirs, measured at create

        // Writes through the rootfs land in the upper directory: a file, a hard link to it, a directory tree.
        await File.WriteAllBytesAsync(Path.Combine(one.Path, "written"), new byte[300_000]);
        File.CreateSymbolicLink(Path.Combine(one.Path, "escape"), "/");
        FileSystemCalls.MakeHardLink(Path.Combine(one.Path, "written"), Path.Combine(one.Path, "linked"));
        Directory.CreateDirectory(Path.Combine(two.Path, "a/b/c"));
        await File.WriteAllTextAsync(Path.Combine(two.Path, "a/b/c/text"), "hello");
        File.Delete(Path.Combine(two.Path, "bin/busybox")); // a whiteout in the upper dir

        // A mount inside an upper directory (as a careless bind would make): neither counted nor entered.
        var mounted = Path.Combine(two.UpperDir, "mnt");
        Directory.CreateDirectory(mounted);
        Assert.Equal(0, TestProcesses.Run("/usr/bin/mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mounted).Exit);
        _mounts.Add(mounted);
        await File.WriteAllBytesAsync(Path.Combine(mounted, "hidden"), new byte[1_000_000]);

        await Images.Rootfs.WritableLayers.RefreshAsync();
        var usage = Images.FsUsage();
        Assert.Equal(DuOfUppers(), ContainerUsage(usage));
        Assert.True(usage.ContainerBytes >= 300_000, $"the written file is counted: {usage.ContainerBytes}");
        Assert.True(usage.ContainerBytes < 1_000_000, $"the tmpfs and the rootfs behind 'escape' are not: {usage.ContainerBytes}");
        Assert.Equal(DuOfImages(), ImageUsage(usage)); // the containers' writes are not the images'

        // ContainerStats' writable layer uses the same numbers, per container.
        var (bytes, inodes) = Images.Rootfs.WritableUsage("one");
        Assert.Equal(Du.Of(one.UpperDir), new UsageNumbers(bytes, inodes));
    }

    [Fact]
    public async Task ImageFsInfoNeverWalksAndStaleNumbersAreRefreshedBehind()
    {
        await TestImages.PushBusyboxAsync(Pusher, "kernel/stale", "s");
        var image = await Images.PullAsync(Ref("kernel/stale", "s"), null, CancellationToken.None);
        var rootfs = Images.CreateRootfs("stale", image.Id);
        var before = ContainerUsage(Images.FsUsage());

        await File.WriteAllBytesAsync(Path.Combine(rootfs.UpperDir, "grown"), new byte[200_000]);

        // Fresh numbers are served as they are: no walk, so the new file is not seen yet.
        Assert.Equal(before, ContainerUsage(Images.FsUsage()));
        await Images.Rootfs.WritableLayers.RefreshAsync();
        Assert.Equal(Du.Of(rootfs.UpperDir), ContainerUsage(Images.FsUsage()));
        await Images.Rootfs.Remove("stale");
        Assert.Equal(default, ContainerUsage(Images.FsUsage()));
    }

    [Fact]
    public async Task LayersStoredWithoutNumbersAreMeasuredOnceAfterARestart()
    {
        await TestImages.PushWhiteoutImageAsync(Pusher, "kernel/migrated", "m");
        var image = await Images.PullAsync(Ref("kernel/migrated", "m"), null, CancellationToken.None);
        Images.CreateRootfs("kept", image.Id);
        var expected = Images.FsUsage();
        Images.Dispose();

        // As a store written before migration 2 left them.
        using (var connection = new SqliteConnection($"Data Source={Path.Combine(Root.Path, "metadata.db")}"))
        {
            connection.Open();
            using var clear = connection.CreateCommand();
            clear.CommandText = "UPDATE snapshots SET disk_bytes = NULL, inodes = NULL";
            Assert.Equal(3, clear.ExecuteNonQuery());
        }

        Images = NewManager();
        await Images.MeasuredLayers;
        var usage = Images.FsUsage();
        Assert.Equal(ImageUsage(expected), ImageUsage(usage));
        Assert.Equal(DuOfImages(), ImageUsage(usage));

        // The container found at start is measured too (by the background refresh, or on first ask).
        await Images.Rootfs.WritableLayers.RefreshAsync();
        Assert.Equal(DuOfUppers(), ContainerUsage(Images.FsUsage()));
        await Images.Rootfs.Remove("kept");
    }

    [Fact]
    public void TheWalkCountsHardLinksOnceAndFollowsNoSymlink()
    {
        var tree = Path.Combine(Root.Path, "tree");
        Directory.CreateDirectory(Path.Combine(tree, "d/e"));
        File.WriteAllBytes(Path.Combine(tree, "d/e/big"), new byte[70_000]);
        FileSystemCalls.MakeHardLink(Path.Combine(tree, "d/e/big"), Path.Combine(tree, "again"));
        File.CreateSymbolicLink(Path.Combine(tree, "root"), "/");
        File.CreateSymbolicLink(Path.Combine(tree, "usr"), "/usr");
        FileSystemCalls.MakeFifo(Path.Combine(tree, "fifo"), 0x180);

        Assert.Equal(Du.Of(tree), DiskUsage.Measure(tree));
        Assert.Equal(default, DiskUsage.Measure(Path.Combine(tree, "root"))); // a symlink as the root is not followed
        Assert.Equal(default, DiskUsage.Measure(Path.Combine(tree, "missing")));
    }
}
