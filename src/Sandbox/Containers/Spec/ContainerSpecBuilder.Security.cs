using System.Text.Json;
using Nacelle.Common;
using Nacelle.ContainerCore.Security;
using Nacelle.ContainerCore.Security.Seccomp;
using Nacelle.ContainerCore.Spec;

namespace Nacelle.Sandbox.Containers.Spec;

/// <summary>The spec's security: capabilities, seccomp (RuntimeDefault, Localhost, Unconfined), masked and read-only paths, and the AppArmor/SELinux settings nacelle does not apply (notes).</summary>
public sealed partial class ContainerSpecBuilder
{
    private static SpecCapabilities CapabilitySet(SecurityRequest sc, bool privileged, int lastCap, ulong? hostCapabilities)
    {
        var host = (hostCapabilities ?? ulong.MaxValue) & Capabilities.MaskUpTo(lastCap);
        if (privileged)
        {
            var all = Capabilities.ToNames(host).ToList();
            return new SpecCapabilities { Bounding = all, Effective = [.. all], Inheritable = [.. all], Permitted = [.. all] };
        }

        var caps = sc.Capabilities;
        var mask = Capabilities.ResolveCri(caps?.Add, caps?.Drop, lastCap);
        if (caps?.Add.Any(c => string.Equals(c.Trim(), "ALL", StringComparison.OrdinalIgnoreCase)) == true)
        {
            // "ALL" means all the runtime has; capabilities named one by one are asked for as they are.
            var named = Capabilities.ResolveCri(caps.Add.Where(c => !string.Equals(c.Trim(), "ALL", StringComparison.OrdinalIgnoreCase)),
                caps.Drop, lastCap);
            mask = (mask & host) | named;
        }
        var ambient = Capabilities.ToMask(caps?.AddAmbient ?? [], lastCap, $"{Sc}.capabilities.add_ambient_capabilities");

        // An ambient capability must also be permitted and inheritable, or the kernel refuses to raise it.
        mask |= ambient;
        var names = Capabilities.ToNames(mask).ToList();
        var ambientNames = Capabilities.ToNames(ambient).ToList();
        return new SpecCapabilities
        {
            Bounding = names,
            Effective = [.. names],
            Permitted = [.. names],
            Inheritable = ambientNames,
            Ambient = [.. ambientNames],
        };
    }

    private JsonElement? Seccomp(SecurityRequest sc, ContainerSpecContext context, IReadOnlyCollection<string> capabilities)
    {
        if (sc.Seccomp is { } profile)
        {
            return profile.ProfileType switch
            {
                SecurityProfileType.RuntimeDefault => RuntimeDefault(context, capabilities, $"{Sc}.seccomp"),
                SecurityProfileType.Unconfined => null,
                SecurityProfileType.Localhost => Localhost(profile.LocalhostRef, $"{Sc}.seccomp.localhost_ref"),
                _ => throw Invalid($"{Sc}.seccomp.profile_type", $"unknown type {(int)profile.ProfileType}"),
            };
        }

        // seccomp_profile_path is deprecated, and still sent by older kubelets.
        var path = sc.SeccompProfilePath;
        const string field = Sc + ".seccomp_profile_path";
        return path switch
        {
            null or "" or "unconfined" => null,
            "runtime/default" or "docker/default" => RuntimeDefault(context, capabilities, field),
            _ when path.StartsWith("localhost/", StringComparison.Ordinal) => Localhost(path["localhost/".Length..], field),
            _ => throw Invalid(field, $"'{path}' is not runtime/default, unconfined or localhost/<path>"),
        };
    }

