using Google.Protobuf;
using Nacelle.Common;
using Nacelle.ContainerCore.Mounts;
using Nacelle.ContainerCore.Spec;
using Nacelle.CriServer.Services.Containers;
using Nacelle.Sandbox.Containers.Spec;
using Nacelle.ImageService.Manifests;
using Runtime.V1;

namespace Nacelle.Tests.Unit.Containers.SpecBuilder;

/// <summary>A host with no I/O: profiles and devices come from dictionaries; every call is counted.</summary>
internal sealed class FakeHost : ISpecHost
{
    public Dictionary<string, string> Profiles { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, HostDevice> Devices { get; } = new(StringComparer.Ordinal);
    public List<HostDevice> HostDevices { get; } = [];
    public List<string> Reads { get; } = [];

    public string ReadSeccompProfile(string path)
    {
        Reads.Add(path);
        return Profiles.TryGetValue(path, out var text) ? text : throw new FileNotFoundException($"Could not find file '{path}'.");
    }

    public HostDevice? StatDevice(string hostPath) => Devices.GetValueOrDefault(hostPath);

    public IReadOnlyList<HostDevice> ListHostDevices() => HostDevices;

    /// <summary>The mount every host path is on (shared unless a test says otherwise).</summary>
    public MountEntry? HostMount { get; set; } = new(1, "/", Shared: true, Slave: false);

    public MountEntry? MountOf(string path) => HostMount;
}

/// <summary>A typical pod and container, with helpers to change one thing at a time.</summary>
internal static class Fx
{
    public const string Passwd = """
        root:x:0:0:root:/root:/bin/sh
        # a comment
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
        app:x:1000:1000:App:/home/app:/bin/sh
        broken line
        nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
        """;

    public const string Group = """
        root:x:0:
        staff:x:50:app,other
        app:x:1000:
        video:x:44:app
        audio:x:29:root
        nogroup:x:65534:
        """;

    public const string DefaultProfile = """{ "defaultAction": "SCMP_ACT_ERRNO", "syscalls": [ { "names": ["read", "write"], "action": "SCMP_ACT_ALLOW" } ] }""";

    public const string LocalProfile = """{ "defaultAction": "SCMP_ACT_LOG" }""";

    public static ImageConfig Image(
        string? user = null,
        string[]? env = null,
        string[]? entrypoint = null,
        string[]? cmd = null,
        string? workingDir = null,
        string? stopSignal = null) =>
        new("linux", "amd64", null, null, [], user, env ?? ["PATH=/usr/bin:/bin"], entrypoint ?? [], cmd ?? ["/bin/sh"], workingDir,
            stopSignal, new Dictionary<string, string>(), [], []);

    public static ContainerSpecContext Context() => new()
    {
        PodId = "pod1",
        ContainerId = "ctr1",
        RootfsPath = "/var/lib/nacelle/snapshots/ctr1/rootfs",
        NetworkNamespacePath = "/run/nacelle/ns/pod1/net",
        IpcNamespacePath = "/run/nacelle/ns/pod1/ipc",
        UtsNamespacePath = "/run/nacelle/ns/pod1/uts",
        CgroupsPath = "/kubepods/burstable/podabc/ctr1",
        CgroupV2 = true,
        Hostname = "web-0",
        NodeHostname = "node-1",
        HostsPath = "/run/nacelle/pods/pod1/hosts",
        ResolvConfPath = "/run/nacelle/pods/pod1/resolv.conf",
        HostnamePath = "/run/nacelle/pods/pod1/hostname",
        ShmPath = "/run/nacelle/pods/pod1/shm",
        LogDirectory = "/var/log/pods/default_web-0_uid1",
        ImagePasswd = Passwd,
        ImageGroup = Group,
        DefaultSeccompProfile = _ => DefaultProfile,
    };

    public static PodSandboxConfig PodConfig(bool privileged = false, NamespaceMode network = NamespaceMode.Pod) => new()
    {
        Metadata = new PodSandboxMetadata { Name = "web-0", Namespace = "default", Uid = "uid1", Attempt = 0 },
        Hostname = "web-0",
        LogDirectory = "/var/log/pods/default_web-0_uid1",
        Linux = new LinuxPodSandboxConfig
        {
            CgroupParent = "/kubepods/burstable/podabc",
            SecurityContext = new LinuxSandboxSecurityContext
            {
                Privileged = privileged,
                NamespaceOptions = new NamespaceOption { Network = network, Pid = NamespaceMode.Container, Ipc = NamespaceMode.Pod },
            },
        },
    };

    public static ContainerConfig Config(Action<LinuxContainerSecurityContext>? security = null)
    {
        var config = new ContainerConfig
        {
            Metadata = new ContainerMetadata { Name = "app", Attempt = 0 },
            Image = new ImageSpec { Image = "docker.io/library/busybox:latest" },
            LogPath = "app/0.log",
            Linux = new LinuxContainerConfig
            {
                Resources = new LinuxContainerResources(),
                SecurityContext = new LinuxContainerSecurityContext
                {
                    NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Pod, Pid = NamespaceMode.Container, Ipc = NamespaceMode.Pod },
                },
            },
        };
        security?.Invoke(config.Linux.SecurityContext);
        return config;
    }

    public static KeyValue Env(string key, string value) => new() { Key = key, Value = ByteString.CopyFromUtf8(value) };

    public static ContainerSpec Translate(
        ContainerConfig? config = null,
        ImageConfig? image = null,
        ContainerSpecContext? context = null,
        PodSandboxConfig? sandbox = null,
        FakeHost? host = null) =>
        Build(config ?? Config(), sandbox ?? PodConfig(), image ?? Image(), context ?? Context(), host ?? new FakeHost());

    /// <summary>CreateContainer's way: the CRI config mapped into the domain request, then the spec built from it.</summary>
    private static ContainerSpec Build(ContainerConfig config, PodSandboxConfig sandbox, ImageConfig image, ContainerSpecContext context, FakeHost host) =>
        new ContainerSpecBuilder(host).Build(ContainerRequestMapping.ToCreateRequest(context.PodId, config, sandbox), image, context);

    public static RuntimeSpec Spec(
        ContainerConfig? config = null,
        ImageConfig? image = null,
        ContainerSpecContext? context = null,
        PodSandboxConfig? sandbox = null,
        FakeHost? host = null) => Translate(config, image, context, sandbox, host).Spec;

    /// <summary>Asserts an InvalidArgument whose message contains each of <paramref name="fragments"/>.</summary>
    public static NacelleException Refused(Action act, params string[] fragments) => Refused(ErrorKind.InvalidArgument, act, fragments);

    public static NacelleException Refused(ErrorKind kind, Action act, params string[] fragments)
    {
        var e = Assert.Throws<NacelleException>(act);
        Assert.Equal(kind, e.Kind);
        foreach (var fragment in fragments)
        {
            Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
        }

        return e;
    }

    public static string Env(RuntimeSpec spec, string key) =>
        spec.Process!.Env.Single(e => e.StartsWith(key + "=", StringComparison.Ordinal))[(key.Length + 1)..];

    public static SpecMount Mount(RuntimeSpec spec, string destination) => spec.Mounts.Single(m => m.Destination == destination);
}
