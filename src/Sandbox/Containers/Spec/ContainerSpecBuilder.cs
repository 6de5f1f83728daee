using Nacelle.Common;
using Nacelle.ContainerCore.Spec;
using Nacelle.ImageService.Manifests;
using Nacelle.Sandbox.Store;

namespace Nacelle.Sandbox.Containers.Spec;

/// <summary>
/// CreateContainer's spec: the request (CRI ContainerConfig in domain terms) + the image config + what the pod layer
/// knows -> the container's OCI runtime spec, following containerd's CRI plugin wherever kubelet relies on a behaviour.
/// Pure except for <see cref="ISpecHost"/> (Localhost seccomp profiles, device nodes). Everything refused is a
/// <see cref="NacelleException"/> (InvalidArgument, or Unimplemented for features nacelle does not have) whose message
/// names the CRI field. One file per concern: Namespaces, Process, User, Mounts, Devices, Resources, Security.
/// </summary>
public sealed partial class ContainerSpecBuilder(ISpecHost host)
{
    private const string Sc = "linux.security_context";
    private const string Ns = Sc + ".namespace_options";
    private const string Res = "linux.resources";

    /// <summary>Annotation keys containerd sets on every container (tools read them).</summary>
    public const string ContainerTypeAnnotation = "io.kubernetes.cri.container-type";
    public const string SandboxIdAnnotation = "io.kubernetes.cri.sandbox-id";
    public const string SandboxNameAnnotation = "io.kubernetes.cri.sandbox-name";
    public const string SandboxNamespaceAnnotation = "io.kubernetes.cri.sandbox-namespace";
    public const string SandboxUidAnnotation = "io.kubernetes.cri.sandbox-uid";
    public const string ContainerNameAnnotation = "io.kubernetes.cri.container-name";
    public const string ImageNameAnnotation = "io.kubernetes.cri.image-name";

