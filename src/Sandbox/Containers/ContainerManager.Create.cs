using System.Security.Cryptography;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Cgroups;
using Nacelle.ContainerCore.Runtime;
using Nacelle.ContainerCore.Security;
using Nacelle.ContainerCore.Security.Seccomp;
using Nacelle.ContainerCore.Spawn;
using Nacelle.ContainerCore.Spec;
using Nacelle.ImageService.Manifests;
using Nacelle.ImageService.Snapshots;
using Nacelle.Sandbox.Containers.Spec;
using Nacelle.Sandbox.Pods;
using Nacelle.Sandbox.Store;

namespace Nacelle.Sandbox.Containers;

/// <summary>CreateContainer: name reservation, writable rootfs, bundle, the spec built from the request and one ContainerSpecContext
/// and checked as the monitor will plan it; each step with its undo. The pod's monitor spawns the container at StartContainer.</summary>
public sealed partial class ContainerManager
{
    /// <summary>Creates a container in a ready pod: writable rootfs over the image, the OCI spec built from the request and
    /// checked, written to the bundle; StartContainer has the pod's monitor spawn it. Returns its id; on failure nothing
    /// of it remains.</summary>
    public async Task<string> CreateAsync(ContainerCreateRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var pod = _pods.Get(request.PodId);

        // Under the pod's gate, as StopPodSandbox and RemovePodSandbox (and StartContainer): a create beside them would
        // mount its rootfs after the removal looked for it. A create that waited finds the pod stopped or gone.
        await using var gate = await _pods.ExclusiveAsync(pod.Id, cancellationToken).ConfigureAwait(false);
        pod = _pods.Get(pod.Id);
        if (pod.State != PodState.Ready)
        {
            throw NacelleException.FailedPrecondition($"pod sandbox {pod.Id} is not ready: containers are created in ready pods only");
        }

        var image = _images.Find(request.Image)
            ?? throw NacelleException.NotFound($"image \"{request.Image}\" is not present on this node: pull it first");
        // Checked before anything is acquired: a TARGET pid namespace must be a running container of this pod.
        var targetPidNamespace = TargetPidNamespace(request, pod);
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        var cgroupsPath = CgroupNames.Container(pod.CgroupParent, id);
        var undo = new UndoStack();
        _creating[id] = 0;
        try
        {
            // The row reserves the name (AlreadyExists for a duplicate) and stays incomplete until the create is done: a
            // daemon killed before that leaves a row recovery removes with everything else it made.
            _store.AddContainer(new ContainerRecord
            {
                Id = id, PodId = pod.Id, Name = request.Name, Attempt = request.Attempt, ImageRef = request.Image,
                ImageId = image.Id, State = ContainerRecordState.Created, CreatedAt = UnixTime.Now(),
                Labels = request.Labels, Annotations = request.Annotations, LogPath = request.LogPath,
                Config = request.Config, Complete = false, CgroupPath = cgroupsPath,
                ImageName = image.RepoTags.Count > 0 ? image.RepoTags[0] : request.Image,
                ImageDigestRef = image.RepoDigests.Count > 0 ? image.RepoDigests[0] : image.Id,
            });
            undo.Push("container record", () => _store.DeleteContainer(id));

            var created = _images.CreateRootfs(id, image.Id);
            undo.Push("rootfs", () => _images.RemoveRootfs(id));
            var rootfs = _images.Rootfs.Mount(created, RootfsIdmapOf(pod));
            CrashIfAsked("create-after-rootfs");

            var bundle = BundleDirectory(pod.Id, id);
            Directory.CreateDirectory(bundle);
            undo.Push("bundle", () => Directory.Delete(bundle, recursive: true));

            var built = _specs.Build(request, ImageConfig.Parse(image.Config), SpecContext(pod, id, rootfs.Path, cgroupsPath, targetPidNamespace));
            // Refused here, naming the field and the limit: the spawn happens at StartContainer, and what the caller got
            // wrong is CreateContainer's answer, not a start failure.
            var handler = (await _pods.HandlersAsync(cancellationToken).ConfigureAwait(false)).Resolve(pod.RuntimeHandler);
            ValidateForSpawn(built.Spec, bundle, cgroupsPath, external: handler.External is not null);
            LogNotes(id, built.Notes);
            await File.WriteAllTextAsync(Path.Combine(bundle, "config.json"), RuntimeSpecFile.Serialize(built.Spec), cancellationToken).ConfigureAwait(false);
            if (built.LogFile is { } logFile)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(logFile)!);
            }

