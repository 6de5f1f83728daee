using Nacelle.Common;
using Nacelle.ContainerCore.Security;
using Nacelle.ContainerCore.Spec;

namespace Nacelle.Tests.Unit.ContainerCore.Security;

public sealed class CapabilitiesTests
{
    [Theory]
    [InlineData("CAP_CHOWN", 0)]
    [InlineData("chown", 0)]
    [InlineData("CHOWN", 0)]
    [InlineData("cap_net_raw", 13)]
    [InlineData("SYS_ADMIN", 21)]
    [InlineData("CAP_MKNOD", 27)]
    [InlineData("AUDIT_WRITE", 29)]
    [InlineData("CAP_SETFCAP", 31)]
    [InlineData("CAP_AUDIT_READ", 37)]
    [InlineData("PERFMON", 38)]
    [InlineData("CAP_BPF", 39)]
    [InlineData("CHECKPOINT_RESTORE", 40)]
    public void Names_parse_with_or_without_prefix(string name, int expected)
    {
        Assert.Equal(expected, Capabilities.Parse(name));
    }

    [Fact]
    public void The_table_covers_0_to_40_in_order()
    {
        Assert.Equal(41, Capabilities.Names.Count);
        Assert.Equal("CAP_CHOWN", Capabilities.Names[0]);
        Assert.Equal("CAP_SETPCAP", Capabilities.Names[8]);
        Assert.Equal("CAP_NET_BIND_SERVICE", Capabilities.Names[10]);
        Assert.Equal("CAP_SYS_CHROOT", Capabilities.Names[18]);
        Assert.Equal("CAP_SYS_TIME", Capabilities.Names[25]);
        Assert.Equal("CAP_MAC_ADMIN", Capabilities.Names[33]);
        Assert.Equal("CAP_CHECKPOINT_RESTORE", Capabilities.Names[40]);
        Assert.Equal(Capabilities.Names.Count, Capabilities.Names.Distinct().Count());
    }

    [Fact]
    public void Unknown_names_are_refused_naming_them()
    {
        var one = Assert.Throws<NacelleException>(() => Capabilities.Parse("CAP_TELEPORT"));
        Assert.Equal(ErrorKind.InvalidArgument, one.Kind);
        Assert.Contains("CAP_TELEPORT", one.Message);

        var many = Assert.Throws<NacelleException>(() => Capabilities.ToMask(["CHOWN", "FLY", "CAP_SWIM"], field: "process.capabilities.bounding"));
        Assert.Contains("\"FLY\"", many.Message);
        Assert.Contains("\"CAP_SWIM\"", many.Message);
        Assert.Contains("process.capabilities.bounding", many.Message);

        Assert.Throws<NacelleException>(() => Capabilities.ResolveCri(["NET_ADMIN", "WARP"], null));
        Assert.Throws<NacelleException>(() => Capabilities.ResolveCri(null, ["WARP"]));
    }

    [Fact]
    public void Masks_set_one_bit_per_capability()
    {
        Assert.Equal(0UL, Capabilities.ToMask([]));
        Assert.Equal((1UL << 0) | (1UL << 21) | (1UL << 40), Capabilities.ToMask(["CAP_CHOWN", "sys_admin", "CHECKPOINT_RESTORE", "chown"]));
        Assert.Equal(["CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_CHECKPOINT_RESTORE"], Capabilities.ToNames(Capabilities.ToMask(["CHECKPOINT_RESTORE", "SYS_ADMIN", "CHOWN"])));
    }

    [Fact]
    public void The_default_list_is_the_usual_fourteen()
    {
        // chown 0, dac_override 1, fowner 3, fsetid 4, kill 5, setgid 6, setuid 7, setpcap 8, net_bind_service 10,
        // net_raw 13, sys_chroot 18, mknod 27, audit_write 29, setfcap 31
        const ulong expected = (1UL << 0) | (1UL << 1) | (1UL << 3) | (1UL << 4) | (1UL << 5) | (1UL << 6) | (1UL << 7)
            | (1UL << 8) | (1UL << 10) | (1UL << 13) | (1UL << 18) | (1UL << 27) | (1UL << 29) | (1UL << 31);
        Assert.Equal(14, Capabilities.DefaultNames.Count);
        Assert.Equal(expected, Capabilities.ToMask(Capabilities.DefaultNames));
        Assert.Equal(expected, Capabilities.ResolveCri(null, null));
        Assert.Equal(0x00000000A80425FBUL, expected);
    }

