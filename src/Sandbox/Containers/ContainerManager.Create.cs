using System.Security.Cryptography;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Security;
using Nacelle.ContainerCore.Security.Seccomp;
using Nacelle.ContainerCore.Spec;
using Nacelle.ImageService.Manifests;
using Nacelle.ImageService.Snapshots;
using Nacelle.Sandbox.Containers.Spec;
using Nacelle.Sandbox.Pods;
using Nacelle.Sandbox.Store;

namespace Nacelle.Sandbox.Containers;

/// <summary>CreateContainer: name reservation, writable rootfs, bundle, the spec built from the request and one ContainerSpecContext, the monitor's create; each step with its undo.</summary>
public sealed partial class ContainerManager
{
    /// <summary>Creates a container in a ready pod: writable rootfs over the image, the OCI spec built from the request,
    /// the process parked by the pod's monitor until StartContainer. Returns its id; on failure nothing of it remains.</summary>
    public async Task<string> CreateAsync(ContainerCreateRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var pod = _pods.Get(request.PodId);

        // Under the pod's gate, as StopPodSandbox and RemovePodSandbox: a create beside them would lose its cgroup to
        // the pod's teardown half way (the spawn failed with ENOENT on the cgroup directories) or mount its rootfs
        // after the removal looked for it. A create that waited finds the pod stopped or gone.
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
        var cgroupsPath = Nacelle.ContainerCore.Cgroups.CgroupNames.Container(pod.CgroupParent, id);
        var undo = new UndoStack();
        _creating[id] = 0;
        try
        {
            // The row reserves the name (AlreadyExists for a duplicate) and stays incomplete until the monitor has the
            // container: a daemon killed before that leaves a row recovery removes with everything else it made.
            _store.AddContainer(new ContainerRecord
            {
                Id = id, PodId = pod.Id, Name = request.Name, Attempt = request.Attempt, ImageRef = request.Image,
                ImageId = image.Id, State = ContainerRecordState.Created, CreatedAt = UnixTime.Now(),
                Labels = request.Labels, Annotations = request.Annotations, LogPath = request.LogPath,
                ConfigJson = request.ConfigJson, Complete = false, CgroupPath = cgroupsPath,
                ImageName = image.RepoTags.Count > 0 ? image.RepoTags[0] : request.Image,
                ImageDigestRef = image.RepoDigests.Count > 0 ? image.RepoDigests[0] : image.Id,
            });
            undo.Push("container record", () => _store.DeleteContainer(id));

            _images.CreateRootfs(id, image.Id);
            undo.Push("rootfs", () => _images.RemoveRootfs(id));
            var rootfs = _images.Rootfs.Mount(id, RootfsIdmapOf(pod));
            CrashIfAsked("create-after-rootfs");

            var bundle = BundleDirectory(pod.Id, id);
            Directory.CreateDirectory(bundle);
            undo.Push("bundle", () => Directory.Delete(bundle, recursive: true));

            var built = _specs.Build(request, ImageConfig.Parse(image.Config), SpecContext(pod, id, rootfs.Path, cgroupsPath, targetPidNamespace));
            // Refused here, naming the field and the limit, rather than by the monitor half way.
            SpecValidator.Validate(built.Spec);
            LogNotes(id, built.Notes);
            var specJson = RuntimeSpecFile.Serialize(built.Spec);
            await File.WriteAllTextAsync(Path.Combine(bundle, "config.json"), specJson, cancellationToken).ConfigureAwait(false);
            if (built.LogFile is { } logFile)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(logFile)!);
            }

            // The pod's RuntimeClass handler: an external OCI runtime goes with the create; the built-in core needs nothing.
            var handler = (await _pods.HandlersAsync(cancellationToken).ConfigureAwait(false)).Resolve(pod.RuntimeHandler);
            var client = await MonitorOfAsync(pod, cancellationToken).ConfigureAwait(false);
            var created = (await client.SendAsync(new MonitorRequest
            {
                Op = MonitorProtocol.Create, ContainerId = id, SpecJson = specJson, Bundle = bundle, LogFile = built.LogFile,
                // Version 2: a stdin the monitor keeps for attachers (a version 1 monitor ignores both fields).
                Stdin = built.Stdin, StdinOnce = built.StdinOnce,
                Runtime = handler.External,
            }, cancellationToken).ConfigureAwait(false)).Container!;
            undo.Push("monitor container", () => client.SendAsync(new MonitorRequest { Op = MonitorProtocol.Delete, ContainerId = id, Force = true }));
            CrashIfAsked("create-after-monitor");

            _store.UpdateContainer(id, c => c with
            {
                Complete = true, Pid = created.Pid, StopSignal = built.StopSignal, LogFile = built.LogFile ?? "",
                CgroupPath = created.CgroupPath ?? cgroupsPath,
            });
            EnsureWatching(pod.Id);
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
