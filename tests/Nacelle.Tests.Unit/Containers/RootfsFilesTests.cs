using Nacelle.Common;
using Nacelle.Sandbox.Containers;

namespace Nacelle.Tests.Unit.Containers;

/// <summary>Reading an image's /etc/passwd never leaves the image's root, whatever its symlinks say.</summary>
public sealed class RootfsFilesTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("nacelle-rootfsfiles-").FullName;
    private string Root => Path.Combine(_dir, "root");
    private string Outside => Path.Combine(_dir, "outside");

    public RootfsFilesTests()
    {
        Directory.CreateDirectory(Path.Combine(Root, "etc"));
        Directory.CreateDirectory(Outside);
        File.WriteAllText(Path.Combine(Outside, "secret"), "host secret\n");
        File.WriteAllText(Path.Combine(Root, "etc", "group"), "root:x:0:\n");
        File.WriteAllText(Path.Combine(Root, "secret"), "image file\n");
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void A_plain_file_is_read() => Assert.Equal("root:x:0:\n", RootfsFiles.ReadText(Root, "/etc/group"));

    [Fact]
    public void A_missing_file_is_null() => Assert.Null(RootfsFiles.ReadText(Root, "/etc/passwd"));

    [Theory]
    [InlineData("../../outside/secret")]
    [InlineData("/../outside/secret")]
    public void A_symlink_climbing_out_stays_inside(string target)
    {
        File.CreateSymbolicLink(Path.Combine(Root, "etc", "passwd"), target);
        // Resolved as in a chroot: ".." stops at the root, so the name means the image's own /outside/secret.
        Assert.Null(RootfsFiles.ReadText(Root, "/etc/passwd"));
        Assert.StartsWith(Root + "/", RootfsFiles.Resolve(Root, "/etc/passwd"));
    }

    [Fact]
    public void An_absolute_symlink_restarts_at_the_root()
    {
        File.CreateSymbolicLink(Path.Combine(Root, "etc", "passwd"), Path.Combine(Outside, "secret"));
        Assert.Equal(Path.Combine(Root, Outside.TrimStart('/'), "secret"), RootfsFiles.Resolve(Root, "/etc/passwd"));
        Assert.Null(RootfsFiles.ReadText(Root, "/etc/passwd"));

        File.Delete(Path.Combine(Root, "etc", "passwd"));
        File.CreateSymbolicLink(Path.Combine(Root, "etc", "passwd"), "/secret");
        Assert.Equal("image file\n", RootfsFiles.ReadText(Root, "/etc/passwd"));
    }

    [Fact]
    public void A_symlinked_directory_is_followed_inside()
    {
        Directory.CreateSymbolicLink(Path.Combine(Root, "conf"), "/etc");
        Assert.Equal("root:x:0:\n", RootfsFiles.ReadText(Root, "/conf/group"));
        Directory.CreateSymbolicLink(Path.Combine(Root, "up"), "../..");
        Assert.Equal(Root + "/secret", RootfsFiles.Resolve(Root, "/up/secret"));
    }

    [Fact]
    public void A_symlink_loop_is_refused()
    {
        File.CreateSymbolicLink(Path.Combine(Root, "a"), "/b");
        File.CreateSymbolicLink(Path.Combine(Root, "b"), "/a");
        var e = Assert.Throws<NacelleException>(() => RootfsFiles.ReadText(Root, "/a"));
        Assert.Contains("too many levels", e.Message);
    }
}
