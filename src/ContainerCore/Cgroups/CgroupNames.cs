using Nacelle.ContainerCore.Cgroups.Systemd;

namespace Nacelle.ContainerCore.Cgroups;

/// <summary>
/// How the daemon names the cgroups it asks a pod's monitor for, under either driver (pure). The pod's parent says
/// which: kubelet sends a path ("/kubepods/besteffort/pod&lt;uid&gt;") under its cgroupfs driver and a slice name
/// ("kubepods-besteffort-pod&lt;uid&gt;.slice") under its systemd driver. A container under a path parent is the directory
/// "&lt;parent&gt;/&lt;id&gt;"; under a slice it is the scope "nacelle-&lt;id&gt;.scope" in that slice (cgroupsPath
/// "&lt;slice&gt;:nacelle:&lt;id&gt;"). pause-init's is "&lt;parent&gt;/nacelle-pause-&lt;pod id prefix&gt;", or the scope
/// "nacelle-pause-&lt;pod id prefix&gt;.scope".
/// </summary>
public static class CgroupNames
{
    /// <summary>True when <paramref name="parent"/> is a systemd slice (the systemd driver).</summary>
    public static bool IsSystemd(string parent) => SystemdUnits.IsSlice(parent);

    /// <summary>The OCI cgroupsPath of container <paramref name="id"/> in a pod whose cgroup parent is <paramref name="parent"/>.</summary>
    public static string Container(string parent, string id) =>
        IsSystemd(parent) ? SystemdUnits.ScopePath(parent, id) : $"{parent.TrimEnd('/')}/{id}";

    /// <summary>The OCI cgroupsPath of a pod's pause-init (<paramref name="podIdPrefix"/>: the first 12 hex digits of its id).</summary>
    public static string Pause(string parent, string podIdPrefix) =>
        IsSystemd(parent) ? SystemdUnits.ScopePath(parent, $"pause-{podIdPrefix}") : $"{parent.TrimEnd('/')}/nacelle-pause-{podIdPrefix}";

    /// <summary>A pod's own parent when kubelet names none: "&lt;default&gt;/pod-&lt;prefix&gt;", or the slice
    /// "&lt;default without .slice&gt;-pod&lt;prefix&gt;.slice" when the default parent is a slice.</summary>
    public static string OwnPod(string defaultParent, string podIdPrefix) =>
        IsSystemd(defaultParent) ? SystemdUnits.ChildSlice(defaultParent, $"pod{podIdPrefix}") : $"{defaultParent.TrimEnd('/')}/pod-{podIdPrefix}";

    /// <summary>The path in the hierarchy of a cgroupsPath or parent as named above.</summary>
    public static string PathOf(string cgroup) => SystemdUnits.ToHierarchyPath(cgroup);

    /// <summary>The globs of every unit the systemd driver names: scopes (containers', pause-init's) and pods' own slices.</summary>
    public static IReadOnlyList<string> UnitPatterns { get; } = [SystemdUnits.ScopePrefix + "-*.scope", SystemdUnits.DefaultSlice[..^".slice".Length] + "-pod*.slice"];

    /// <summary>
    /// Whose a unit of the systemd driver is: (Pod, id prefix) for pause-init's scope and a pod's own slice,
    /// (Container, id) for a container's scope, (None, "") for a name nacelle does not give.
    /// </summary>
    public static (CgroupOwner Owner, string Id) OwnerOf(string unit)
    {
        ArgumentNullException.ThrowIfNull(unit);
        var scopePrefix = SystemdUnits.ScopePrefix + "-";
        var slicePrefix = SystemdUnits.DefaultSlice[..^".slice".Length] + "-pod";
        if (unit.StartsWith(scopePrefix + "pause-", StringComparison.Ordinal) && unit.EndsWith(".scope", StringComparison.Ordinal))
        {
            var prefix = unit[(scopePrefix.Length + "pause-".Length)..^".scope".Length];
            return IsIdPrefix(prefix) ? (CgroupOwner.Pod, prefix) : (CgroupOwner.None, "");
        }

        if (unit.StartsWith(slicePrefix, StringComparison.Ordinal) && unit.EndsWith(".slice", StringComparison.Ordinal))
        {
            var prefix = unit[slicePrefix.Length..^".slice".Length];
            return IsIdPrefix(prefix) ? (CgroupOwner.Pod, prefix) : (CgroupOwner.None, "");
        }

        var id = unit.EndsWith(".scope", StringComparison.Ordinal) ? ContainerIdOf(unit) : unit;
        return id.Length == 64 && IsHex(id) ? (CgroupOwner.Container, id) : (CgroupOwner.None, "");

        static bool IsIdPrefix(string s) => s.Length == 12 && IsHex(s);
        static bool IsHex(string s) => s.All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f'));
    }

    /// <summary>The container id a cgroup directory's name stands for: "&lt;id&gt;" or "nacelle-&lt;id&gt;.scope".</summary>
    public static string ContainerIdOf(string directoryName) =>
        directoryName.StartsWith(SystemdUnits.ScopePrefix + "-", StringComparison.Ordinal) && directoryName.EndsWith(".scope", StringComparison.Ordinal)
            ? directoryName[(SystemdUnits.ScopePrefix.Length + 1)..^".scope".Length]
            : directoryName;
}

/// <summary>What a unit of the systemd driver belongs to (<see cref="CgroupNames.OwnerOf"/>).</summary>
public enum CgroupOwner
{
    None,
    Pod,
    Container,
}
