using Google.Protobuf;
using Grpc.Core;
using Nacelle.Common;
using Nacelle.ContainerCore.Security;
using Nacelle.ContainerCore.Security.Seccomp;
using Nacelle.CriServer.Services.Pods;
using Nacelle.CriServer.Translation;
using Nacelle.ImageService.Manifests;
using Nacelle.Sandbox.Containers;
using Nacelle.Sandbox.Pods;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>Creates a container in a ready pod: writable rootfs over the image, the OCI spec translated from the CRI
    /// config, the process parked by the pod's monitor until StartContainer. On failure nothing of it remains.</summary>
    public override async Task<CreateContainerResponse> CreateContainer(CreateContainerRequest request, ServerCallContext context)
    {
        var config = request.Config ?? throw NacelleException.InvalidArgument("CreateContainer: config is required");
        if (string.IsNullOrEmpty(config.Metadata?.Name))
        {
            throw NacelleException.InvalidArgument("config.metadata.name is required");
        }

        if (string.IsNullOrEmpty(config.Image?.Image))
        {
            throw NacelleException.InvalidArgument("config.image.image is required");
        }

        var pod = pods.Get(request.PodSandboxId);
        var sandboxConfig = request.SandboxConfig ?? PodSandboxMapping.Config(pod);
        var id = await containers.CreateAsync(new ContainerCreateRequest
        {
            PodId = pod.Id,
            Name = config.Metadata.Name,
            Attempt = config.Metadata.Attempt,
            Image = config.Image.Image,
            Labels = new Dictionary<string, string>(config.Labels),
            Annotations = new Dictionary<string, string>(config.Annotations),
            LogPath = config.LogPath,
            ConfigJson = JsonFormatter.Default.Format(config),
        }, build =>
        {
            var podDirectory = build.PodDirectory;
            var result = translator.Translate(config, sandboxConfig, ImageConfig.Parse(build.Image.Config), new PodRuntimeContext
            {
                PodId = build.Pod.Id,
                ContainerId = build.ContainerId,
                RootfsPath = build.RootfsPath,
                NetworkNamespacePath = build.NetworkNamespace,
                IpcNamespacePath = build.IpcNamespace,
                UtsNamespacePath = build.UtsNamespace,
                PidNamespacePath = build.PidNamespace,
                TargetPidNamespacePath = TargetPidNamespace(config, sandboxConfig),
                CgroupParent = build.Pod.CgroupParent,
                CgroupsPath = build.CgroupsPath,
                CgroupV2 = build.CgroupV2,
                Hostname = build.Pod.Hostname,
                NodeHostname = Environment.MachineName,
                HostsPath = Path.Combine(podDirectory, PodFiles.HostsFileName),
                ResolvConfPath = Path.Combine(podDirectory, PodFiles.ResolvConfFileName),
                HostnamePath = Path.Combine(podDirectory, PodFiles.HostnameFileName),
                ShmPath = build.ShmPath,
                LogDirectory = build.Pod.LogDirectory,
                ImagePasswd = build.ImagePasswd,
                ImageGroup = build.ImageGroup,
                DefaultSeccompProfile = DefaultSeccompProfile.Json,
                HostLastCap = HostLastCap.Value,
                HostCapabilities = HostCapabilities.Value,
            });
            return new ContainerBuild(result.Spec, result.LogPath, result.StopSignal);
        }, context.CancellationToken).ConfigureAwait(false);
        return new CreateContainerResponse { ContainerId = id };
    }

    /// <summary>The pid namespace of the container a TARGET pid mode names (it must be running).</summary>
    private string? TargetPidNamespace(ContainerConfig config, PodSandboxConfig sandbox)
    {
        var options = config.Linux?.SecurityContext?.NamespaceOptions ?? sandbox.Linux?.SecurityContext?.NamespaceOptions;
        if (options is not { Pid: NamespaceMode.Target })
        {
            return null;
        }

        return containers.PidNamespaceOf(options.TargetId)
            ?? throw NacelleException.NotFound($"linux.security_context.namespace_options.target_id: container \"{options.TargetId}\" is not running");
    }

    private static readonly Lazy<ulong?> HostCapabilities = new(() => Capabilities.OfThisProcess());

    private static readonly Lazy<int> HostLastCap = new(() => Capabilities.ReadHostLastCap());
}
