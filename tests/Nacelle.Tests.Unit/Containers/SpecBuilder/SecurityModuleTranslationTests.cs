using Nacelle.Common;
using Nacelle.ContainerCore.Security;
using Nacelle.Sandbox.Containers.Spec;
using Runtime.V1;
using static Nacelle.Tests.Unit.Containers.SpecBuilder.Fx;

namespace Nacelle.Tests.Unit.Containers.SpecBuilder;

/// <summary>
/// AppArmor and SELinux are never silently dropped (the translator once returned them as notes that nobody read): applied
/// where the node enforces the module, refused naming the field where it does not, and only RuntimeDefault AppArmor
/// on a node without AppArmor is a note (logged once by the daemon), since there is nothing to apply.
/// </summary>
public sealed class SecurityModuleTranslationTests
{
    private static readonly LinuxSecurityModules Both = new(AppArmor: true, SELinux: true);

    private static ContainerSpecContext WithModules(LinuxSecurityModules modules, params string[] loaded) => Context() with
    {
        SecurityModules = modules,
        AppArmorDefaultProfile = modules.AppArmor ? "nacelle-default" : null,
        AppArmorProfileLoaded = name => loaded.Contains(name),
    };

    private static ContainerConfig AppArmor(SecurityProfile.Types.ProfileType type, string name = "") =>
        Config(s => s.Apparmor = new SecurityProfile { ProfileType = type, LocalhostRef = name });

    [Fact]
    public void Without_AppArmor_a_Localhost_profile_is_refused_naming_it()
    {
        Refused(ErrorKind.FailedPrecondition, () => Spec(AppArmor(SecurityProfile.Types.ProfileType.Localhost, "k8s-nginx"), context: WithModules(LinuxSecurityModules.None)),
            "linux.security_context.apparmor", "'k8s-nginx'", "does not enforce AppArmor");
#pragma warning disable CS0612 // the deprecated field, still sent by older kubelets
        Refused(ErrorKind.FailedPrecondition, () => Spec(Config(s => s.ApparmorProfile = "localhost/k8s-nginx"), context: WithModules(LinuxSecurityModules.None)),
            "apparmor_profile", "'k8s-nginx'");
        Refused(() => Spec(Config(s => s.ApparmorProfile = "docker-default")), "apparmor_profile", "'docker-default'");
#pragma warning restore CS0612
    }

    [Fact]
    public void Without_AppArmor_RuntimeDefault_is_a_note_and_nothing_asked_is_nothing()
    {
        var asked = Translate(AppArmor(SecurityProfile.Types.ProfileType.RuntimeDefault), context: WithModules(LinuxSecurityModules.None));
        Assert.Null(asked.Spec.Process!.ApparmorProfile);
        Assert.Equal([ContainerSpecBuilder.NoAppArmorNote], asked.Notes);

        var nothing = Translate(context: WithModules(LinuxSecurityModules.None));
        Assert.Null(nothing.Spec.Process!.ApparmorProfile);
        Assert.Empty(nothing.Notes);
    }

    [Fact]
    public void With_AppArmor_RuntimeDefault_and_nothing_asked_get_nacelles_profile_privileged_and_unconfined_none()
    {
        var context = WithModules(Both);
        Assert.Equal("nacelle-default", Spec(AppArmor(SecurityProfile.Types.ProfileType.RuntimeDefault), context: context).Process!.ApparmorProfile);
        Assert.Equal("nacelle-default", Spec(context: context).Process!.ApparmorProfile);
        Assert.Null(Spec(AppArmor(SecurityProfile.Types.ProfileType.Unconfined), context: context).Process!.ApparmorProfile);
        Assert.Null(Spec(Config(s => s.Privileged = true), sandbox: PodConfig(privileged: true), context: context).Process!.ApparmorProfile);
    }

    [Fact]
    public void With_AppArmor_a_Localhost_profile_must_be_loaded_and_a_missing_default_is_refused_with_its_reason()
    {
        var context = WithModules(Both, "k8s-nginx");
        Assert.Equal("k8s-nginx", Spec(AppArmor(SecurityProfile.Types.ProfileType.Localhost, "k8s-nginx"), context: context).Process!.ApparmorProfile);
        Refused(ErrorKind.FailedPrecondition, () => Spec(AppArmor(SecurityProfile.Types.ProfileType.Localhost, "other"), context: context),
            "'other' is not loaded on this node");
        Refused(() => Spec(AppArmor(SecurityProfile.Types.ProfileType.Localhost, "two words"), context: context), "not an AppArmor profile name");
        var noParser = context with { AppArmorDefaultProfile = null, AppArmorDefaultUnavailable = "apparmor_parser is not installed" };
        Refused(ErrorKind.FailedPrecondition, () => Spec(AppArmor(SecurityProfile.Types.ProfileType.RuntimeDefault), context: noParser),
            "apparmor_parser is not installed");
    }

    [Fact]
    public void Selinux_options_are_refused_without_SELinux_and_become_labels_with_it()
    {
        var levelOnly = Config(s => s.SelinuxOptions = new SELinuxOption { Level = "s0:c1,c2" });
        Refused(ErrorKind.FailedPrecondition, () => Spec(levelOnly, context: WithModules(LinuxSecurityModules.None)),
            "linux.security_context.selinux_options", "does not enforce SELinux");

        var spec = Spec(levelOnly, context: WithModules(Both));
        Assert.Equal("system_u:system_r:container_t:s0:c1,c2", spec.Process!.SelinuxLabel);
        Assert.Equal("system_u:object_r:container_file_t:s0:c1,c2", spec.Linux!.MountLabel);

        var typed = Spec(Config(s => s.SelinuxOptions = new SELinuxOption { Type = "spc_t", Level = "s0" }), context: WithModules(Both));
        Assert.Equal("system_u:system_r:spc_t:s0", typed.Process!.SelinuxLabel);
        Assert.Equal("system_u:object_r:container_file_t:s0", typed.Linux!.MountLabel);

        Assert.Null(Spec(context: WithModules(Both)).Process!.SelinuxLabel);
    }
}