    public ContainerSpec Build(ContainerCreateRequest request, ImageConfig image, ContainerSpecContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(context);

        if (string.IsNullOrEmpty(request.Name))
        {
            throw Invalid("metadata.name", "is required");
        }

        if (request.CdiDevices.Count > 0)
        {
            throw NacelleException.Unimplemented($"CDI_devices[0]: CDI devices are not supported (\"{request.CdiDevices[0]}\")");
        }

        var sc = request.Security;
        var sandbox = request.Sandbox;
        var privileged = sc.Privileged;
        if (privileged && !sandbox.Privileged)
        {
            throw Invalid($"{Sc}.privileged", "a privileged container needs a privileged pod sandbox");
        }

        var notes = new List<string>();
        var nsOptions = sc.NamespaceOptions ?? sandbox.NamespaceOptions ?? new NamespaceOptions();
        var hostNetwork = nsOptions.Network == PodNamespaceMode.Node;

        if (string.IsNullOrEmpty(context.RootfsPath))
        {
            throw NacelleException.Internal("rootfs: the pod layer gave no rootfs path");
        }

        var spec = new RuntimeSpec
        {
            Root = new SpecRoot { Path = context.RootfsPath, Readonly = sc.ReadonlyRootfs },
            Linux = new SpecLinux { CgroupsPath = string.IsNullOrEmpty(context.CgroupsPath) ? null : context.CgroupsPath },
        };

        var userNamespace = UserNamespaceOf(nsOptions.User, context);
        spec.Linux.Namespaces = Namespaces(nsOptions, privileged, context, userNamespace);
        if (userNamespace is not null)
        {
            // The joined namespace's mappings, as containerd sends them (runc checks them); nacelle's core idmaps the
            // volumes that carry the same ones with it.
            spec.Linux.UidMappings = userNamespace.UidSpec();
            spec.Linux.GidMappings = userNamespace.GidSpec();
        }

        var podHostname = string.IsNullOrEmpty(context.Hostname) ? sandbox.Hostname : context.Hostname;
        string hostname;
        if (hostNetwork)
        {
            hostname = string.IsNullOrEmpty(podHostname) ? context.NodeHostname : podHostname;
        }
        else
        {
            hostname = podHostname;
            spec.Hostname = string.IsNullOrEmpty(podHostname) ? null : podHostname;
        }

        var process = request.Process;
        var user = User(sc, image, context);
        spec.Process = new SpecProcess
        {
            Terminal = process.Tty,
            Args = Args(process, image),
            Cwd = WorkingDir(process, image),
            Env = Env(process, image, hostname, user),
            User = new SpecUser { Uid = user.Uid, Gid = user.Gid, AdditionalGids = [.. user.AdditionalGids] },
            Capabilities = CapabilitySet(sc, privileged, context.HostLastCap, context.HostCapabilities),
            NoNewPrivileges = sc.NoNewPrivs,
        };

        spec.Mounts = Mounts(request.Mounts, sc, nsOptions, privileged, context, userNamespace);
        foreach (var mount in spec.Mounts)
        {
            if (mount.Options.Contains("rshared"))
            {
                spec.Linux.RootfsPropagation = "rshared";
            }
            else if (mount.Options.Contains("rslave") && spec.Linux.RootfsPropagation != "rshared")
            {
                spec.Linux.RootfsPropagation = "rslave";
            }
        }

        var (devices, rules) = Devices(request.Devices, privileged);
        spec.Linux.Devices = devices;
        spec.Linux.Resources = new SpecResources { Devices = rules };
        Resources(request.Resources, spec.Linux.Resources, spec.Process);

        if (!privileged)
        {
            spec.Linux.Seccomp = Seccomp(sc, context, spec.Process.Capabilities?.Bounding ?? []);
            (spec.Linux.MaskedPaths, spec.Linux.ReadonlyPaths) = MaskedAndReadonlyPaths(sc, userNamespace is not null);
        }

        spec.Process.ApparmorProfile = AppArmor(sc, privileged, context, notes);
        (spec.Process.SelinuxLabel, spec.Linux.MountLabel) = Selinux(sc, privileged, context);

        foreach (var (key, value) in request.Annotations)
        {
            spec.Annotations[key] = value;
        }

        spec.Annotations[ContainerTypeAnnotation] = "container";
        spec.Annotations[SandboxIdAnnotation] = context.PodId;
        spec.Annotations[SandboxNameAnnotation] = sandbox.Name;
        spec.Annotations[SandboxNamespaceAnnotation] = sandbox.Namespace;
        spec.Annotations[SandboxUidAnnotation] = sandbox.Uid;
        spec.Annotations[ContainerNameAnnotation] = request.Name;
        spec.Annotations[ImageNameAnnotation] = request.Image;

        var stop = StopSignalOf(request.StopSignal, image);
        return new ContainerSpec(
            spec,
            LogFile(request.LogPath, sandbox, context),
            stop.Number,
            stop.Name,
            process.Tty,
            process.Stdin,
            process.StdinOnce,
            user,
            notes);
    }

    /// <summary>The CRI log file: the pod's log directory joined with the container's log_path (relative to it).</summary>
    private static string? LogFile(string logPath, PodSandboxSettings sandbox, ContainerSpecContext context)
    {
        var directory = string.IsNullOrEmpty(context.LogDirectory) ? sandbox.LogDirectory : context.LogDirectory;
        if (string.IsNullOrEmpty(logPath))
        {
            return null;
        }

        if (logPath.StartsWith('/'))
        {
            throw Invalid("log_path", $"'{logPath}' must be relative to the pod's log_directory");
        }

        if (logPath.Contains('\0'))
        {
            throw Invalid("log_path", "must not contain NUL");
        }

        if (logPath.Split('/').Contains(".."))
        {
            throw Invalid("log_path", $"'{logPath}' must not leave the pod's log_directory with '..'");
        }

        if (string.IsNullOrEmpty(directory))
        {
            return null;
        }

        var file = Path.Join(directory, logPath);
        return PathLimits.Exceeded(file) is { } why ? throw Invalid("log_path", $"the log file {why}") : file;
    }

    private static NacelleException Invalid(string field, string why) => NacelleException.InvalidArgument($"{field}: {why}");
}
