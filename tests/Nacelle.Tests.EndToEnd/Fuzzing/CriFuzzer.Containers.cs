using Google.Protobuf;
using Grpc.Core;
using Runtime.V1;

namespace Nacelle.Tests.EndToEnd.Fuzzing;

/// <summary>The container rpcs: CreateContainer (valid busybox containers and hostile configs), Start, Stop, Remove,
/// Status, UpdateContainerResources, ReopenContainerLog, ExecSync, and the streaming rpcs' requests.</summary>
internal sealed partial class CriFuzzer
{
    private static readonly StatusCode[] Refused =
        [StatusCode.InvalidArgument, StatusCode.FailedPrecondition, StatusCode.NotFound, StatusCode.PermissionDenied, StatusCode.ResourceExhausted];

    /// <summary>Commands that end by themselves, with what they print.</summary>
    private static readonly (string[] Command, string? Stdout)[] ShortCommands =
    [
        (["true"], ""),
        (["false"], ""),
        (["echo", "fuzz"], "fuzz\n"),
        (["sh", "-c", "echo hello; echo err >&2"], "hello\n"),
        (["sh", "-c", "yes fuzz | head -c 200000 | wc -c"], "200000\n"),
        (["id", "-u"], null),
        (["ls", "/"], null),
        (["cat", "/proc/self/status"], null),
    ];

    private (ContainerConfig Config, bool LongRunning) ValidContainer(FuzzPod pod)
    {
        var name = V.Name("ctr");
        var longRunning = V.Chance(0.7);
        var config = new ContainerConfig
        {
            Metadata = new ContainerMetadata { Name = name, Attempt = (uint)V.Int(0, 2) },
            Image = new ImageSpec { Image = target.Image },
            LogPath = $"{name}/0.log",
            Labels = { ["fuzz"] = "yes", ["container"] = name },
            Annotations = { ["note"] = "fuzz" },
            Envs = { new KeyValue { Key = "FUZZ", Value = Utf8("yes") } },
            Linux = new LinuxContainerConfig
            {
                SecurityContext = new LinuxContainerSecurityContext
                {
                    Seccomp = new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.RuntimeDefault },
                    NoNewPrivs = V.Chance(0.5),
                    ReadonlyRootfs = V.Chance(0.2),
                },
            },
        };
        config.Command.Add(longRunning ? ["sleep", "100000"] : V.Pick(ShortCommands).Command);
        var sc = config.Linux.SecurityContext;
        if (V.Chance(0.3))
        {
            sc.RunAsUser = new Int64Value { Value = V.Pick([0, 1000, 65534]) };
        }

        if (V.Chance(0.3))
        {
            sc.Capabilities = new Capability { DropCapabilities = { "ALL" }, AddCapabilities = { "NET_BIND_SERVICE" } };
        }

        if (V.Chance(0.3))
        {
            config.Linux.Resources = new LinuxContainerResources
            {
                CpuShares = 512, CpuPeriod = 100_000, CpuQuota = 50_000, MemoryLimitInBytes = 256L << 20, OomScoreAdj = 500,
            };
        }

        if (V.Chance(0.3))
        {
            var volume = Path.Combine(target.VolumeBase, name);
            Directory.CreateDirectory(volume);
            config.Mounts.Add(new Mount { ContainerPath = "/data", HostPath = volume, Readonly = V.Chance(0.5) });
        }

        if (pod.Config.Linux?.SecurityContext?.NamespaceOptions?.Pid == NamespaceMode.Pod || V.Chance(0.2))
        {
            sc.NamespaceOptions = new NamespaceOption
            {
                Network = pod.HostNetwork ? NamespaceMode.Node : NamespaceMode.Pod,
                Pid = pod.Config.Linux?.SecurityContext?.NamespaceOptions?.Pid ?? NamespaceMode.Container,
                Ipc = NamespaceMode.Pod,
            };
        }

