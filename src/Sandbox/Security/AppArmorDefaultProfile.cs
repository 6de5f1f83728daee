using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Nacelle.ContainerCore.Security;

namespace Nacelle.Sandbox.Security;

/// <summary>
/// nacelle's own AppArmor profile for RuntimeDefault containers, loaded with <c>apparmor_parser</c> on hosts that
/// enforce AppArmor. What it confines, group by group (our own list): no new mounts and no pivot_root (a container
/// gets its mounts from the runtime), no writes to the kernel's tunables in /proc/sys and /sys beyond what is
/// namespaced, no access to the kernel's memory and keys (/proc/kcore, /proc/kmem, /proc/sysrq-trigger...), no
/// ptrace of processes outside the profile, and signals only within it. Everything else is left to the other layers
/// (capabilities, seccomp, namespaces).
/// </summary>
public static class AppArmorDefaultProfile
{
    public const string Name = "nacelle-default";

    /// <summary>The profile text (AppArmor policy language).</summary>
    public static string Text { get; } =
        $$"""
        #include <tunables/global>

        profile {{Name}} flags=(attach_disconnected,mediate_deleted) {
          #include <abstractions/base>

          # ordinary programs: the other layers (capabilities, seccomp, namespaces) decide the rest
          network,
          capability,
          file,
          umount,

          # signals and ptrace stay inside containers confined by this profile
          signal (receive) peer=unconfined,
          signal (send,receive) peer={{Name}},
          ptrace (trace,read,tracedby,readby) peer={{Name}},

          # mounts are the runtime's business
          deny mount,
          deny pivot_root,

          # /proc/sys: only settings the kernel keeps per namespace (net/, kernel/shm*, msg*, sem) stay writable
          deny @{PROC}/sys/{abi,crypto,debug,dev,fs,user,vm}/** w,
          deny @{PROC}/sys/kernel/{core_*,hostname,domainname,modprobe,kexec_*,sysrq,panic*,printk*,randomize_va_space} w,
          deny @{PROC}/sys/kernel/{sched_*,yama/**,keys/**,perf_*,bpf_*,unprivileged_*,hung_task_*,watchdog*} w,

          # the kernel's memory, keys and triggers
          deny @{PROC}/{kcore,kmem,kallsyms,timer_list,keys,sysrq-trigger} rwklx,

          # /sys is read-only to containers, its firmware and security trees not even readable
          deny /sys/** wklx,
          deny /sys/firmware/** r,
          deny /sys/kernel/security/** r,
        }
        """;

    private static readonly string[] Parsers = ["/sbin/apparmor_parser", "/usr/sbin/apparmor_parser"];

    /// <summary>
    /// Makes sure the profile is loaded on a host that enforces AppArmor: already loaded, or loaded now with
    /// <c>apparmor_parser -Kr</c> from a file under <paramref name="stateDirectory"/>. Returns the profile's name, or the
    /// reason it cannot be used (RuntimeDefault is then refused rather than run unconfined); null name and reason on a
    /// host without AppArmor.
    /// </summary>
    public static (string? Profile, string? Unavailable) Ensure(LinuxSecurityModules modules, string stateDirectory, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(modules);
        if (!modules.AppArmor)
        {
            return (null, null);
        }

        if (LinuxSecurityModules.IsAppArmorProfileLoaded(Name))
        {
            return (Name, null);
        }

        var parser = Parsers.FirstOrDefault(File.Exists);
        if (parser is null)
        {
            return (null, "apparmor_parser is not installed (Debian: apparmor), so nacelle's default AppArmor profile cannot be loaded");
        }

        var file = Path.Combine(stateDirectory, Name + ".apparmor");
        File.WriteAllText(file, Text);
        var info = new ProcessStartInfo(parser) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var argument in new[] { "-Kr", file })
        {
            info.ArgumentList.Add(argument);
        }

        using var process = Process.Start(info)!;
        var error = process.StandardError.ReadToEnd();
        process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            return (null, $"apparmor_parser could not load nacelle's default profile ({process.ExitCode}): {error.Trim()}");
        }

        SecurityLog.AppArmorProfileLoaded(logger, Name, parser);
        return (Name, null);
    }
}

internal static partial class SecurityLog
{
    [LoggerMessage(5320, LogLevel.Information, "Loaded the AppArmor profile {Profile} with {Parser}")]
    public static partial void AppArmorProfileLoaded(ILogger logger, string profile, string parser);
}
