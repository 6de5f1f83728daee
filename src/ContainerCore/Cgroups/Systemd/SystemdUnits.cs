using System.Text.RegularExpressions;
using Nacelle.Common;

namespace Nacelle.ContainerCore.Cgroups.Systemd;

/// <summary>A container's transient scope: the unit name and the slice it runs in.</summary>
public sealed record SystemdScope(string Unit, string Slice);

/// <summary>
/// The names of the systemd cgroup driver and how they map to paths in the cgroup hierarchy (pure). A slice name says
/// its ancestry with dashes: "kubepods-besteffort-pod123.slice" is "/kubepods.slice/kubepods-besteffort.slice/
/// kubepods-besteffort-pod123.slice" (systemd.slice(5)), which is what kubelet sends as a pod's cgroup_parent under its
/// systemd driver. A container's OCI cgroupsPath takes the form "slice:prefix:name" (as runc's systemd driver does),
/// naming the scope "prefix-name.scope" in that slice; nacelle's prefix is "nacelle", so a container's scope is
/// "nacelle-&lt;container id&gt;.scope" (containerd's is "cri-containerd-&lt;id&gt;.scope", CRI-O's "crio-&lt;id&gt;.scope").
/// </summary>
public static partial class SystemdUnits
{
    /// <summary>The prefix of nacelle's scopes.</summary>
    public const string ScopePrefix = "nacelle";

    /// <summary>The slice nacelle's own pod slices go in when kubelet names no parent.</summary>
    public const string DefaultSlice = "nacelle.slice";

    // Unit name characters (systemd.unit(5)): ASCII letters, digits, ":", "-", "_", ".", "\"; no ':' here, it separates
    // the parts of a cgroupsPath.
    [GeneratedRegex(@"^[A-Za-z0-9_.\\-]+$")]
    private static partial Regex NameCharacters();

    /// <summary>True for a slice unit name as kubelet's systemd driver sends it ("kubepods-burstable-pod1.slice").</summary>
    public static bool IsSlice(string? name) =>
        name is { Length: > 6 } && name.EndsWith(".slice", StringComparison.Ordinal) && !name.Contains('/') && NameCharacters().IsMatch(name);

    /// <summary>True for an OCI cgroupsPath in the systemd driver's form "slice:prefix:name".</summary>
    public static bool IsScopePath(string? cgroupsPath) => cgroupsPath is not null && !cgroupsPath.StartsWith('/') && cgroupsPath.Count(c => c == ':') == 2;

    /// <summary>The path of a slice in the hierarchy: each dash-separated prefix is an ancestor slice; "-.slice" is the root.</summary>
    public static string SlicePath(string slice)
    {
        if (slice == "-.slice")
        {
            return "/";
        }

        if (!IsSlice(slice))
        {
            throw NacelleException.InvalidArgument($"cgroup parent \"{slice}\" is not a systemd slice name (such as kubepods-besteffort-pod<uid>.slice)");
        }

        var stem = slice[..^".slice".Length];
        if (stem.StartsWith('-') || stem.EndsWith('-') || stem.Contains("--", StringComparison.Ordinal))
        {
            throw NacelleException.InvalidArgument($"slice \"{slice}\": a dash may not start or end its name, nor follow another");
        }

        var parts = stem.Split('-');
        var path = new System.Text.StringBuilder();
        for (var i = 1; i <= parts.Length; i++)
        {
            path.Append('/').Append(string.Join('-', parts[..i])).Append(".slice");
        }

        return path.ToString();
    }

    /// <summary>The cgroupsPath of container <paramref name="name"/> in <paramref name="slice"/>: "slice:nacelle:name".</summary>
    public static string ScopePath(string slice, string name) => $"{slice}:{ScopePrefix}:{name}";

    /// <summary>A pod slice of nacelle's own, under <paramref name="parent"/>: "nacelle.slice" gives "nacelle-pod&lt;name&gt;.slice".</summary>
    public static string ChildSlice(string parent, string name)
    {
        _ = SlicePath(parent);
        if (name.Contains('-') || !NameCharacters().IsMatch(name))
        {
            throw NacelleException.InvalidArgument($"slice name part \"{name}\" may hold letters, digits, '_' and '.', no dash");
        }

        return parent == "-.slice" ? $"{name}.slice" : $"{parent[..^".slice".Length]}-{name}.slice";
    }

    /// <summary>Parses "slice:prefix:name" into the scope's unit and slice.</summary>
    public static SystemdScope ParseScopePath(string cgroupsPath)
    {
        var parts = cgroupsPath.Split(':');
        if (parts.Length != 3 || parts[1].Length == 0 || parts[2].Length == 0 || !NameCharacters().IsMatch(parts[1]) || !NameCharacters().IsMatch(parts[2]))
        {
            throw NacelleException.InvalidArgument($"cgroupsPath \"{cgroupsPath}\" is not of the systemd form slice:prefix:name");
        }

        var slice = parts[0].Length == 0 ? "-.slice" : parts[0];
        _ = SlicePath(slice);
        return new SystemdScope($"{parts[1]}-{parts[2]}.scope", slice);
    }

    /// <summary>The path of a scope in the hierarchy: its slice's path, then the unit name.</summary>
    public static string PathOf(SystemdScope scope) => SlicePath(scope.Slice).TrimEnd('/') + "/" + scope.Unit;

    /// <summary>
    /// A cgroup as a caller may name it, as a path in the hierarchy: a slice name is expanded, "slice:prefix:name" becomes
    /// its scope's path, anything else is taken as a path already.
    /// </summary>
    public static string ToHierarchyPath(string cgroup) =>
        IsSlice(cgroup) ? SlicePath(cgroup) : IsScopePath(cgroup) ? PathOf(ParseScopePath(cgroup)) : cgroup;
}
