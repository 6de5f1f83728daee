using System.Globalization;
using System.Text;
using System.Text.Json;
using Nacelle.Common;
using Nacelle.ContainerCore.Security;
using Nacelle.ContainerCore.Security.Seccomp;
using Nacelle.ContainerCore.Spec;
using Nacelle.ImageService.Manifests;
using Runtime.V1;

namespace Nacelle.CriServer.Translation;

/// <summary>
/// CreateContainer's translation: CRI ContainerConfig + PodSandboxConfig + image config + what the pod layer knows ->
/// the container's OCI runtime spec, following containerd's CRI plugin wherever kubelet relies on a behaviour.
/// Pure except for <see cref="ITranslationHost"/> (Localhost seccomp profiles, device nodes). Everything refused is a
/// <see cref="NacelleException"/> (InvalidArgument, or Unimplemented for features nacelle does not have) whose message
/// names the CRI field.
/// </summary>
public sealed partial class ContainerSpecTranslator(ITranslationHost host)
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

    public ContainerSpecResult Translate(ContainerConfig config, PodSandboxConfig sandbox, ImageConfig image, PodRuntimeContext context)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(sandbox);
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(context);

        if (string.IsNullOrEmpty(config.Metadata?.Name))
        {
            throw Invalid("metadata.name", "is required");
        }

        if (config.CDIDevices.Count > 0)
        {
            throw NacelleException.Unimplemented($"CDI_devices[0]: CDI devices are not supported (\"{config.CDIDevices[0].Name}\")");
        }

        var sc = config.Linux?.SecurityContext ?? new LinuxContainerSecurityContext();
        var podSc = sandbox.Linux?.SecurityContext;
        var privileged = sc.Privileged;
        if (privileged && podSc?.Privileged != true)
        {
            throw Invalid($"{Sc}.privileged", "a privileged container needs a privileged pod sandbox");
        }

        var notes = new List<string>();
        var nsOptions = sc.NamespaceOptions ?? podSc?.NamespaceOptions ?? new NamespaceOption();
        var hostNetwork = nsOptions.Network == NamespaceMode.Node;

        if (string.IsNullOrEmpty(context.RootfsPath))
        {
            throw NacelleException.Internal("rootfs: the pod layer gave no rootfs path");
        }

        var spec = new RuntimeSpec
        {
            Root = new SpecRoot { Path = context.RootfsPath, Readonly = sc.ReadonlyRootfs },
            Linux = new SpecLinux { CgroupsPath = string.IsNullOrEmpty(context.CgroupsPath) ? null : context.CgroupsPath },
        };

        spec.Linux.Namespaces = Namespaces(nsOptions, privileged, context);

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

        var user = User(sc, image, context);
        spec.Process = new SpecProcess
        {
            Terminal = config.Tty,
            Args = Args(config, image),
            Cwd = WorkingDir(config, image),
            Env = Env(config, image, hostname, user),
            User = new SpecUser { Uid = user.Uid, Gid = user.Gid, AdditionalGids = [.. user.AdditionalGids] },
            Capabilities = CapabilitySet(sc, privileged, context.HostLastCap, context.HostCapabilities),
            NoNewPrivileges = sc.NoNewPrivs,
        };

        spec.Mounts = Mounts(config, sc, nsOptions, privileged, context);
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

        var (devices, rules) = Devices(config, privileged);
        spec.Linux.Devices = devices;
        spec.Linux.Resources = new SpecResources { Devices = rules };
        Resources(config.Linux?.Resources, spec.Linux.Resources, spec.Process);

        if (!privileged)
        {
            spec.Linux.Seccomp = Seccomp(sc, context);
            spec.Linux.MaskedPaths = Paths(sc.MaskedPaths, LinuxDefaults.MaskedPaths, $"{Sc}.masked_paths");
            spec.Linux.ReadonlyPaths = Paths(sc.ReadonlyPaths, LinuxDefaults.ReadonlyPaths, $"{Sc}.readonly_paths");
        }

        Notes(sc, notes);

        foreach (var (key, value) in config.Annotations)
        {
            spec.Annotations[key] = value;
        }

        spec.Annotations[ContainerTypeAnnotation] = "container";
        spec.Annotations[SandboxIdAnnotation] = context.PodId;
        spec.Annotations[SandboxNameAnnotation] = sandbox.Metadata?.Name ?? string.Empty;
        spec.Annotations[SandboxNamespaceAnnotation] = sandbox.Metadata?.Namespace ?? string.Empty;
        spec.Annotations[SandboxUidAnnotation] = sandbox.Metadata?.Uid ?? string.Empty;
        spec.Annotations[ContainerNameAnnotation] = config.Metadata.Name;
        spec.Annotations[ImageNameAnnotation] = config.Image?.Image ?? string.Empty;

        var (signal, signalName) = StopSignal(config, image);
        return new ContainerSpecResult(
            spec,
            LogPath(config, sandbox, context),
            signal,
            signalName,
            config.Tty,
            config.Stdin,
            config.StdinOnce,
            user,
            notes);
    }

    private static string? LogPath(ContainerConfig config, PodSandboxConfig sandbox, PodRuntimeContext context)
    {
        var directory = string.IsNullOrEmpty(context.LogDirectory) ? sandbox.LogDirectory : context.LogDirectory;
        if (string.IsNullOrEmpty(config.LogPath))
        {
            return null;
        }

        if (config.LogPath.StartsWith('/'))
        {
            throw Invalid("log_path", $"'{config.LogPath}' must be relative to the pod's log_directory");
        }

        if (config.LogPath.Split('/').Contains(".."))
        {
            throw Invalid("log_path", $"'{config.LogPath}' must not leave the pod's log_directory with '..'");
        }

        return string.IsNullOrEmpty(directory) ? null : Path.Join(directory, config.LogPath);
    }

    private static NacelleException Invalid(string field, string why) => NacelleException.InvalidArgument($"{field}: {why}");
}
