using Microsoft.Win32.SafeHandles;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Spawn;

namespace Nacelle.ContainerCore.Mounts;

/// <summary>
/// What this kernel lets the built-in core do for the optional CRI features, found by doing it once (a daemon reports
/// them in Status and refuses pods that need what is missing). Each "missing" text says why a feature is off.
/// </summary>
/// <param name="UserNamespaces">A user namespace can be made, and an image's layers idmapped with it under an overlay
/// (a user-namespaced pod's rootfs: open_tree + MOUNT_ATTR_IDMAP + overlayfs layers by descriptor, Linux 6.13).</param>
/// <param name="RecursiveReadOnlyMounts">mount_setattr(AT_RECURSIVE) makes a tree read-only (Linux 5.12).</param>
public sealed record KernelFeatures(bool UserNamespaces, string? UserNamespacesMissing, bool RecursiveReadOnlyMounts, string? RecursiveReadOnlyMissing)
{
    /// <summary>
    /// Probes in a scratch directory made (and removed) under <paramref name="parent"/>, which should be on the file
    /// system the image layers are on (idmapping is a per-file-system feature). The user namespace is held by the spawn
    /// helper's process, parked before its execve (of itself, never run) and killed at once.
    /// </summary>
    public static async Task<KernelFeatures> ProbeAsync(string parent, SpawnHelperBinary? helper = null, CancellationToken cancellationToken = default)
    {
        var scratch = Directory.CreateDirectory(Path.Combine(parent, $".probe-{Environment.ProcessId}-{Guid.NewGuid():N}")).FullName;
        try
        {
            foreach (var sub in new[] { "lower", "upper", "work" })
            {
                Directory.CreateDirectory(Path.Combine(scratch, sub));
            }

            var recursiveReadOnly = Try(() =>
            {
                using var tree = MountTrees.OpenTree(Path.Combine(scratch, "lower"), recursive: true);
                MountTrees.SetAttributes(tree, recursive: true, MountTrees.MOUNT_ATTR_RDONLY);
            });
            var userNamespaces = await ProbeUserNamespacesAsync(scratch, helper ?? SpawnHelperBinary.Shared, cancellationToken)
                .ConfigureAwait(false);
            return new KernelFeatures(userNamespaces is null, userNamespaces, recursiveReadOnly is null, recursiveReadOnly);
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    private static async Task<string?> ProbeUserNamespacesAsync(string scratch, SpawnHelperBinary helper, CancellationToken cancellationToken)
    {
        // A process in a new user namespace that maps one id; parked before execve, so nothing of it ever runs.
        var request = new SpawnRequest
        {
            CloneFlags = MountFlags.CLONE_NEWUSER, UidMap = "0 65534 1\n", GidMap = "0 65534 1\n", Park = true, NewSession = false,
        };
        // Its own binary (the sealed copy): reachable whatever the ids it maps may read on the host's paths.
        request.Args.Add("/proc/self/exe");
        SpawnedProcess holder;
        try
        {
            holder = await new Spawner(helper, TimeSpan.FromSeconds(10)).SpawnAsync(request, SpawnStdio.Null, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is Common.NacelleException or IOException)
        {
            return $"cannot create a user namespace: {e.Message}";
        }

        try
        {
            using var userNamespace = MountTrees.OpenNamespace($"/proc/{holder.Pid}/ns/user");
            return Try(() =>
            {
                using var layer = MountTrees.OpenTree(Path.Combine(scratch, "lower"), recursive: false);
                MountTrees.SetAttributes(layer, recursive: false, MountTrees.MOUNT_ATTR_IDMAP, userNamespace: userNamespace);
                using var overlay = MountTrees.CreateOverlay([layer], Path.Combine(scratch, "upper"), Path.Combine(scratch, "work"), 0);
            });
        }
        catch (IOException e)
        {
            return e.Message;
        }
        finally
        {
            holder.Process.Signal(Signals.SIGKILL);
            await holder.Process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            holder.Dispose();
        }
    }

    private static string? Try(Action probe)
    {
        try
        {
            probe();
            return null;
        }
        catch (IOException e)
        {
            return e.Message;
        }
    }
}
