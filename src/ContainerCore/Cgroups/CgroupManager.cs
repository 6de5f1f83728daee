using Nacelle.Common;
using Nacelle.ContainerCore.Cgroups.Systemd;

namespace Nacelle.ContainerCore.Cgroups;

/// <summary>Where a container's cgroup goes: its path in the hierarchy and, under the systemd driver, its scope.</summary>
public sealed record CgroupPlacement(string Path, SystemdScope? Scope);

/// <summary>
/// Creates and opens cgroups, v2 on a unified node and v1 on a legacy or hybrid one (where the cgroup2 mount only holds
/// a twin directory for cgroup.kill). The driver follows the name a caller gives (<see cref="Place"/>): a path is the
/// cgroupfs driver's (nacelle makes and removes the directories); a cgroupsPath "slice:prefix:name" is the systemd
/// driver's: the directories are made the same way, and the container's process is handed to systemd as a transient
/// scope in that slice (<see cref="StartScopeAsync"/>) before it runs, with its limits as unit properties, so systemd,
/// which owns the tree, keeps them. <paramref name="fakeRoot"/> re-roots every mount point (tests build a fake cgroupfs
/// tree there).
/// </summary>
public sealed class CgroupManager
{
    /// <summary>The parent of nacelle's own cgroups when a caller names none.</summary>
    public const string DefaultParent = "/nacelle";

    private readonly IReadOnlyDictionary<string, string> _v1Controllers;
    private readonly IReadOnlyList<string> _v1Named;
    private readonly string? _unifiedMount;
    private readonly Lazy<SystemdManager> _systemd;
    private readonly Lazy<string> _procDevices = new(() => File.ReadAllText("/proc/devices"));

    public CgroupManager(CgroupLayout layout, string defaultParent = DefaultParent, string? fakeRoot = null, SystemdManager? systemd = null)
    {
        _systemd = new Lazy<SystemdManager>(() => systemd ?? new SystemdManager());
        ArgumentNullException.ThrowIfNull(layout);
        Layout = layout;
        DefaultParentPath = CgroupFiles.NormalizePath(SystemdUnits.ToHierarchyPath(defaultParent), "parent");
        string Root(string mount) => fakeRoot is null ? mount : fakeRoot.TrimEnd('/') + mount;
        _v1Controllers = layout.V1Controllers.ToDictionary(pair => pair.Key, pair => Root(pair.Value), StringComparer.Ordinal);
        _v1Named = [.. layout.V1NamedHierarchies.Select(Root)];
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
    /// What a container's "cgroup" mount shows on a v1 node: hierarchy directory name -> the container's cgroup
    /// <paramref name="cgroupPath"/> in it; null on v2, where a cgroup2 file system is mounted instead.
    /// </summary>
    public Dictionary<string, string>? ContainerMounts(string cgroupPath)
    {
        if (IsUnified)
        {
            return null;
        }

        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var mount in Layout.V1Controllers.Values.Distinct(StringComparer.Ordinal))
        {
            var name = Path.GetFileName(mount.TrimEnd('/'));
            if (!string.IsNullOrEmpty(name))
            {
                result[name] = mount.TrimEnd('/') + cgroupPath;
            }
        }

        return result;
    }

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

    /// <summary>
    /// Where the cgroup of an OCI cgroupsPath goes: "slice:prefix:name" is a systemd scope (at its slice's path), any
    /// other value a path.
    /// </summary>
    public static CgroupPlacement Place(string cgroupsPath)
    {
        ArgumentNullException.ThrowIfNull(cgroupsPath);
        if (SystemdUnits.IsScopePath(cgroupsPath))
        {
            var scope = SystemdUnits.ParseScopePath(cgroupsPath);
            return new CgroupPlacement(SystemdUnits.PathOf(scope), scope);
        }

        return new CgroupPlacement(CgroupFiles.NormalizePath(cgroupsPath, "path"), null);
    }