    /// <summary>The runtime's default profile for a container granted <paramref name="capabilities"/>: its
    /// capability-conditional rules (clone with namespace flags for CAP_SYS_ADMIN, ptrace for CAP_SYS_PTRACE...) follow them.</summary>
    private static JsonElement RuntimeDefault(ContainerSpecContext context, IReadOnlyCollection<string> capabilities, string field)
    {
        if (context.DefaultSeccompProfile is not { } profileFor)
        {
            throw NacelleException.FailedPrecondition($"{field}: RuntimeDefault asked for, but no default seccomp profile is configured");
        }

        try
        {
            using var doc = JsonDocument.Parse(profileFor(capabilities));
            return doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw NacelleException.Internal($"{field}: the default seccomp profile is not valid JSON: {e.Message}", e);
        }
    }

    private JsonElement Localhost(string path, string field)
    {
        if (string.IsNullOrEmpty(path))
        {
            throw Invalid(field, "a Localhost profile needs a path");
        }

        if (!path.StartsWith('/'))
        {
            throw Invalid(field, $"'{path}' must be an absolute path");
        }

        string text;
        try
        {
            text = host.ReadSeccompProfile(path);
        }
        catch (Exception e) when (e is not NacelleException)
        {
            throw new NacelleException(ErrorKind.InvalidArgument, $"{field}: cannot read '{path}': {e.Message}", e);
        }

        try
        {
            _ = SeccompProfile.Parse(text);
            using var doc = JsonDocument.Parse(text);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw Invalid(field, $"'{path}' is not a JSON object");
            }

            return doc.RootElement.Clone();
        }
        catch (NacelleException e)
        {
            throw new NacelleException(ErrorKind.InvalidArgument, $"{field}: '{path}': {e.Message}", e);
        }
        catch (JsonException e)
        {
            throw new NacelleException(ErrorKind.InvalidArgument, $"{field}: '{path}' is not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>
    /// procMount: kubelet sends the runtime's default lists for Default and two empty lists for Unmasked, which proto3
    /// cannot tell from lists never set (older kubelets, crictl). kubelet's API allows Unmasked only with hostUsers: false,
    /// so two empty lists mean Unmasked in a pod of its own user namespace (nothing masked or read-only: /proc is the
    /// kernel's, and what the namespace may not touch it cannot), and runc's defaults anywhere else (the safe reading:
    /// there Unmasked cannot have been asked for). An empty list beside a full one gets the defaults too.
    /// </summary>
    private static (List<string> Masked, List<string> Readonly) MaskedAndReadonlyPaths(SecurityRequest sc, bool ownUserNamespace)
    {
        if (ownUserNamespace && sc.MaskedPaths.Count == 0 && sc.ReadonlyPaths.Count == 0)
        {
            return ([], []);
        }

        return (Paths(sc.MaskedPaths, LinuxDefaults.MaskedPaths, $"{Sc}.masked_paths"),
            Paths(sc.ReadonlyPaths, LinuxDefaults.ReadonlyPaths, $"{Sc}.readonly_paths"));
    }

    /// <summary>An empty list means runc's defaults (see <see cref="MaskedAndReadonlyPaths"/>).</summary>
    private static List<string> Paths(IReadOnlyList<string> requested, IReadOnlyList<string> defaults, string field)
    {
        if (requested.Count == 0)
        {
            return [.. defaults];
        }

        for (var i = 0; i < requested.Count; i++)
        {
            if (!requested[i].StartsWith('/'))
            {
                throw Invalid($"{field}[{i}]", $"'{requested[i]}' must be absolute");
            }
        }

        return [.. requested];
    }

    /// <summary>SELinux's usual container labels (the process type and the file type of its mounts), used for the parts
    /// of selinux_options kubelet leaves out (it often sends only the level).</summary>
    public const string SelinuxProcessDefault = "system_u:system_r:container_t:s0";
    public const string SelinuxFileDefault = "system_u:object_r:container_file_t:s0";

    /// <summary>
    /// AppArmor: RuntimeDefault (also what an unprivileged container gets when nothing is asked, as containerd does) is
    /// nacelle's own profile where the node enforces AppArmor, and noted (logged once) where it does not; a Localhost
    /// profile must be loaded on the node, and is refused naming it where the node has no AppArmor; Unconfined and
    /// privileged containers get none.
    /// </summary>
    private static string? AppArmor(SecurityRequest sc, bool privileged, ContainerSpecContext context, List<string> notes)
    {
        var (type, name, field) = sc.Apparmor is { } profile
            ? (profile.ProfileType, profile.LocalhostRef, $"{Sc}.apparmor")
            : LegacyAppArmor(sc.ApparmorProfile);
        if (privileged || type == SecurityProfileType.Unconfined)
        {
            return null;
        }

        var modules = context.SecurityModules;
        if (type == SecurityProfileType.Localhost)
        {
            if (string.IsNullOrEmpty(name) || name.Any(c => c is '\0' or '\n' or ' '))
            {
                throw Invalid(field, $"'{name}' is not an AppArmor profile name");
            }

            if (!modules.AppArmor)
            {
                throw NacelleException.FailedPrecondition($"{field}: AppArmor profile '{name}' asked for, but this node does not enforce AppArmor");
            }

            return context.AppArmorProfileLoaded(name)
                ? name
                : throw NacelleException.FailedPrecondition($"{field}: AppArmor profile '{name}' is not loaded on this node");
        }

        // RuntimeDefault, asked for or implied.
        if (!modules.AppArmor)
        {
            if (sc.Apparmor is not null || sc.ApparmorProfile.Length > 0)
            {
                notes.Add(NoAppArmorNote);
            }

            return null;
        }

        return context.AppArmorDefaultProfile
            ?? throw NacelleException.FailedPrecondition($"{field}: RuntimeDefault AppArmor cannot be applied: {context.AppArmorDefaultUnavailable}");
    }

    /// <summary>What a RuntimeDefault AppArmor request on a node without AppArmor becomes: a note the daemon logs once.</summary>
    public const string NoAppArmorNote = "AppArmor RuntimeDefault asked for on a node that does not enforce AppArmor: not applied (nothing to apply)";

    /// <summary>The deprecated apparmor_profile string: "" (nothing asked), runtime/default, unconfined or localhost/name.</summary>
    private static (SecurityProfileType Type, string Name, string Field) LegacyAppArmor(string value)
    {
        const string field = Sc + ".apparmor_profile";
        return value switch
        {
            "" or "runtime/default" => (SecurityProfileType.RuntimeDefault, "", field),
            "unconfined" => (SecurityProfileType.Unconfined, "", field),
            _ when value.StartsWith("localhost/", StringComparison.Ordinal) => (SecurityProfileType.Localhost, value["localhost/".Length..], field),
            _ => throw Invalid(field, $"'{value}' is not runtime/default, unconfined or localhost/<profile>"),
        };
    }

    /// <summary>
    /// SELinux: selinux_options become the process label (and the label of the file systems made for the container),
    /// the parts left out taken from the usual container labels, where the node enforces SELinux; refused naming the
    /// field where it does not. Nothing asked: nothing applied.
    /// </summary>
    private static (string? Process, string? Mount) Selinux(SecurityRequest sc, bool privileged, ContainerSpecContext context)
    {
        if (privileged || sc.SelinuxOptions is not { } options || (options.User.Length + options.Role.Length + options.Type.Length + options.Level.Length) == 0)
        {
            return (null, null);
        }

        if (!context.SecurityModules.SELinux)
        {
            throw NacelleException.FailedPrecondition(
                $"{Sc}.selinux_options: {options.User}:{options.Role}:{options.Type}:{options.Level} asked for, but this node does not enforce SELinux");
        }

        static string Label(string defaults, SelinuxOptions asked, bool file)
        {
            var parts = defaults.Split(':', 4);
            return string.Join(':',
                asked.User.Length > 0 ? asked.User : parts[0],
                asked.Role.Length > 0 && !file ? asked.Role : parts[1],
                asked.Type.Length > 0 && !file ? asked.Type : parts[2],
                asked.Level.Length > 0 ? asked.Level : parts[3]);
        }

        return (Label(SelinuxProcessDefault, options, file: false), Label(SelinuxFileDefault, options, file: true));
    }
}
