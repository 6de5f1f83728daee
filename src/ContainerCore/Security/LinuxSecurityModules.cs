namespace Nacelle.ContainerCore.Security;

/// <summary>
/// Which Linux security modules this host enforces, read once from the kernel's own files: AppArmor
/// (<c>/sys/module/apparmor/parameters/enabled</c> says Y and securityfs shows its policy directory) and SELinux
/// (selinuxfs is mounted). A container asking for a module the host lacks is refused, never run without it.
/// </summary>
public sealed record LinuxSecurityModules(bool AppArmor, bool SELinux)
{
    public const string AppArmorEnabledPath = "/sys/module/apparmor/parameters/enabled";
    public const string AppArmorPolicyPath = "/sys/kernel/security/apparmor";
    public const string SELinuxEnforcePath = "/sys/fs/selinux/enforce";

    /// <summary>Neither module: what tests and hosts without an LSM see.</summary>
    public static LinuxSecurityModules None { get; } = new(false, false);

    private static readonly Lazy<LinuxSecurityModules> Host = new(Read);

    /// <summary>This host's modules (read once per process).</summary>
    public static LinuxSecurityModules Detect() => Host.Value;

    private static LinuxSecurityModules Read()
    {
        var appArmor = File.Exists(AppArmorEnabledPath) && File.ReadAllText(AppArmorEnabledPath).Trim() == "Y"
            && Directory.Exists(AppArmorPolicyPath);
        return new LinuxSecurityModules(appArmor, File.Exists(SELinuxEnforcePath));
    }

    /// <summary>
    /// Whether the AppArmor profile <paramref name="name"/> is loaded in the kernel (a line "name (mode)" of
    /// securityfs' profiles list). False on a host without AppArmor.
    /// </summary>
    public static bool IsAppArmorProfileLoaded(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var list = Path.Combine(AppArmorPolicyPath, "profiles");
        if (!File.Exists(list))
        {
            return false;
        }

        foreach (var line in File.ReadLines(list))
        {
            var open = line.LastIndexOf(" (", StringComparison.Ordinal);
            if ((open >= 0 ? line[..open] : line) == name)
            {
                return true;
            }
        }

        return false;
    }
}
