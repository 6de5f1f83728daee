using Nacelle.CriServer.Services.Containers;
using Nacelle.Sandbox.Containers.Spec;
using Runtime.V1;
using static Nacelle.Tests.Unit.Containers.SpecBuilder.Fx;

namespace Nacelle.Tests.Unit.Containers.SpecBuilder;

public sealed class UserTranslationTests
{
    // Image User forms, Merge policy (default): additional gids = primary, then /etc/group memberships.
    [Theory]
    [InlineData(null, 0u, 0u, "0|29")] // root is a member of audio
    [InlineData("app", 1000u, 1000u, "1000|50|44")]
    [InlineData("1000", 1000u, 1000u, "1000|50|44")] // numeric uid with a passwd entry takes its gid and groups
    [InlineData("4242", 4242u, 0u, "0")] // numeric uid without a passwd entry: gid 0
    [InlineData("app:staff", 1000u, 50u, "50|44")]
    [InlineData("app:4000", 1000u, 4000u, "4000|50|44")]
    [InlineData("1000:4000", 1000u, 4000u, "4000|50|44")]
    [InlineData("4242:4343", 4242u, 4343u, "4343")]
    [InlineData("daemon", 1u, 1u, "1")]
    public void ImageUserForms(string? imageUser, uint uid, uint gid, string groups)
    {
        var spec = Spec(Config(), Image(user: imageUser));
        Assert.Equal(uid, spec.Process!.User.Uid);
        Assert.Equal(gid, spec.Process.User.Gid);
        Assert.Equal(groups.Split('|').Select(uint.Parse), spec.Process.User.AdditionalGids);
    }

    [Fact]
    public void RunAsUserOverridesTheImageUser()
    {
        var spec = Spec(Config(s => s.RunAsUser = new Int64Value { Value = 65534 }), Image(user: "app"));
        Assert.Equal((65534u, 65534u), (spec.Process!.User.Uid, spec.Process.User.Gid));
    }

    [Fact]
    public void RunAsGroupOverridesThePrimaryGroup()
    {
        var spec = Spec(Config(s =>
        {
            s.RunAsUser = new Int64Value { Value = 1000 };
            s.RunAsGroup = new Int64Value { Value = 3000 };
        }));
        Assert.Equal((1000u, 3000u), (spec.Process!.User.Uid, spec.Process.User.Gid));
        Assert.Equal(3000u, spec.Process.User.AdditionalGids[0]);
    }

    [Fact]
    public void RunAsUsernameIsResolvedInTheImage()
    {
        var result = Translate(Config(s => s.RunAsUsername = "app"), Image(user: "root"));
        Assert.Equal((1000u, 1000u), (result.User.Uid, result.User.Gid));
        Assert.Equal("app", result.User.Name);
        Assert.Equal(result.User.Uid, result.Spec.Process!.User.Uid);
    }

    [Fact]
    public void UnresolvableUsersAreRefusedNamingTheField()
    {
        Refused(() => Spec(Config(s => s.RunAsUsername = "ghost")), "run_as_username", "ghost");
        Refused(() => Spec(Config(), Image(user: "ghost")), "image config User", "ghost");
        Refused(() => Spec(Config(), Image(user: "app:nogroup-here")), "image config User", "nogroup-here");
        Refused(() => Spec(Config(s => s.RunAsGroup = new Int64Value { Value = 5 })), "run_as_group");
        Refused(() => Spec(Config(s => s.RunAsUser = new Int64Value { Value = -1 })), "run_as_user");
        Refused(() => Spec(Config(s => s.RunAsUser = new Int64Value { Value = 4294967295 })), "run_as_user");
        Refused(() => Spec(Config(s => s.SupplementalGroups.Add(-3))), "supplemental_groups[0]");

        var noPasswd = Context() with { ImagePasswd = null, ImageGroup = null };
        Refused(() => Spec(Config(), Image(user: "app"), noPasswd), "image config User", "no /etc/passwd");
    }

    [Fact]
    public void NumericUsersNeedNoPasswd()
    {
        var noPasswd = Context() with { ImagePasswd = null, ImageGroup = null };
        var spec = Spec(Config(), Image(user: "1234:5678"), noPasswd);
        Assert.Equal((1234u, 5678u), (spec.Process!.User.Uid, spec.Process.User.Gid));
        Assert.Equal([5678u], spec.Process.User.AdditionalGids);
    }

    [Fact]
    public void MergeAddsTheImageGroupsAndTheSupplementalOnes()
    {
        var spec = Spec(Config(s =>
        {
            s.RunAsUser = new Int64Value { Value = 1000 };
            s.SupplementalGroups.Add(2000);
            s.SupplementalGroups.Add(44); // already from /etc/group: not repeated
            s.SupplementalGroupsPolicy = SupplementalGroupsPolicy.Merge;
        }));
        Assert.Equal([1000u, 50u, 44u, 2000u], spec.Process!.User.AdditionalGids);
    }

    [Fact]
    public void StrictUsesOnlyThePrimaryAndTheListedGroups()
    {
        var spec = Spec(Config(s =>
        {
            s.RunAsUser = new Int64Value { Value = 1000 };
            s.SupplementalGroups.Add(2000);
            s.SupplementalGroupsPolicy = SupplementalGroupsPolicy.Strict;
        }));
        Assert.Equal([1000u, 2000u], spec.Process!.User.AdditionalGids);
    }

    [Fact]
    public void PasswdAndGroupParsingSkipsJunk()
    {
        var users = ImageUsers.ParsePasswd("a:x:1:2:g:/h:/s\n\n#c\nbad\nb:x:notnum:2::/:\nc:x:3:4\r\n");
        Assert.Equal(["a", "c"], users.Select(u => u.Name));
        Assert.Equal("/h", users[0].Home);
        var groups = ImageUsers.ParseGroup("g:x:10:a, b,\nh:x:zz:\ni:x:11\n");
        Assert.Equal(["g", "i"], groups.Select(g => g.Name));
        Assert.Equal(["a", "b"], groups[0].Members);
    }
}