        return (config, longRunning);
    }

    private FuzzCall CreateContainerCall()
    {
        var ready = _model.LivePods.Where(p => p.Ready && !p.Uncertain).ToList();
        FuzzPod? pod;
        string podId;
        string podWhat;
        if (ready.Count > 0 && V.Chance(0.85))
        {
            pod = V.Pick(ready);
            podId = pod.Id;
            podWhat = "ready pod";
        }
        else
        {
            (podId, _, pod, podWhat) = PodId();
        }

        if (pod is null)
        {
            var any = _model.LivePods.ToList();
            var (config, _) = ValidContainer(any.Count > 0 ? V.Pick(any) : new FuzzPod("", ValidPodConfig(true)));
            return CreateContainer(new CreateContainerRequest { PodSandboxId = podId, Config = config, SandboxConfig = ValidPodConfig(true) },
                null, podWhat, expectOk: false, longRunning: false, mustBe: null);
        }

        var (valid, longRunning) = ValidContainer(pod);
        var request = new CreateContainerRequest { PodSandboxId = podId, Config = valid, SandboxConfig = pod.Config };
        var certain = pod.Ready && !pod.Uncertain && _model.ImagePresent;
        if (V.Chance(0.45) && _model.LiveContainers.Count() < MaxLiveContainers)
        {
            return CreateContainer(request, pod, $"valid container in {podWhat}", expectOk: certain, longRunning,
                mustBe: !pod.Ready && !pod.Uncertain ? [StatusCode.FailedPrecondition, StatusCode.NotFound] : null, valid: true);
        }

        var mutations = V.Chance(0.75) ? 1 : V.Int(2, 4);
        var what = new List<string>();
        IReadOnlyList<StatusCode>? mustBe = null;
        for (var i = 0; i < mutations; i++)
        {
            var (description, expected) = MutateContainer(request, pod);
            what.Add(description);
            // A pod that is not ready (or may not be), or an image that is not present, is refused for that first.
            mustBe = mutations == 1 && certain ? expected : null;
        }

        var call = CreateContainer(request, pod, string.Join(", ", what), expectOk: false, longRunning: false, mustBe);
        // Image volumes, id-mapped mounts and CDI devices are features nacelle refuses as not supported.
        return request.Config?.Mounts.Any(m => m.Image is not null || m.UidMappings.Count > 0 || m.GidMappings.Count > 0) == true
               || request.Config?.CDIDevices.Count > 0
            ? call with { MayBeUnsupported = true }
            : call;
    }

    /// <summary>A valid container for a burst (the pod may be stopped or removed by a call beside it).</summary>
    private FuzzCall CreateContainerValid(FuzzPod pod)
    {
        var (config, longRunning) = ValidContainer(pod);
        return CreateContainer(new CreateContainerRequest { PodSandboxId = pod.Id, Config = config, SandboxConfig = pod.Config }, pod,
            "valid container, concurrently", expectOk: false, longRunning, mustBe: null, valid: true);
    }

    private FuzzCall CreateContainer(CreateContainerRequest request, FuzzPod? pod, string what, bool expectOk, bool longRunning,
        IReadOnlyList<StatusCode>? mustBe, bool valid = false) => new()
    {
        Service = FuzzCall.RuntimeService,
        Rpc = "CreateContainer",
        Request = request,
        Parser = CreateContainerResponse.Parser,
        What = what,
        Pod = pod,
        ExpectOk = expectOk,
        MustBe = mustBe,
        Deadline = TimeSpan.FromSeconds(90),
        OnOk = response =>
        {
            var id = ((CreateContainerResponse)response!).ContainerId;
            // The pod the id names (a request may carry one pod's config to another).
            var named = _model.PodsMatching(request.PodSandboxId);
            var owner = named.Count == 1 ? named[0] : null;
            if (owner is null)
            {
                Violation($"CreateContainer [{what}] answered OK for pod id {Short(request.PodSandboxId, 80)} that names no live pod", "CreateContainer");
                _model.UnknownCreates = true;
                return;
            }

            var logPath = request.Config?.LogPath ?? "";
            var logDirectory = owner.Config.LogDirectory;
            var logFile = logPath.Length > 0 && logDirectory.Length > 0 ? Path.Join(logDirectory, logPath) : null;
            _model.AddContainer(id, owner, request.Config?.Metadata?.Name ?? "", longRunning, logFile, valid && owner == pod,
                request.Config?.Metadata?.Attempt ?? 0);
            foreach (var why in RefusalsMissed(request, owner))
            {
                Violation($"CreateContainer [{what}] accepted a config it must refuse: {why}", "CreateContainer");
            }
        },
        OnUnknown = () => _model.UnknownCreates = true,
    };

    /// <summary>What an accepted CreateContainer must not have had.</summary>
    private IEnumerable<string> RefusalsMissed(CreateContainerRequest request, FuzzPod pod)
    {
        var config = request.Config;
        if (config is null)
        {
            yield break;
        }

        if (config.LogPath.Length > 0 && (config.LogPath.StartsWith('/') || config.LogPath.Split('/').Contains("..") || config.LogPath.Contains('\0', StringComparison.Ordinal)))
        {
            yield return $"log_path {Short(config.LogPath, 80)}";
        }

        foreach (var mount in config.Mounts)
        {
            // '.' and empty components are cleaned away (as containerd's filepath.Clean); '..', NUL and relative paths
            // must be refused.
            if (mount.ContainerPath.Length > 0 && (!mount.ContainerPath.StartsWith('/') || mount.ContainerPath.Contains('\0', StringComparison.Ordinal)
                                                   || mount.ContainerPath.Split('/').Contains("..")))
            {
                yield return $"mount container_path {Short(mount.ContainerPath, 80)}";
            }

            if (mount.HostPath.Length > 0 && mount.Image is null && !mount.HostPath.StartsWith('/'))
            {
                yield return $"relative mount host_path {Short(mount.HostPath, 80)}";
            }

            if (mount.RecursiveReadOnly && !mount.Readonly)
            {
                yield return "recursive_read_only without readonly";
            }
        }

        foreach (var device in config.Devices)
        {
            if (!device.HostPath.StartsWith("/dev/", StringComparison.Ordinal) || device.HostPath.Split('/').Contains(".."))
            {
                yield return $"device host_path {Short(device.HostPath, 80)}";
            }
        }

        var strings = config.Command.Concat(config.Args).Append(config.WorkingDir).Concat(config.Envs.Select(e => e.Key));
        if (strings.Any(s => s.Contains('\0', StringComparison.Ordinal)))
        {
            yield return "a NUL in argv, env or working_dir";
        }

        var sc = config.Linux?.SecurityContext;
        if (sc?.Privileged == true && pod.Config.Linux?.SecurityContext?.Privileged != true)
        {
            yield return "a privileged container in a pod that is not privileged";
        }

        if (sc?.NamespaceOptions is { Pid: NamespaceMode.Target, TargetId: { Length: > 0 } target }
            && _model.LiveContainers.FirstOrDefault(c => c.Id.StartsWith(target, StringComparison.Ordinal)) is { } joined && joined.Pod != pod)
        {
            yield return $"the pid namespace of {joined}, which is in another pod";
        }

        if (!Enum.IsDefined(config.StopSignal))
        {
            yield return $"stop_signal {(int)config.StopSignal}";
        }
    }

    private (string What, IReadOnlyList<StatusCode>? MustBe) MutateContainer(CreateContainerRequest request, FuzzPod pod)
    {
        var config = request.Config ?? new ContainerConfig();
        var linux = config.Linux ??= new LinuxContainerConfig();
        var sc = linux.SecurityContext ??= new LinuxContainerSecurityContext();
        switch (V.Int(0, 40))
        {
            case 0:
                request.Config = null;
                return ("no config", Invalid);
            case 1:
                config.Metadata = null;
                return ("no metadata", Invalid);
            case 2:
                config.Metadata ??= new ContainerMetadata();
                config.Metadata.Name = "";
                return ("empty name", Invalid);
            case 3:
                config.Metadata ??= new ContainerMetadata();
                config.Metadata.Name = V.HostileString();
                return ("hostile name", null);
            case 4 when _model.LiveContainers.FirstOrDefault(c => c.Pod == pod && !c.Uncertain && c.Name.Length > 0) is { } existing:
                config.Metadata = new ContainerMetadata
                {
                    Name = existing.Name,
                    Attempt = existing.Attempt,
                };
                return ($"the name of {existing}", [StatusCode.AlreadyExists]);
            case 5:
                config.Image = new ImageSpec { Image = V.Pick([$"{target.RegistryHost}/e2e/none:{V.Marker}", "sha256:" + new string('0', 64), "busybox:nope"]) };
                return ("an image that is not on the node", NotFound);
            case 6:
                config.Image = V.Chance(0.2) ? null : new ImageSpec { Image = V.HostileString(), Annotations = { V.HostileMap() } };
                return ("hostile image", null);
            case 7:
                config.Command.Clear();
                config.Command.Add("echo");
                config.Command.Add(FuzzValues.Many(V.Pick([5000, 10_000, 200_000]), i => "a"));
                return ("a huge argv", null);
            case 8:
                config.Args.Add(V.Pick([new string('x', 200_000), new string('x', FuzzValues.OneMegabyte), "a\0b"]));
                return ("a huge or NUL argument", null);
            case 9:
                config.Command.Clear();
                config.Command.Add(V.Pick(["/nonexistent", "", "/", "/etc/passwd", "../../bin/sh", "\0", $"/{V.Marker}"]));
                return ("a command that cannot run", null);
            case 10:
                config.Command.Clear();
                config.Args.Clear();
                return ("the image's default command", null);
            case 11:
                config.WorkingDir = V.HostilePath("/tmp");
                return ("hostile working_dir", null);
            case 12:
                config.Envs.Add(V.Int(0, 6) switch
                {
                    0 => Enumerable.Range(0, V.Pick([5000, 100_000])).Select(i => new KeyValue { Key = $"E{i}", Value = Utf8("v") }),
                    1 => [new KeyValue { Key = "A=B", Value = Utf8("c") }],
                    2 => [new KeyValue { Key = "NUL\0", Value = Utf8("v\0v") }],
                    3 => [new KeyValue { Key = "BAD", Value = ByteString.CopyFrom(FuzzValues.InvalidUtf8) }],
                    4 => [new KeyValue { Key = "", Value = Utf8("empty") }],
                    _ => [new KeyValue { Key = "BIG", Value = Utf8(new string('v', FuzzValues.OneMegabyte)) }],
                });
                return ("hostile envs", null);
            case 13:
                config.Mounts.Add(new Mount
                {
                    ContainerPath = V.Pick(["relative", "/a/../../../etc", "/proc", "/", "/dev/null", "/data\0x", "", "/sys/fs/cgroup", V.HostilePath("/mnt")]),
                    HostPath = Volume(),
                    Readonly = V.Chance(0.5),
                });
                return ("hostile mount container_path", null);
            case 14:
                config.Mounts.Add(new Mount
                {
                    ContainerPath = "/data",
                    HostPath = V.Pick([
                        $"{target.VolumeBase}/{V.Marker}-missing", $"{V.Marker}-relative", $"{target.VolumeBase}/a/../b-{V.Marker}",
                        $"{target.VolumeBase}/nul\0{V.Marker}", "/proc/self/root", "/", "/etc", "/run", "/dev", "/sys",
                    ]),
                    Readonly = V.Chance(0.5),
                    Propagation = V.Pick([MountPropagation.PropagationPrivate, MountPropagation.PropagationHostToContainer, MountPropagation.PropagationBidirectional, V.UnknownEnum<MountPropagation>()]),
                    RecursiveReadOnly = V.Chance(0.3),
                    SelinuxRelabel = V.Chance(0.3),
                });
                return ("hostile mount host_path", null);
            case 15:
                config.Mounts.Add(new Mount
                {
                    ContainerPath = "/idmapped",
                    HostPath = Volume(),
                    UidMappings = { HostileMappings() },
                    GidMappings = { HostileMappings() },
                });
                return ("id-mapped mount", null);
            case 16:
                config.Mounts.Add(new Mount { ContainerPath = "/image", Image = new ImageSpec { Image = V.Pick([target.Image, V.HostileString(), "none:none"]) }, ImageSubPath = V.HostilePath("/") });
                return ("image volume", null);
            case 17:
                config.Mounts.Add(Enumerable.Range(0, 3000).Select(i => new Mount { ContainerPath = $"/m{i}", HostPath = Volume() }));
                return ("3,000 mounts", null);
            case 18:
                config.Devices.Add(new Device
                {
                    HostPath = V.Pick(["/etc/passwd", "/dev/../etc/shadow", "relative", "/dev/null\0", "", "/proc/self/mem", $"/dev/{V.Marker}", "/dev"]),
                    ContainerPath = "/dev/fuzz",
                    Permissions = "rwm",
                });
                return ("a device that is not one", null);
            case 19:
                config.Devices.Add(new Device
                {
                    HostPath = "/dev/null",
                    ContainerPath = V.Pick(["relative", "/dev/../etc/passwd", "/", "", "/proc/sysrq-trigger", "/dev/null", V.HostileString()]),
                    Permissions = V.Pick(["", "xyz", "rwmrwm", "r", V.HostileString()]),
                });
                return ("hostile device paths and permissions", null);
            case 20:
                linux.Resources = HostileResources();
                return ("hostile resources", null);
            case 21:
                sc.Capabilities = new Capability
                {
                    AddCapabilities = { V.Pick<string[]>([["CAP_FOO"], [""], ["NUL\0"], ["ALL"], ["SYS_ADMIN", "sys_admin", "cap_sys_admin"], [.. FuzzValues.Many(10_000, i => $"CAP_{i}")]]) },
                    DropCapabilities = { V.Pick<string[]>([["ALL"], ["NOPE"], []]) },
                    AddAmbientCapabilities = { V.Pick<string[]>([["NET_RAW"], ["SYS_ADMIN"], ["BOGUS"], []]) },
                };
                return ("hostile capabilities", null);
            case 22:
                sc.RunAsUser = V.Chance(0.7) ? new Int64Value { Value = V.HostileLong() } : null;
                sc.RunAsGroup = new Int64Value { Value = V.HostileLong() };
                sc.RunAsUsername = V.Pick(["", "root", "nobody", "nosuchuser", "root:x", V.HostileString()]);
                sc.SupplementalGroups.Add(Enumerable.Range(0, V.Pick([1, 3, 70_000])).Select(_ => V.HostileLong()));
                sc.SupplementalGroupsPolicy = V.Chance(0.5) ? SupplementalGroupsPolicy.Strict : V.UnknownEnum<SupplementalGroupsPolicy>();
                return ("hostile user and groups", null);
            case 23:
                sc.MaskedPaths.Add(V.Pick<string[]>([["relative"], ["/a/../../etc/passwd"], ["/\0"], [""], ["/"], [.. FuzzValues.Many(10_000, i => $"/m{i}")], [V.HostileString()]]));
                sc.ReadonlyPaths.Add(V.Pick<string[]>([["relative"], ["/"], ["/proc/../.."], [V.HostileString()]]));
                return ("hostile masked and read-only paths", null);
            case 24:
                sc.Seccomp = HostileProfile();
                sc.Apparmor = HostileProfile();
#pragma warning disable CS0612 // deprecated, still sent by older kubelets
                sc.SeccompProfilePath = V.Pick(["localhost/../../../etc/passwd", "localhost//etc/shadow", "runtime/default", "unconfined", "docker/default", "", V.HostileString()]);
                sc.ApparmorProfile = V.Pick(["runtime/default", "localhost/../x", "unconfined", V.HostileString()]);
#pragma warning restore CS0612
                return ("hostile seccomp and apparmor profiles", null);
            case 25:
                sc.SelinuxOptions = new SELinuxOption { User = V.HostileString(), Role = V.HostileString(), Type = "spc_t", Level = "s0:c1,c2\n" };
                return ("selinux options", null);
            case 26:
                sc.Privileged = true;
                return pod.Config.Linux?.SecurityContext?.Privileged == true
                    ? ("privileged container in a privileged pod", null)
                    : ("privileged container in a pod that is not privileged", Refused);
            case 27 when _model.LiveContainers.FirstOrDefault(c => c.Pod != pod) is { } other:
                sc.NamespaceOptions = new NamespaceOption { Pid = NamespaceMode.Target, TargetId = other.Id, Network = pod.HostNetwork ? NamespaceMode.Node : NamespaceMode.Pod };
                return ($"the pid namespace of {other}, in another pod", Refused);
            case 28:
                sc.NamespaceOptions = new NamespaceOption
                {
                    Pid = V.Pick([NamespaceMode.Target, NamespaceMode.Node, V.UnknownEnum<NamespaceMode>()]),
                    Network = V.Pick([NamespaceMode.Node, NamespaceMode.Container, V.UnknownEnum<NamespaceMode>()]),
                    Ipc = V.Pick([NamespaceMode.Node, NamespaceMode.Container, NamespaceMode.Target, V.UnknownEnum<NamespaceMode>()]),
                    TargetId = V.Chance(0.5) && _model.LiveContainers.Any(c => c.Pod == pod)
                        ? V.Pick(_model.LiveContainers.Where(c => c.Pod == pod).ToList()).Id[..V.Pick([3, 64])]
                        : V.HostileString(),
                    UsernsOptions = V.Chance(0.3) ? new UserNamespace { Mode = NamespaceMode.Pod, Uids = { HostileMappings() }, Gids = { HostileMappings() } } : null,
                };
                return ("hostile namespace options", null);
            case 29:
                config.LogPath = V.Pick([$"/tmp/{V.Marker}-abs.log", $"/etc/{V.Marker}.log"]);
                return ("absolute log_path", Invalid);
            case 30:
                config.LogPath = V.Pick([$"../{V.Marker}-up.log", $"a/../../{V.Marker}.log", $"../../../../../../tmp/{V.Marker}.log"]);
                return ("log_path leaving the log directory", Invalid);
            case 31:
                config.LogPath = V.Pick(["a\0b.log", new string('l', 5000), "", "dir/", "./x.log", "a//b.log", $"{string.Concat(Enumerable.Repeat("d/", 100))}x.log", V.HostileString()]);
                return ("odd log_path", null);
            case 32:
                request.SandboxConfig = V.Int(0, 3) switch
                {
                    0 => null,
                    1 => _model.LivePods.FirstOrDefault(p => p != pod)?.Config ?? ValidPodConfig(false),
                    _ => new PodSandboxConfig(pod.Config) { LogDirectory = HostileLogDirectory() },
                };
                return ("a sandbox_config that is not the pod's", null);
            case 33:
                config.StopSignal = V.UnknownEnum<Signal>();
                return ("unknown stop_signal", Invalid);
            case 34:
                config.Tty = V.Chance(0.5);
                config.Stdin = V.Chance(0.5);
                config.StdinOnce = V.Chance(0.5);
                config.StopSignal = V.Pick([Signal.Sigkill, Signal.Sigstop, Signal.Sigrtmax, Signal.Sigchld]);
                return ("tty, stdin and an odd stop signal", null);
            case 35:
                config.CDIDevices.Add(new CDIDevice { Name = V.Pick(["vendor.com/class=name", "", "../../x", V.HostileString()]) });
                return ("a CDI device", null);
            case 36:
                config.Windows = new WindowsContainerConfig { Resources = new WindowsContainerResources { CpuCount = V.HostileLong() } };
                return ("windows config", null);
            case 37:
                FuzzValues.SetAll(config.Labels, V.HostileMap());
                FuzzValues.SetAll(config.Annotations, V.HostileMap());
                return ("hostile labels and annotations", null);
            case 38 when _model.LivePods.FirstOrDefault(p => p != pod && p.Ready && !p.Uncertain) is { } other:
                request.PodSandboxId = other.Id;
                return ($"the sandbox_config of {pod} sent to {other}", null);
            default:
                config.Metadata ??= new ContainerMetadata();
                config.Metadata.Attempt = V.HostileUInt();
                config.Image ??= new ImageSpec(); // an earlier mutation of the same request may have dropped it
                config.Image.Image = V.Chance(0.5) ? target.Image.Replace(":fuzz", "", StringComparison.Ordinal) + ":fuzz" : target.Image;
                return ("odd attempt", null);
        }
    }

    private string Volume()
    {
        var path = Path.Combine(target.VolumeBase, "shared");
        Directory.CreateDirectory(path);
        return path;
    }

    // ------------------------------------------------------------------ lifecycle

    private FuzzContainer? PickContainer(Func<FuzzContainer, bool> where)
    {
        var candidates = _model.LiveContainers.Where(c => !c.Uncertain && where(c)).ToList();
        return candidates.Count > 0 ? V.Pick(candidates) : null;
    }

    private FuzzCall StartContainerCall()
    {
        if (V.Chance(0.75) && PickContainer(c => c.State == FuzzContainerState.Created) is { } created)
        {
            return StartContainer(created.Id, created, "created container");
        }

        var (id, _, container, what) = ContainerId();
        return StartContainer(id, container, what);
    }

    private FuzzCall StartContainer(string id, FuzzContainer? container, string what) => new()
    {
        Service = FuzzCall.RuntimeService,
        Rpc = "StartContainer",
        Request = new StartContainerRequest { ContainerId = id },
        Parser = StartContainerResponse.Parser,
        What = what,
        Pod = container?.Pod,
        ExpectOk = container is { State: FuzzContainerState.Created, Uncertain: false, Valid: true, Pod.Ready: true, Pod.Uncertain: false },
        Deadline = TimeSpan.FromSeconds(60),
        OnOk = _ =>
        {
            if (container is null)
            {
                return;
            }

            if (container.State != FuzzContainerState.Created)
            {
                Violation($"StartContainer of {container} in state {container.State} answered OK", "StartContainer");
            }

            container.State = FuzzContainerState.Running;
        },
        // A created container whose start fails is exited (StartError, as containerd): the spawn happens at start.
        OnError = _ =>
        {
            if (container is { State: FuzzContainerState.Created })
            {
                container.State = FuzzContainerState.Exited;
            }
        },
        OnUnknown = () =>
        {
            if (container is not null)
            {
                container.Uncertain = true;
            }
        },
    };

    private FuzzCall StopContainerCall()
    {
        if (V.Chance(0.7) && PickContainer(c => c.State == FuzzContainerState.Running) is { } running)
        {
            var timeout = V.Chance(0.8) ? V.Int(0, 3) : V.HostileLong();
            return StopContainer(running.Id, running, timeout, $"running container, timeout {timeout}");
        }

        var (id, _, container, what) = ContainerId();
        return StopContainer(id, container, V.Int(-2, 3), what);
    }

    private FuzzCall StopContainer(string id, FuzzContainer? container, long timeout, string what) => new()
    {
        Service = FuzzCall.RuntimeService,
        Rpc = "StopContainer",
        Request = new StopContainerRequest { ContainerId = id, Timeout = timeout },
        Parser = StopContainerResponse.Parser,
        What = what,
        Pod = container?.Pod,
        // A long grace period for a process that ignores SIGTERM is the caller's wish: the call may outlive its deadline.
        MayHang = timeout > 5,
        Deadline = timeout > 5 ? TimeSpan.FromSeconds(8) : TimeSpan.FromSeconds(60),
        OnOk = _ =>
        {
            if (container is not null && container.State != FuzzContainerState.Created)
            {
                container.State = FuzzContainerState.Exited;
            }
            else if (container is not null)
            {
                container.Uncertain = true;
            }
        },
        OnUnknown = () =>
        {
            if (container is not null)
            {
                container.Uncertain = true;
            }
        },
    };

    private FuzzCall RemoveContainerCall()
    {
        if (V.Chance(0.6) && PickContainer(c => c.State != FuzzContainerState.Running) is { } stopped)
        {
            return RemoveContainer(stopped.Id, stopped, "stopped container");
        }

        var (id, kind, container, what) = ContainerId();
        var call = RemoveContainer(id, container, what);
        // The CRI contract: removing what does not exist succeeds.
        return kind is IdKind.Removed or IdKind.Unknown && ModelCertain ? call with { MustBe = Ok } : call;
    }

    private FuzzCall RemoveContainer(string id, FuzzContainer? container, string what) => new()
    {
        Service = FuzzCall.RuntimeService,
        Rpc = "RemoveContainer",
        Request = new RemoveContainerRequest { ContainerId = id },
        Parser = RemoveContainerResponse.Parser,
        What = what,
        Pod = container?.Pod,
        ExpectOk = container is { State: not FuzzContainerState.Running, Uncertain: false } && what == "stopped container",
        Deadline = TimeSpan.FromSeconds(60),
        OnOk = _ =>
        {
            if (container is not null)
            {
                container.Removed = true;
            }
        },
        OnUnknown = () =>
        {
            if (container is not null)
            {
                container.Uncertain = true;
            }
        },
    };

    private FuzzCall ContainerStatusCall()
    {
        var (id, kind, container, what) = ContainerId();
        return new FuzzCall
        {
            Service = FuzzCall.RuntimeService,
            Rpc = "ContainerStatus",
            Request = new ContainerStatusRequest { ContainerId = id, Verbose = V.Chance(0.5) },
            Parser = ContainerStatusResponse.Parser,
            What = what,
            MustBe = kind switch
            {
                IdKind.Removed or IdKind.Unknown when ModelCertain => NotFound,
                IdKind.Empty => Invalid,
                IdKind.Live when container is { Uncertain: false } => Ok,
                _ => null,
            },
        };
    }

    private FuzzCall UpdateResourcesCall()
    {
        var valid = V.Chance(0.4);
        var running = PickContainer(c => c.State == FuzzContainerState.Running);
        var (id, _, container, what) = valid && running is not null ? (running.Id, IdKind.Live, running, "running container") : ContainerId();
        var resources = valid
            ? new LinuxContainerResources { CpuShares = V.Pick([2, 256, 1024]), CpuPeriod = 100_000, CpuQuota = V.Pick([0, 20_000, 200_000]), MemoryLimitInBytes = V.Pick([0L, 256L << 20]) }
            : HostileResources();
        return new FuzzCall
        {
            Service = FuzzCall.RuntimeService,
            Rpc = "UpdateContainerResources",
            Request = new UpdateContainerResourcesRequest
            {
                ContainerId = id,
                Linux = V.Chance(0.1) ? null : resources,
                Windows = V.Chance(0.1) ? new WindowsContainerResources { MemoryLimitInBytes = V.HostileLong() } : null,
                Annotations = { V.Chance(0.2) ? V.HostileMap() : [] },
            },
            Parser = UpdateContainerResourcesResponse.Parser,
            What = (valid ? "valid resources, " : "hostile resources, ") + what,
            Pod = container?.Pod,
            OnOk = _ =>
            {
                if (container is not null)
                {
                    container.MayHaveDied = true;
                }
            },
        };
    }

    private FuzzCall ReopenLogCall()
    {
        var (id, _, container, what) = ContainerId();
        return new FuzzCall
        {
            Service = FuzzCall.RuntimeService,
            Rpc = "ReopenContainerLog",
            Request = new ReopenContainerLogRequest { ContainerId = id },
            Parser = ReopenContainerLogResponse.Parser,
            What = what,
            Pod = container?.Pod,
            ExpectOk = container is { State: FuzzContainerState.Running, Uncertain: false, LongRunning: true, LogFile: not null, MayHaveDied: false },
        };
    }

    // ------------------------------------------------------------------ exec

    private FuzzCall ExecSyncCall()
    {
        var running = PickContainer(c => c.State == FuzzContainerState.Running && c.LongRunning && !c.MayHaveDied);
        if (running is not null && V.Chance(0.5))
        {
            return ExecSyncValid(running);
        }

        var (id, _, container, what) = running is not null && V.Chance(0.7) ? (running.Id, IdKind.Live, running, "running container") : ContainerId();
        long timeout = V.Chance(0.7) ? 10 : V.HostileLong();
        var (cmd, hang, description) = V.Int(0, 12) switch
        {
            0 => ((string[])[], false, "empty cmd"),
            1 => (["echo", .. FuzzValues.Many(V.Pick([5000, 10_000, 100_000]), _ => "a")], false, "huge argv"),
            2 => (["echo", new string('x', V.Pick([131_072, 200_000, FuzzValues.OneMegabyte]))], false, "huge argument"),
            3 => (["echo", "a\0b"], false, "NUL in an argument"),
            4 => ([V.Pick(["/nonexistent", "", "/", "/etc/passwd", "\0", V.Marker, "../../../bin/true"])], false, "a command that cannot run"),
            5 => (["sh", "-c", "yes fuzz | head -c 6000000"], false, "6 MB of output"),
            6 => (["sh", "-c", "yes fuzz | head -c 20000000 >&2"], false, "20 MB of stderr"),
            7 => (["sleep", "100000"], true, "a command that does not end"),
            8 => (["sh", "-c", "sleep 3 & exec true"], false, "a child outliving the command"),
            9 => (["env"], false, "env"),
            10 => (["cat", "/proc/self/status"], false, "status"),
            _ => ([V.HostileString(), V.HostileString()], false, "hostile argv"),
        };
        // A command that does not end, with no timeout or a long one, is left to the call's deadline.
        var mayHang = hang || timeout is < 0 or > 30 || cmd.Length == 0;
        return new FuzzCall
        {
            Service = FuzzCall.RuntimeService,
            Rpc = "ExecSync",
            Request = new ExecSyncRequest { ContainerId = id, Cmd = { cmd }, Timeout = hang && V.Chance(0.5) ? 1 : timeout },
            Parser = ExecSyncResponse.Parser,
            What = $"{description}, timeout {timeout}, {what}",
            Pod = container?.Pod,
            MayHang = mayHang,
            Deadline = mayHang ? TimeSpan.FromSeconds(6) : TimeSpan.FromSeconds(60),
        };
    }

    private FuzzCall ExecSyncValid(FuzzContainer container)
    {
        var (command, stdout) = V.Pick(ShortCommands);
        return new FuzzCall
        {
            Service = FuzzCall.RuntimeService,
            Rpc = "ExecSync",
            Request = new ExecSyncRequest { ContainerId = container.Id, Cmd = { command }, Timeout = 30 },
            Parser = ExecSyncResponse.Parser,
            What = $"valid exec {string.Join(' ', command)} in {container}",
            Pod = container.Pod,
            ExpectOk = container.State == FuzzContainerState.Running && !container.Uncertain && container.Pod.Ready,
            OnOk = response =>
            {
                var exec = (ExecSyncResponse)response!;
                var expectedExit = command[0] == "false" ? 1 : 0;
                if (exec.ExitCode != expectedExit || (stdout is not null && exec.Stdout.ToStringUtf8() != stdout))
                {
                    Violation($"ExecSync {string.Join(' ', command)} in {container} answered exit {exec.ExitCode}, stdout {Short(exec.Stdout.ToStringUtf8(), 80)}, stderr {Short(exec.Stderr.ToStringUtf8(), 200)}", "ExecSync");
                }
            },
        };
    }

    private FuzzCall StreamingCall()
    {
        var (id, _, container, what) = ContainerId();
        return V.Int(0, 3) switch
        {
            0 => new FuzzCall
            {
                Service = FuzzCall.RuntimeService, Rpc = "Exec", Parser = ExecResponse.Parser, What = what, Pod = container?.Pod,
                Request = new ExecRequest
                {
                    ContainerId = id, Cmd = { V.Chance(0.3) ? FuzzValues.Many(10_000, _ => "a") : ["sh"] },
                    Tty = V.Chance(0.5), Stdin = V.Chance(0.5), Stdout = V.Chance(0.5), Stderr = V.Chance(0.5),
                },
            },
            1 => new FuzzCall
            {
                Service = FuzzCall.RuntimeService, Rpc = "Attach", Parser = AttachResponse.Parser, What = what, Pod = container?.Pod,
                Request = new AttachRequest { ContainerId = id, Tty = V.Chance(0.5), Stdin = V.Chance(0.5), Stdout = V.Chance(0.5), Stderr = V.Chance(0.5) },
            },
            _ => new FuzzCall
            {
                Service = FuzzCall.RuntimeService, Rpc = "PortForward", Parser = PortForwardResponse.Parser, What = "ports",
                Request = new PortForwardRequest
                {
                    PodSandboxId = PodId().Id,
                    Port = { V.Chance(0.2) ? Enumerable.Range(0, 10_000) : [V.HostileInt(), 80, V.HostileInt()] },
                },
            },
        };
    }

    private FuzzCall CheckpointCall()
    {
        var (id, _, _, what) = ContainerId();
        return new FuzzCall
        {
            Service = FuzzCall.RuntimeService, Rpc = "CheckpointContainer", Parser = CheckpointContainerResponse.Parser, What = what,
            Request = new CheckpointContainerRequest { ContainerId = id, Location = V.HostilePath("/tmp"), Timeout = V.HostileLong() },
            // Oversized fields are refused by the request limits before any rpc runs, served or not.
            MustBe = [StatusCode.Unimplemented, StatusCode.InvalidArgument],
        };
    }
}