    /// <summary>
    /// Hands a spawned process, still parked before execve, to systemd: a transient scope in its slice holding the pid,
    /// with the limits as properties, and waits until systemd has started it. systemd then holds the process in the
    /// scope in the hierarchies it manages and has written its values; the process is written again into every
    /// hierarchy (freezer, cpuset, ... are nacelle's) and the exact limits applied over systemd's rounded ones.
    /// </summary>
    public async Task StartScopeAsync(ICgroup cgroup, SystemdScope scope, int pid, CgroupResources? resources, string description,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(cgroup);
        ArgumentNullException.ThrowIfNull(scope);
        var properties = SystemdProperties.ForScope(scope, description, pid, resources, IsUnified, DeviceGroup);
        await _systemd.Value.StartTransientUnitAsync(scope.Unit, properties, cancellationToken).ConfigureAwait(false);
        cgroup.AddProcess(pid);
        if (resources is not null)
        {
            cgroup.Apply(resources);
        }
    }

    /// <summary>Stops a container's scope (its processes killed first, if any are left); one systemd no longer knows is no error.</summary>
    public Task StopScopeAsync(SystemdScope scope, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(scope);
        return StopUnitAsync(scope.Unit, cancellationToken);
    }

    /// <summary>
    /// Stops a unit of the systemd driver by name (a scope, a pod's own slice with everything in it): SIGKILL to every
    /// process left in it, then the stop job; one systemd no longer knows is no error.
    /// </summary>
    public async Task StopUnitAsync(string unit, CancellationToken cancellationToken = default)
    {
        await _systemd.Value.KillUnitAsync(unit, cancellationToken).ConfigureAwait(false);
        await _systemd.Value.StopUnitAsync(unit, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The loaded units whose names match the globs (the systemd driver's recovery looks for its own).</summary>
    public Task<IReadOnlyList<string>> ListUnitsAsync(IReadOnlyList<string> patterns, CancellationToken cancellationToken = default) =>
        _systemd.Value.ListUnitsAsync(patterns, cancellationToken);

    /// <summary>Changed limits of a running scope, so systemd keeps them (runtime properties only).</summary>
    public Task UpdateScopeAsync(SystemdScope scope, CgroupResources resources, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(scope);
        ArgumentNullException.ThrowIfNull(resources);
        return _systemd.Value.SetUnitPropertiesAsync(scope.Unit, SystemdProperties.Limits(resources, IsUnified, DeviceGroup), cancellationToken);
    }

    private string? DeviceGroup(char type, long major) => SystemdProperties.UniqueGroup(_procDevices.Value, type, major);

    /// <summary>
    /// The cgroup at an absolute path in the hierarchy, without creating anything. A systemd slice name
    /// ("kubepods-besteffort-pod1.slice", as kubelet's systemd driver names a pod's parent) or a "slice:prefix:name"
    /// cgroupsPath stands for its path.
    /// </summary>
    public ICgroup Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var normalized = CgroupFiles.NormalizePath(SystemdUnits.ToHierarchyPath(path), "path");
        if (normalized == "/")
        {
            throw NacelleException.InvalidArgument("cgroup path \"/\" is the root of the hierarchy, not a cgroup nacelle manages");
        }

        return At(normalized);
    }

    /// <summary>
    /// The paths of the cgroups right below <paramref name="path"/>, in any hierarchy. Unlike <see cref="Open"/> this takes
    /// the root too: kubelet names "/" as a pod's parent when it runs without per-QoS cgroups (--cgroups-per-qos=false),
    /// and the cgroups nacelle made for such a pod are found among the root's children. Only lists.
    /// </summary>
    public IReadOnlyList<string> ChildPaths(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var normalized = CgroupFiles.NormalizePath(SystemdUnits.ToHierarchyPath(path), "path");
        return At(normalized).ChildPaths();
    }

    private ICgroup At(string normalized) => IsUnified
        ? new V2Cgroup(_unifiedMount!, normalized)
        : new V1Cgroup(_v1Controllers, Layout.Mode == CgroupMode.Hybrid ? _unifiedMount : null, normalized, _v1Named);

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
        var parentPath = parent is null ? DefaultParentPath : CgroupFiles.NormalizePath(SystemdUnits.ToHierarchyPath(parent), "parent");
        return parentPath == "/" ? relative : parentPath + relative;
    }
}
