using Nacelle.ContainerCore.Mounts;

namespace Nacelle.Tests.Unit.ContainerCore.Mounts;

/// <summary>/proc/self/mountinfo lines -> mount id, mount point and propagation.</summary>
public sealed class MountTableTests
{
    [Fact]
    public void Optional_fields_give_the_propagation_and_escapes_are_decoded()
    {
        const string text = """
            27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
            56 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw
            70 48 0:40 / /tmp/a\040b rw,relatime master:2 - tmpfs tmpfs rw
            71 48 0:41 / /tmp/both rw,relatime shared:3 master:2 - tmpfs tmpfs rw
            garbage
            """;
        var entries = MountTable.Parse(text);
        Assert.Equal(4, entries.Count);
        Assert.Equal(new MountEntry(27, "/", false, false), entries[0]);
        Assert.Equal(new MountEntry(56, "/run/netns", true, false), entries[1]);
        Assert.Equal(new MountEntry(70, "/tmp/a b", false, true), entries[2]);
        Assert.Equal(new MountEntry(71, "/tmp/both", true, true), entries[3]);
    }

    [Fact]
    public void The_mount_of_a_path_is_found_by_its_mount_id()
    {
        var root = MountTable.MountOf("/");
        Assert.NotNull(root);
        Assert.Equal("/", root.MountPoint);
        Assert.Null(MountTable.MountOf("/nonexistent-" + Guid.NewGuid().ToString("N")));
    }
}
