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

    private static void Notes(SecurityRequest sc, List<string> notes)
    {
        if (sc.Apparmor is { } apparmor && apparmor.ProfileType != SecurityProfileType.Unconfined)
        {
            var what = string.IsNullOrEmpty(apparmor.LocalhostRef) ? $"{apparmor.ProfileType}" : $"{apparmor.ProfileType} '{apparmor.LocalhostRef}'";
            notes.Add($"{Sc}.apparmor: {what} ignored: nacelle does not apply AppArmor profiles");
        }
        else
        {
            // apparmor_profile is deprecated, and still sent by older kubelets.
            var legacy = sc.ApparmorProfile;
            if (!string.IsNullOrEmpty(legacy) && legacy != "unconfined")
            {
                notes.Add($"{Sc}.apparmor_profile: '{legacy}' ignored: nacelle does not apply AppArmor profiles");
            }
        }

        if (sc.SelinuxOptions is { } selinux && (selinux.User.Length + selinux.Role.Length + selinux.Type.Length + selinux.Level.Length) > 0)
        {
            notes.Add($"{Sc}.selinux_options ignored: nacelle does not apply SELinux labels");
        }
    }
}
