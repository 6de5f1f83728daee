namespace Nacelle.ContainerCore.Cgroups;

/// <summary>
/// Who owns the cgroup tree nacelle writes into. With <see cref="Cgroupfs"/> nacelle creates and removes
/// cgroup directories itself; with <see cref="Systemd"/> it would ask systemd for transient units (not built yet).
/// kubelet must be configured with the same driver (RuntimeConfig tells it).
/// </summary>
public enum CgroupDriver
{
    Cgroupfs,
    Systemd,
}
