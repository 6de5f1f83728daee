using Nacelle.Common;

namespace Nacelle.ContainerCore.Cgroups;

/// <summary>
/// Creates and opens cgroups with the cgroupfs driver, v2 on a unified node and v1 on a legacy or hybrid one (where
/// the cgroup2 mount only holds a twin directory for cgroup.kill). <paramref name="fakeRoot"/> re-roots every mount
/// point (tests build a fake cgroupfs tree there).
/// </summary>
public sealed class CgroupManager
{
    /// <summary>The parent of nacelle's own cgroups when a caller names none.</summary>
    public const string DefaultParent = "/nacelle";

    private readonly IReadOnlyDictionary<string, string> _v1Controllers;
    private readonly string? _unifiedMount;

    public CgroupManager(CgroupLayout layout, string defaultParent = DefaultParent, string? fakeRoot = null)
    {
        ArgumentNullException.ThrowIfNull(layout);
        Layout = layout;
        DefaultParentPath = CgroupFiles.NormalizePath(defaultParent, "parent");
        string Root(string mount) => fakeRoot is null ? mount : fakeRoot.TrimEnd('/') + mount;
        _v1Controllers = layout.V1Controllers.ToDictionary(pair => pair.Key, pair => Root(pair.Value), StringComparer.Ordinal);
        _unifiedMount = layout.UnifiedMount is null ? null : Root(layout.UnifiedMount);
        if (layout.Mode == CgroupMode.None)
        {
            throw NacelleException.FailedPrecondition("no cgroup file system is mounted on this node");
        }
    }

    /// <summary>A manager for this node, from /proc/self/mountinfo.</summary>
    public static CgroupManager Detect(string defaultParent = DefaultParent) => new(CgroupLayout.Detect(), defaultParent);

    public CgroupLayout Layout { get; }

    public string DefaultParentPath { get; }

    /// <summary>True when cgroups are v2 (unified node).</summary>
    public bool IsUnified => Layout.Mode == CgroupMode.Unified;

    /// <summary>
    /// Creates (mkdir -p) the cgroup <paramref name="name"/> under <paramref name="parent"/> (default
    /// <see cref="DefaultParentPath"/>), e.g. name "abc" under kubelet's "/kubepods/besteffort/pod123". The name is
    /// relative and may not contain "." or ".." segments. An existing cgroup is reused.
    /// </summary>
    public ICgroup Create(string name, string? parent = null)
    {
        var cgroup = Open(Combine(name, parent));
        switch (cgroup)
        {
            case V1Cgroup v1:
                v1.Create();
                break;
            case V2Cgroup v2:
                CgroupFiles.CreateDirectories(v2.MountPoint, v2.Path);
                break;
        }

        return cgroup;
    }

    /// <summary>The cgroup at an absolute path in the hierarchy, without creating anything.</summary>
    public ICgroup Open(string path)
    {
        var normalized = CgroupFiles.NormalizePath(path, "path");
        if (normalized == "/")
        {
            throw NacelleException.InvalidArgument("cgroup path \"/\" is the root of the hierarchy, not a cgroup nacelle manages");
        }

        return IsUnified
            ? new V2Cgroup(_unifiedMount!, normalized)
            : new V1Cgroup(_v1Controllers, Layout.Mode == CgroupMode.Hybrid ? _unifiedMount : null, normalized);
    }

    /// <summary>
    /// SIGKILLs every process in the cgroup at <paramref name="path"/> and in every cgroup below it, deepest first, and
    /// waits (bounded) until they are gone. For a pod whose processes outlived their parent (a killed monitor): the
    /// cgroups are the one record of them that no process death can erase.
    /// </summary>
    public async Task KillTreeAsync(string path, CancellationToken cancellationToken = default)
    {
        var cgroup = Open(path);
        foreach (var child in cgroup.ChildPaths())
        {
            await KillTreeAsync(child, cancellationToken).ConfigureAwait(false);
        }

        if (cgroup.Processes().Count > 0)
        {
            await cgroup.KillAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Removes the cgroup at <paramref name="path"/> and every cgroup below it, depth first (rmdir only works on a
    /// cgroup without children). Processes still inside make it fail after the bounded retries: kill them first
    /// (<see cref="KillTreeAsync"/>). Removing what does not exist succeeds.</summary>
    public async Task RemoveTreeAsync(string path, CancellationToken cancellationToken = default)
    {
        var cgroup = Open(path);
        foreach (var child in cgroup.ChildPaths())
        {
            await RemoveTreeAsync(child, cancellationToken).ConfigureAwait(false);
        }

        await cgroup.RemoveAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A cgroup directly in the cgroup2 mount even on a hybrid node (only cgroup.procs/freeze/kill/events work there).</summary>
    public V2Cgroup CreateUnified(string name, string? parent = null)
    {
        if (_unifiedMount is null)
        {
            throw NacelleException.FailedPrecondition("this node has no cgroup2 mount");
        }

        var cgroup = new V2Cgroup(_unifiedMount, Combine(name, parent));
        CgroupFiles.CreateDirectories(cgroup.MountPoint, cgroup.Path);
        return cgroup;
    }

    private string Combine(string name, string? parent)
    {
        if (string.IsNullOrEmpty(name) || name.StartsWith('/'))
        {
            throw NacelleException.InvalidArgument($"cgroup name \"{name}\" must be a relative name");
        }

        var relative = CgroupFiles.NormalizePath(name, "name");
        var parentPath = parent is null ? DefaultParentPath : CgroupFiles.NormalizePath(parent, "parent");
        return parentPath == "/" ? relative : parentPath + relative;
    }
}
