using Nacelle.Common;
using Nacelle.ContainerCore.Cgroups;
using Nacelle.ContainerCore.Reactor;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Runtime.Oci;
using Nacelle.ContainerCore.Spawn;
using Nacelle.ContainerCore.Spec;

namespace Nacelle.ContainerCore.Runtime;

/// <summary>Containers run by an external OCI runtime (a RuntimeClass handler such as runc): see <see cref="OciRuntimeLauncher"/>.</summary>
public sealed partial class ContainerRuntime
{
    /// <summary>
    /// create through <paramref name="external"/>: the bundle is written, the runtime creates the container (its
    /// cgroup at the path nacelle chose, the pod's namespaces joined by path) and its init is adopted; the cgroup is
    /// opened for stats, freezing and updates. Under the systemd driver ("slice:prefix:name") the runtime is given the
    /// scope's path in the hierarchy, and the init, parked until start, is handed to systemd in its scope as the
    /// built-in core hands its own: nacelle keeps talking to systemd, so a runtime needs no --systemd-cgroup (nor a
    /// bus connection of its own). Undone on failure: the scope, the runtime's delete, the state directory.
    /// </summary>
    private async Task<ContainerState> CreateExternalAsync(string id, RuntimeSpec spec, string bundle, SpawnStdio stdio, ExternalRuntime external,
        CancellationToken cancellationToken)
    {
        SpecValidator.Validate(spec);
        var placement = CgroupManager.Place(CgroupPathFor(id, spec));
        var cgroupPath = placement.Path;
        var launcher = LauncherFor(id, external)!;
        var undo = new UndoStack();
        try
        {
            Directory.CreateDirectory(StateDir(id));
            undo.Push("state directory", () => Directory.Delete(StateDir(id), recursive: true));
            File.WriteAllText(Path.Combine(StateDir(id), "config.json"), RuntimeSpecFile.Serialize(spec));

            undo.Push("runtime's container", () => launcher.DeleteAsync(id, CancellationToken.None));
            var process = await launcher.CreateAsync(id, spec, bundle, cgroupPath, stdio, cancellationToken).ConfigureAwait(false);
            undo.Push("init process", async () =>
            {
                process.Signal(Signals.SIGKILL);
                await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
                process.Dispose();
            });

            var cgroup = _options.Cgroups.Open(cgroupPath);
            if (placement.Scope is { } scope)
            {
                undo.Push("systemd scope", () => _options.Cgroups.StopScopeAsync(scope, CancellationToken.None));
                var resources = spec.Linux?.Resources is { } specResources ? CgroupSpecMapping.FromSpec(specResources) : null;
                await _options.Cgroups.StartScopeAsync(cgroup, scope, process.Pid, resources, $"nacelle container {id}", cancellationToken)
                    .ConfigureAwait(false);
            }

            var state = new ContainerState
            {
                Id = id,
                Status = ContainerStatus.Created,
                Pid = process.Pid,
                PidStartTime = ProcessIdentity.StartTime(process.Pid) ?? 0,
                Bundle = launcher.BundleDirectory,
                Rootfs = OciBundle.RootPath(spec, bundle),
                CgroupPath = cgroup.Path,
                CreatedAt = DateTimeOffset.UtcNow,
                Annotations = new Dictionary<string, string>(spec.Annotations, StringComparer.Ordinal),
                Runtime = external,
            };
            return Register(new Entry(id, null, spec, cgroup, SafeOomKills(cgroup)) { State = state, Process = process, External = launcher });
        }
        catch (Exception e)
        {
            RuntimeLog.CreateFailed(_log, id, e.Message);
            await undo.RunAsync(TimeSpan.FromSeconds(30), FdReactor.Time, (what, error) => RuntimeLog.UndoFailed(_log, id, $"{what}: {error.Message}")).ConfigureAwait(false);
            throw;
        }
    }

    private OciRuntimeLauncher? LauncherFor(string id, ExternalRuntime? external) =>
        external is null ? null : new OciRuntimeLauncher(external, StateDir(id), _options.SetupTimeout, _options.HoldChildReaping);
}