    [Fact]
    public void Cri_add_and_drop_follow_the_all_rules()
    {
        var defaults = Capabilities.ToMask(Capabilities.DefaultNames);
        var all = Capabilities.MaskUpTo(40);

        Assert.Equal(defaults | (1UL << 12), Capabilities.ResolveCri(["NET_ADMIN"], null));
        Assert.Equal(defaults & ~(1UL << 13), Capabilities.ResolveCri(null, ["CAP_NET_RAW"]));
        Assert.Equal(all, Capabilities.ResolveCri(["ALL"], null));
        Assert.Equal(all & ~(1UL << 21), Capabilities.ResolveCri(["ALL"], ["SYS_ADMIN"]));
        Assert.Equal(0UL, Capabilities.ResolveCri(null, ["ALL"]));
        Assert.Equal((1UL << 10) | (1UL << 6), Capabilities.ResolveCri(["NET_BIND_SERVICE", "setgid"], ["all"]));
        Assert.Equal(1UL << 10, Capabilities.ResolveCri(["ALL", "NET_BIND_SERVICE"], ["ALL"]));
        // A capability both added and dropped is dropped.
        Assert.Equal(defaults, Capabilities.ResolveCri(["SYS_ADMIN"], ["SYS_ADMIN"]));
        // ALL means what the kernel has.
        Assert.Equal(Capabilities.MaskUpTo(37), Capabilities.ResolveCri(["ALL"], null, lastCap: 37));
    }

    [Fact]
    public void Masks_never_include_capabilities_beyond_cap_last_cap()
    {
        Assert.Equal(0x1FF_FFFF_FFFFUL, Capabilities.MaskUpTo(40));
        Assert.Equal(0x3F_FFFF_FFFFUL, Capabilities.MaskUpTo(37));
        Assert.Equal(1UL, Capabilities.MaskUpTo(0));
        Assert.Equal(ulong.MaxValue, Capabilities.MaskUpTo(63));

        Assert.Equal(1UL << 21, Capabilities.ToMask(["SYS_ADMIN", "PERFMON", "BPF", "CHECKPOINT_RESTORE"], lastCap: 37));
        Assert.Equal(0UL, Capabilities.ResolveCri(["BPF"], ["ALL"], lastCap: 38));

        var sets = Capabilities.FromSpec(
            new SpecCapabilities
            {
                Bounding = ["CAP_CHOWN", "CAP_BPF"],
                Effective = ["CAP_CHOWN"],
                Inheritable = [],
                Permitted = ["CAP_CHOWN", "CAP_KILL"],
                Ambient = ["CAP_KILL", "CAP_PERFMON"],
            },
            lastCap: 38);
        Assert.Equal(new CapabilitySets(1UL, 1UL, 0UL, (1UL << 0) | (1UL << 5), (1UL << 5) | (1UL << 38)), sets);
        Assert.Equal(default, Capabilities.FromSpec(null, 40));
    }

    [Fact]
    public void Container_sets_put_the_mask_in_bounding_effective_permitted()
    {
        Assert.Equal(new CapabilitySets(0x25UL, 0x25UL, 0UL, 0x25UL, 0UL), Capabilities.ForContainer(0x25));
    }

    [Fact]
    public void Cap_last_cap_is_read_and_parsed()
    {
        var dir = Directory.CreateTempSubdirectory("nacelle-caps-");
        try
        {
            var path = Path.Combine(dir.FullName, "cap_last_cap");
            File.WriteAllText(path, "38\n");
            Assert.Equal(38, Capabilities.ReadHostLastCap(path));
            File.WriteAllText(path, "banana\n");
            Assert.Equal(ErrorKind.Internal, Assert.Throws<NacelleException>(() => Capabilities.ReadHostLastCap(path)).Kind);
            Assert.Equal(Capabilities.LastKnown, Capabilities.ReadHostLastCap(Path.Combine(dir.FullName, "missing")));
        }
        finally
        {
            dir.Delete(recursive: true);
        }

        Assert.Equal(40, Capabilities.ParseLastCap("40\n"));
        Assert.Throws<NacelleException>(() => Capabilities.ParseLastCap("-1"));
        Assert.Throws<NacelleException>(() => Capabilities.ParseLastCap("64"));
        // The real host: a sane number (every supported kernel has at least CAP_AUDIT_READ).
        Assert.InRange(Capabilities.ReadHostLastCap(), 37, 63);
    }
}