            // Created: the rootfs, the bundle and the row are what a container is until StartContainer has the pod's
            // monitor spawn it (cgroup, namespaces, mounts) and release it into its program, as containerd's CRI plugin
            // leaves `runc create` to StartContainer.
            _store.UpdateContainer(id, c => c with
            {
                Complete = true, StopSignal = built.StopSignal, LogFile = built.LogFile ?? "", Stdin = built.Stdin, StdinOnce = built.StdinOnce,
            });
            Events.Publish(new ContainerEvent(id, pod.Id, ContainerEventKind.Created, UnixTime.Now()));
            ContainerLog.Created(_log, id, pod.Id, request.Name);
            return id;
        }
        catch (Exception e)
        {
            ContainerLog.CreateFailed(_log, id, pod.Id, e.Message);
            await undo.RunAsync(TimeSpan.FromSeconds(60), (what, error) => ContainerLog.UndoFailed(_log, id, what, error.Message)).ConfigureAwait(false);
            throw;
        }
        finally
        {
            _creating.TryRemove(id, out _);
        }
    }

    /// <summary>
    /// What the pod's monitor will check when it spawns the container, checked now without the kernel: the spec as the
    /// built-in core plans it (namespaces, mounts and their sources, devices, sysctls, rlimits, user, capabilities, the
    /// seccomp profile compiled). An external runtime checks its spec itself.
    /// </summary>
    private void ValidateForSpawn(RuntimeSpec spec, string bundle, string cgroupsPath, bool external)
    {
        if (external)
        {
            SpecValidator.Validate(spec);
            return;
        }

        // The plan and its message (every string of it a C string: no NUL) are dropped: the monitor makes its own at start
        // (the spawn helper's message stays in the process that runs the helper). Its adjustments are logged there too.
        var plan = SpawnPlanner.PlanContainer(spec, bundle, HostFactsOfNode.Value, _cgroups.Value.ContainerMounts(CgroupManager.Place(cgroupsPath).Path));
        SpawnMessage.Encode(plan.Request);
    }

    private static readonly Lazy<HostFacts> HostFactsOfNode = new(HostFacts.Detect);

    /// <summary>A pod of its own user namespace gets its containers' image layers idmapped with it (null: the node's).</summary>
    private RootfsIdmap? RootfsIdmapOf(PodRecord pod)
    {
        if (pod.NamespaceOptions.OwnUserNamespace is not { } user)
        {
            return null;
        }

        var path = _pods.NamespacePath(pod.Id, "user")
            ?? throw NacelleException.FailedPrecondition($"pod sandbox {pod.Id} has lost its user namespace (its pin is gone)");
        var (uid, gid) = user.HostRoot();
        return new RootfsIdmap(path, uid, gid);
    }

    /// <summary>What the spec builder needs from the pod, its rootfs and the node.</summary>
    private ContainerSpecContext SpecContext(PodRecord pod, string id, string rootfs, string cgroupsPath, string? targetPidNamespace)
    {
        var podDirectory = _pods.PodDirectory(pod.Id);
        var shm = Path.Combine(podDirectory, PodFiles.ShmDirectoryName);
        return new ContainerSpecContext
        {
            PodId = pod.Id,
            ContainerId = id,
            RootfsPath = rootfs,
            NetworkNamespacePath = _pods.NamespacePath(pod.Id, "net"),
            IpcNamespacePath = _pods.NamespacePath(pod.Id, "ipc"),
            UtsNamespacePath = _pods.NamespacePath(pod.Id, "uts"),
            PidNamespacePath = _pods.NamespacePath(pod.Id, "pid"),
            PodUserNamespace = pod.NamespaceOptions.OwnUserNamespace,
            UserNamespacePath = _pods.NamespacePath(pod.Id, "user"),
            TargetPidNamespacePath = targetPidNamespace,
            CgroupsPath = cgroupsPath,
            CgroupV2 = _cgroups.Value.IsUnified,
            Hostname = pod.Hostname,
            NodeHostname = Environment.MachineName,
            HostsPath = Path.Combine(podDirectory, PodFiles.HostsFileName),
            ResolvConfPath = Path.Combine(podDirectory, PodFiles.ResolvConfFileName),
            HostnamePath = Path.Combine(podDirectory, PodFiles.HostnameFileName),
            ShmPath = Directory.Exists(shm) ? shm : null,
            LogDirectory = pod.LogDirectory,
            ImagePasswd = RootfsFiles.ReadText(rootfs, "/etc/passwd"),
            ImageGroup = RootfsFiles.ReadText(rootfs, "/etc/group"),
            DefaultSeccompProfile = capabilities => DefaultSeccompProfile.For(capabilities).ToJson(),
            HostLastCap = HostLastCap.Value,
            HostCapabilities = HostCapabilities.Value,
            SecurityModules = _options.SecurityModules,
            AppArmorDefaultProfile = _options.AppArmorDefaultProfile,
            AppArmorDefaultUnavailable = _options.AppArmorDefaultUnavailable,
        };
    }

    /// <summary>Logs what the spec builder accepted without applying (a RuntimeDefault AppArmor request on a node without
    /// AppArmor), each distinct note once per daemon: kubelet asks for it on every container.</summary>
    private void LogNotes(string id, IReadOnlyList<string> notes)
    {
        foreach (var note in notes)
        {
            if (_loggedNotes.TryAdd(note, 0))
            {
                ContainerLog.SecurityNote(_log, id, note);
            }
        }
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> _loggedNotes = new(StringComparer.Ordinal);

    /// <summary>
    /// The pid namespace of the container a TARGET pid mode names. It must be a running container of the same pod (what
    /// kubelet sends for an ephemeral debug container): a container of another pod would join that pod's processes,
    /// an isolation hole, so it is refused like a container that does not exist.
    /// </summary>
    private string? TargetPidNamespace(ContainerCreateRequest request, PodRecord pod)
    {
        var options = request.Security.NamespaceOptions ?? request.Sandbox.NamespaceOptions;
        if (options is not { Pid: PodNamespaceMode.Target } || string.IsNullOrEmpty(options.TargetId))
        {
            return null; // the spec builder refuses TARGET without a target_id
        }

        const string field = "linux.security_context.namespace_options.target_id";
        var target = Find(options.TargetId);
        if (target is not null && target.PodId != pod.Id)
        {
            throw NacelleException.InvalidArgument(
                $"{field}: container \"{options.TargetId}\" belongs to another pod sandbox; only a container of pod sandbox {pod.Id} can be a pid namespace target");
        }

        return PidNamespaceOf(options.TargetId)
            ?? throw NacelleException.NotFound($"{field}: container \"{options.TargetId}\" is not running in pod sandbox {pod.Id}");
    }

    private static readonly Lazy<ulong?> HostCapabilities = new(() => Capabilities.OfThisProcess());

    private static readonly Lazy<int> HostLastCap = new(() => Capabilities.ReadHostLastCap());

    private void CrashIfAsked(string point)
    {
        if (_options.CrashPoint == point)
        {
            ContainerCore.Interop.Signals.Send(Environment.ProcessId, 9);
            Thread.Sleep(Timeout.Infinite);
        }
    }
}
