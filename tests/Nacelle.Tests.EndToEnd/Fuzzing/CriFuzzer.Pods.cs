using Google.Protobuf;
using Grpc.Core;
using Runtime.V1;

namespace Nacelle.Tests.EndToEnd.Fuzzing;

/// <summary>The pod rpcs: RunPodSandbox (valid pods on the node or the test network, and hostile configs), Stop, Remove,
/// Status, stats and lists with generated ids and filters.</summary>
internal sealed partial class CriFuzzer
{
    private static readonly StatusCode[] Invalid = [StatusCode.InvalidArgument];
    private static readonly StatusCode[] Ok = [StatusCode.OK];
    private static readonly StatusCode[] NotFound = [StatusCode.NotFound];

    /// <summary>Node-wide sysctls (refused in any pod) with the value the host has now: were one applied, nothing changes.</summary>
    private static readonly Lazy<IReadOnlyDictionary<string, string>> NodeSysctls = new(() =>
        new[] { "kernel.panic", "vm.swappiness", "fs.file-max", "kernel.pid_max" }
            .Where(k => File.Exists("/proc/sys/" + k.Replace('.', '/')))
            .ToDictionary(k => k, k => File.ReadAllText("/proc/sys/" + k.Replace('.', '/')).Trim(), StringComparer.Ordinal));

    /// <summary>Network sysctls with the host's current values (refused for pods on the node's network).</summary>
    private static readonly Lazy<IReadOnlyDictionary<string, string>> HostNetSysctls = new(() =>
        new[] { "net.ipv4.ip_unprivileged_port_start", "net.ipv4.ping_group_range", "net.core.somaxconn" }
            .Where(k => File.Exists("/proc/sys/" + k.Replace('.', '/')))
            .ToDictionary(k => k, k => File.ReadAllText("/proc/sys/" + k.Replace('.', '/')).Trim(), StringComparer.Ordinal));

    /// <summary>The sysctls the host oracles compare before and after a run.</summary>
    public static IEnumerable<string> WatchedSysctls => NodeSysctls.Value.Keys.Concat(HostNetSysctls.Value.Keys);

    private PodSandboxConfig ValidPodConfig(bool hostNetwork)
    {
        var name = V.Name("pod");
        var config = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = name, Namespace = "fuzz", Uid = V.Hex(32), Attempt = (uint)V.Int(0, 3) },
            Hostname = hostNetwork ? "" : name,
            LogDirectory = Path.Combine(target.LogBase, name),
            Labels = { ["fuzz"] = "yes", ["name"] = name },
            Annotations = { ["note"] = "fuzz" },
            Linux = new LinuxPodSandboxConfig
            {
                // kubelet names a cgroup per pod; crictl users often share one or name none (nacelle's own then).
                CgroupParent = V.Int(0, 10) switch
                {
                    < 5 => $"{target.CgroupParent}/{name}",
                    < 8 => target.CgroupParent,
                    _ => "",
                },
                SecurityContext = new LinuxSandboxSecurityContext
                {
                    NamespaceOptions = new NamespaceOption
                    {
                        Network = hostNetwork ? NamespaceMode.Node : NamespaceMode.Pod,
                        Pid = V.Chance(0.7) ? NamespaceMode.Container : NamespaceMode.Pod,
                        Ipc = NamespaceMode.Pod,
                    },
                    Seccomp = new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.RuntimeDefault },
                },
            },
        };
        if (!hostNetwork && V.Chance(0.3))
        {
            config.Linux.Sysctls["net.ipv4.ip_unprivileged_port_start"] = "0";
        }

        if (V.Chance(0.3))
        {
            config.DnsConfig = new DNSConfig { Servers = { "10.96.0.10" }, Searches = { "fuzz.svc.cluster.local" }, Options = { "ndots:5" } };
        }

        if (V.Chance(0.3))
        {
            config.PortMappings.Add(new PortMapping { ContainerPort = 8080, Protocol = Protocol.Tcp });
        }

        return config;
    }

    private FuzzCall RunPodSandboxCall()
    {
        var hostNetwork = !target.PodNetwork || V.Chance(0.4);
        var config = ValidPodConfig(hostNetwork);
        var request = new RunPodSandboxRequest { Config = config };
        if (V.Chance(0.4) && _model.LivePods.Count() < MaxLivePods)
        {
            return RunPod(request, "valid " + (hostNetwork ? "host-network pod" : "pod on the test network"), expectOk: true, mustBe: null);
        }

        var mutations = V.Chance(0.75) ? 1 : V.Int(2, 4);
        var what = new List<string>();
        IReadOnlyList<StatusCode>? mustBe = null;
        for (var i = 0; i < mutations; i++)
        {
            var (description, expected) = MutatePod(request, hostNetwork);
            what.Add(description);
            mustBe = mutations == 1 ? expected : null;
        }

        return RunPod(request, string.Join(", ", what), expectOk: false, mustBe);
    }

    private FuzzCall RunPod(RunPodSandboxRequest request, string what, bool expectOk, IReadOnlyList<StatusCode>? mustBe)
    {
        if (request.Config?.Linux?.CgroupParent is { Length: > 0 } parent)
        {
            _model.RequestedCgroupParents.Add(parent);
        }

        return RunPodCall(request, what, expectOk, mustBe);
    }

    private FuzzCall RunPodCall(RunPodSandboxRequest request, string what, bool expectOk, IReadOnlyList<StatusCode>? mustBe) => new()
    {
        Service = FuzzCall.RuntimeService,
        Rpc = "RunPodSandbox",
        Request = request,
        Parser = RunPodSandboxResponse.Parser,
        What = what,
        ExpectOk = expectOk,
        MustBe = mustBe,
        Deadline = TimeSpan.FromSeconds(90),
        OnOk = response =>
        {
            var id = ((RunPodSandboxResponse)response!).PodSandboxId;
            _model.AddPod(id, request.Config ?? new PodSandboxConfig());
            foreach (var why in RefusalsMissed(request))
            {
                Violation($"RunPodSandbox [{what}] accepted a config it must refuse: {why}", "RunPodSandbox");
            }
        },
        OnUnknown = () => _model.UnknownCreates = true,
    };

    /// <summary>What an accepted RunPodSandbox config must not have had (each of these needs a refusal).</summary>
    private IEnumerable<string> RefusalsMissed(RunPodSandboxRequest request)
    {
        var config = request.Config;
        if (config?.LogDirectory is { Length: > 0 } logDirectory && !IsCleanAbsolute(logDirectory))
        {
            yield return $"log_directory {Short(logDirectory, 80)} is not a clean absolute path";
        }

        foreach (var port in config?.PortMappings ?? [])
        {
            if (port.HostPort != 0 && (port.HostPort is < 0 or > 65535 || port.ContainerPort is <= 0 or > 65535))
            {
                yield return $"port mapping {port.HostPort}->{port.ContainerPort}";
            }
        }

        var hostNetwork = config?.Linux?.SecurityContext?.NamespaceOptions?.Network == NamespaceMode.Node;
        foreach (var key in config?.Linux?.Sysctls.Keys ?? Enumerable.Empty<string>())
        {
            if (NodeSysctls.Value.ContainsKey(key) || (hostNetwork && key.StartsWith("net.", StringComparison.Ordinal)) || key.Contains("..", StringComparison.Ordinal))
            {
                yield return $"sysctl {Short(key, 80)}";
            }
        }

        if (config?.Linux?.CgroupParent is { Length: > 0 } parent
            && (parent[0] != '/' || parent.Split('/').Contains("..") || parent.Contains('\0', StringComparison.Ordinal)))
        {
            yield return $"cgroup_parent {Short(parent, 80)}";
        }

        var options = config?.Linux?.SecurityContext?.NamespaceOptions;
        if (options is not null && new[] { options.Network, options.Pid, options.Ipc }.Any(m => !Enum.IsDefined(m)))
        {
            yield return "an undefined namespace mode";
        }

        if (request.RuntimeHandler is not ("" or "nacelle"))
        {
            yield return $"runtime_handler {Short(request.RuntimeHandler, 80)}";
        }
    }

    /// <summary>A hostile log directory; one that is a clean absolute path is moved under the log base (it would be
    /// accepted, as kubelet's are, and the fuzzer must not ask for logs in "/" or "/etc").</summary>
    private string HostileLogDirectory()
    {
        var path = V.HostilePath(target.LogBase);
        return IsCleanAbsolute(path) && !IsUnder(path, target.LogBase) ? target.LogBase + (path == "/" ? "" : path) : path;
    }

    private static bool IsCleanAbsolute(string path) =>
        path.StartsWith('/') && !path.Contains('\0', StringComparison.Ordinal)
        && path.TrimEnd('/').Split('/').Skip(1).All(s => s is not ("" or "." or ".."));

    /// <summary>Changes one thing of a pod request into something hostile; returns what, and the answers allowed when it
    /// is the only change (null: any answer that is not a server fault).</summary>
    private (string What, IReadOnlyList<StatusCode>? MustBe) MutatePod(RunPodSandboxRequest request, bool hostNetwork)
    {
        var config = request.Config ?? new PodSandboxConfig();
        var linux = config.Linux ??= new LinuxPodSandboxConfig();
        switch (V.Int(0, 30))
        {
            case 0:
                request.Config = null;
                return ("no config", Invalid);
            case 1:
                config.Metadata = null;
                return ("no metadata", Invalid);
            case 2:
                config.Metadata ??= new PodSandboxMetadata();
                config.Metadata.Name = "";
                return ("empty name", Invalid);
            case 3:
                config.Metadata ??= new PodSandboxMetadata();
                config.Metadata.Name = V.HostileString();
                return ("hostile name", null);
            case 4:
                config.Metadata ??= new PodSandboxMetadata();
                config.Metadata.Namespace = V.HostileString();
                config.Metadata.Uid = V.HostileString();
                return ("hostile namespace and uid", null);
            case 5 when _model.LivePods.FirstOrDefault(p => !p.Uncertain && p.Config.Metadata is not null) is { } existing:
                config.Metadata = existing.Config.Metadata.Clone();
                return ($"the metadata of {existing}", [StatusCode.AlreadyExists]);
            case 6:
                config.Hostname = V.HostileString();
                return ("hostile hostname", null);
            case 7:
                config.LogDirectory = $"../../../../tmp/{V.Marker}-logdir";
                return ("relative log_directory", Invalid);
            case 8:
                config.LogDirectory = $"{target.LogBase}/x/../../{V.Marker}-dotted";
                return ("log_directory with ..", Invalid);
            case 9:
                config.LogDirectory = HostileLogDirectory();
                return ("hostile log_directory", null);
            case 10:
                config.DnsConfig = new DNSConfig
                {
                    Servers = { V.HostileString(), "10.0.0.1\nnameserver 6.6.6.6", "::1" },
                    Searches = { V.HostileString(), "a\nb" },
                    Options = { "ndots:5\noptions evil", V.HostileString() },
                };
                return ("hostile dns_config", null);
            case 11:
                config.DnsConfig = new DNSConfig { Searches = { FuzzValues.Many(10_000, i => $"s{i}.example") }, Servers = { FuzzValues.Many(1000, i => $"10.0.{i / 250}.{i % 250}") } };
                return ("10,000 dns searches", null);
            case 12:
                config.PortMappings.Add(new PortMapping { HostPort = V.Pick([70000, -1, int.MaxValue, int.MinValue, 65536]), ContainerPort = 80 });
                return ("host_port out of range", Invalid);
            case 13:
                config.PortMappings.Add(new PortMapping
                {
                    HostPort = V.Chance(0.5) ? 0 : V.Int(42000, 42100), ContainerPort = V.HostileInt(),
                    Protocol = V.Chance(0.5) ? V.UnknownEnum<Protocol>() : Protocol.Sctp, HostIp = V.MaybeHostile("127.0.0.1", 0.7),
                });
                return ("hostile port mapping", null);
            case 14:
                config.PortMappings.Add(Enumerable.Range(0, 10_000).Select(i => new PortMapping { ContainerPort = i % 65535 + 1 }));
                return ("10,000 port mappings", null);
            case 15:
                config.Labels.Clear();
                FuzzValues.SetAll(config.Labels, V.HostileMap());
                return ("hostile labels", null);
            case 16:
                FuzzValues.SetAll(config.Annotations, V.HostileMap());
                return ("hostile annotations", null);
            case 17:
                linux.CgroupParent = V.Pick([
                    "../../..", $"{target.CgroupParent}/../{V.Marker}-cg", "relative/" + V.Marker, $"/{V.Marker}\0x", "/..",
                    $"/{V.Marker}/../../..", V.HostileString(),
                ]);
                return ("hostile cgroup_parent", null);
            case 18 when NodeSysctls.Value.Count > 0:
            {
                var (key, value) = V.Pick(NodeSysctls.Value.ToList());
                linux.Sysctls[key] = value;
                return ($"node-wide sysctl {key}", Invalid);
            }
            case 19 when hostNetwork && HostNetSysctls.Value.Count > 0:
            {
                var (key, value) = V.Pick(HostNetSysctls.Value.ToList());
                linux.Sysctls[key] = value;
                return ($"network sysctl {key} on the node's network", Invalid);
            }
            case 20:
                linux.Sysctls[V.Pick([$"net/../../../tmp/{V.Marker}", "net.ipv4..x", "net./.x", $"net.{V.Marker}", "", "net.ipv4.ip_forward\0"])] =
                    V.Pick(["1", "", "1\n0", V.HostileString()]);
                return ("hostile sysctl key", null);
            case 21:
                linux.Sysctls["net.ipv4.ip_local_port_range"] = V.Pick(["1 0", "", "a b", "\0", "65535 1024", V.HostileString()]);
                FuzzValues.SetAll(linux.Sysctls, Enumerable.Range(0, V.Chance(0.3) ? 10_000 : 3).ToDictionary(i => $"net.ipv4.conf.x{i}.forwarding", _ => "1"));
                return ("bad sysctl values", null);
            case 22:
            {
                var sc = linux.SecurityContext ??= new LinuxSandboxSecurityContext();
                sc.RunAsUser = new Int64Value { Value = V.HostileLong() };
                sc.RunAsGroup = new Int64Value { Value = V.HostileLong() };
                sc.SupplementalGroups.Add(Enumerable.Range(0, V.Chance(0.3) ? 100_000 : 3).Select(_ => V.HostileLong()));
                sc.Privileged = V.Chance(0.5);
                sc.ReadonlyRootfs = V.Chance(0.5);
                return ("hostile sandbox user and groups", null);
            }
            case 23:
            {
                var sc = linux.SecurityContext ??= new LinuxSandboxSecurityContext();
                sc.Seccomp = HostileProfile();
                sc.Apparmor = HostileProfile();
#pragma warning disable CS0612 // deprecated, still sent by older kubelets
                sc.SeccompProfilePath = V.Pick(["localhost/../../../etc/passwd", "runtime/default", "unconfined", "docker/default", V.HostileString()]);
#pragma warning restore CS0612
                sc.SelinuxOptions = new SELinuxOption { User = V.HostileString(), Type = "spc_t", Level = "s0:c1,c2" };
                return ("hostile sandbox security profiles", null);
            }
            case 24:
            {
                var options = (linux.SecurityContext ??= new LinuxSandboxSecurityContext()).NamespaceOptions ??= new NamespaceOption();
                options.Network = V.Chance(0.5) ? V.UnknownEnum<NamespaceMode>() : NamespaceMode.Target;
                options.Pid = V.Pick([V.UnknownEnum<NamespaceMode>(), NamespaceMode.Target, NamespaceMode.Node]);
                options.Ipc = V.Pick([V.UnknownEnum<NamespaceMode>(), NamespaceMode.Target, NamespaceMode.Node, NamespaceMode.Container]);
                options.TargetId = V.Chance(0.5) && _model.LiveContainers.Any() ? V.Pick(_model.LiveContainers.ToList()).Id : V.HostileString();
                return ("unknown and target namespace modes", null);
            }
            case 25:
            {
                var options = (linux.SecurityContext ??= new LinuxSandboxSecurityContext()).NamespaceOptions ??= new NamespaceOption();
                options.UsernsOptions = new UserNamespace
                {
                    Mode = V.Pick([NamespaceMode.Pod, NamespaceMode.Node, V.UnknownEnum<NamespaceMode>()]),
                    Uids = { HostileMappings() },
                    Gids = { HostileMappings() },
                };
                return ("hostile user namespace", null);
            }
            case 26:
                request.RuntimeHandler = V.Pick(["runc", "kata", V.HostileString(), "../../bin/sh"]);
                return ("unknown runtime_handler", request.RuntimeHandler is "" or "nacelle" ? null : [StatusCode.InvalidArgument, StatusCode.NotFound]);
            case 27:
                config.Windows = new WindowsPodSandboxConfig { SecurityContext = new WindowsSandboxSecurityContext { HostProcess = true, RunAsUsername = V.HostileString() } };
                return ("windows config", null);
            case 28:
                linux.Overhead = HostileResources();
                linux.Resources = HostileResources();
                return ("hostile pod overhead and resources", null);
            default:
                config.Metadata ??= new PodSandboxMetadata();
                config.Metadata.Attempt = V.HostileUInt();
                config.Hostname = V.Pick([new string('h', 64), new string('h', 65), "UPPER.case", "-dash", "a..b", "x_y"]);
                return ("odd attempt and hostname", null);
        }
    }

    private SecurityProfile HostileProfile() => new()
    {
        ProfileType = V.Pick([SecurityProfile.Types.ProfileType.Localhost, SecurityProfile.Types.ProfileType.Unconfined, V.UnknownEnum<SecurityProfile.Types.ProfileType>()]),
        LocalhostRef = V.Pick([
            "", "../../../etc/passwd", "/etc/passwd", "/etc/shadow", "/nonexistent/profile.json", "/dev/zero", "/proc/self/environ",
            $"/tmp/{V.Marker}-missing.json", "/", "relative.json", V.HostileString(),
        ]),
    };

    private IEnumerable<IDMapping> HostileMappings() => Enumerable.Range(0, V.Pick([0, 1, 2, 400])).Select(_ => new IDMapping
    {
        HostId = V.HostileUInt(), ContainerId = V.HostileUInt(), Length = V.HostileUInt(),
    });

    private LinuxContainerResources HostileResources()
    {
        var resources = new LinuxContainerResources
        {
            CpuPeriod = V.HostileLong(),
            CpuQuota = V.HostileLong(),
            CpuShares = V.HostileLong(),
            MemoryLimitInBytes = V.HostileLong(),
            MemorySwapLimitInBytes = V.HostileLong(),
            OomScoreAdj = V.HostileLong(),
            CpusetCpus = V.Pick(["", "0", "0-1", "99999", "1-0", "a", "0,,1", V.HostileString()]),
            CpusetMems = V.Pick(["", "0", "7", "-1", V.HostileString()]),
        };
        if (V.Chance(0.4))
        {
            resources.HugepageLimits.Add(new HugepageLimit { PageSize = V.Pick(["2MB", "1GB", "3MB", "", "../x", V.HostileString()]), Limit = (ulong)V.HostileLong() });
        }

        if (V.Chance(0.4))
        {
            resources.Unified.Add(V.Pick<Dictionary<string, string>>([
                new() { ["memory.max"] = "max" }, new() { ["../../cgroup.procs"] = "1" }, new() { ["cgroup.procs"] = "1" },
                new() { ["memory.max"] = "1\n2" }, new() { [""] = "" }, new() { ["cpu.weight"] = V.HostileString() },
                new() { [$"{V.Marker}.file"] = "1" }, new() { ["cgroup.subtree_control"] = "+memory" },
            ]));
        }

        return resources;
    }

    // ------------------------------------------------------------------ stop, remove, status, stats, lists

    private FuzzCall StopPodCall()
    {
        var (id, kind, pod, what) = PodId();
        return StopPod(id, pod, what, kind);
    }

    private FuzzCall StopPod(string id, FuzzPod? pod, string what, IdKind kind = IdKind.Live) =>
        PodEnding("StopPodSandbox", new StopPodSandboxRequest { PodSandboxId = id }, StopPodSandboxResponse.Parser, pod, what, kind, _model.Stopped);

    private FuzzCall RemovePodCall()
    {
        var (id, kind, pod, what) = PodId();
        return RemovePod(id, pod, what, kind);
    }

    private FuzzCall RemovePod(string id, FuzzPod? pod, string what, IdKind kind = IdKind.Live) =>
        PodEnding("RemovePodSandbox", new RemovePodSandboxRequest { PodSandboxId = id }, RemovePodSandboxResponse.Parser, pod, what, kind, _model.Removed);

    /// <summary>StopPodSandbox or RemovePodSandbox: by the CRI contract, ending a pod that does not exist succeeds.</summary>
    private FuzzCall PodEnding(string rpc, IMessage request, MessageParser parser, FuzzPod? pod, string what, IdKind kind, Action<FuzzPod> ended) => new()
    {
        Service = FuzzCall.RuntimeService,
        Rpc = rpc,
        Request = request,
        Parser = parser,
        What = what,
        Pod = pod,
        MustBe = kind is IdKind.Removed or IdKind.Unknown && ModelCertain ? Ok : null,
        ExpectOk = pod is not null && kind == IdKind.Live,
        Deadline = TimeSpan.FromSeconds(90),
        OnOk = _ =>
        {
            if (pod is not null)
            {
                ended(pod);
            }
        },
        OnUnknown = () =>
        {
            if (pod is not null)
            {
                _model.Unsettle(pod);
            }
        },
    };

    private FuzzCall PodStatusCall()
    {
        var (id, kind, pod, what) = PodId();
        return PodStatus(id, what, V.Chance(0.5), kind, pod);
    }

    private FuzzCall PodStatus(string id, string what, bool verbose, IdKind kind = IdKind.Live, FuzzPod? pod = null) => new()
    {
        Service = FuzzCall.RuntimeService,
        Rpc = "PodSandboxStatus",
        Request = new PodSandboxStatusRequest { PodSandboxId = id, Verbose = verbose },
        Parser = PodSandboxStatusResponse.Parser,
        What = what,
        MustBe = kind switch
        {
            IdKind.Removed or IdKind.Unknown when ModelCertain => NotFound,
            IdKind.Empty => Invalid,
            IdKind.Live when pod is { Uncertain: false } => Ok,
            _ => null,
        },
    };

    private FuzzCall ListCall()
    {
        var filterId = V.Chance(0.5) ? PodId().Id : "";
        var labels = V.Chance(0.3) ? V.HostileMap() : new Dictionary<string, string> { ["fuzz"] = "yes" };
        return V.Int(0, 6) switch
        {
            0 => new FuzzCall
            {
                Service = FuzzCall.RuntimeService, Rpc = "ListPodSandbox", Parser = ListPodSandboxResponse.Parser, What = "filter",
                Request = new ListPodSandboxRequest
                {
                    Filter = new PodSandboxFilter
                    {
                        Id = filterId, LabelSelector = { labels },
                        State = V.Chance(0.5) ? new PodSandboxStateValue { State = V.Chance(0.5) ? V.UnknownEnum<PodSandboxState>() : PodSandboxState.SandboxReady } : null,
                    },
                },
            },
            1 => new FuzzCall
            {
                Service = FuzzCall.RuntimeService, Rpc = "StreamPodSandboxes", Parser = StreamPodSandboxesResponse.Parser, What = "filter",
                ServerStreaming = true, Request = new StreamPodSandboxesRequest { Filter = new PodSandboxFilter { Id = filterId, LabelSelector = { labels } } },
            },
            2 => ListContainers("filter"),
            3 => new FuzzCall
            {
                Service = FuzzCall.RuntimeService, Rpc = "StreamContainers", Parser = StreamContainersResponse.Parser, What = "filter",
                ServerStreaming = true,
                Request = new StreamContainersRequest { Filter = new ContainerFilter { PodSandboxId = filterId, Id = ContainerId().Id, LabelSelector = { labels } } },
            },
            4 => new FuzzCall
            {
                Service = FuzzCall.RuntimeService, Rpc = "ListPodSandboxStats", Parser = ListPodSandboxStatsResponse.Parser, What = "filter",
                Request = new ListPodSandboxStatsRequest { Filter = new PodSandboxStatsFilter { Id = filterId, LabelSelector = { labels } } },
            },
            _ => new FuzzCall
            {
                Service = FuzzCall.RuntimeService, Rpc = "StreamPodSandboxStats", Parser = StreamPodSandboxStatsResponse.Parser, What = "filter",
                ServerStreaming = true, Request = new StreamPodSandboxStatsRequest { Filter = new PodSandboxStatsFilter { Id = filterId, LabelSelector = { labels } } },
            },
        };
    }

    private FuzzCall ListContainers(string what) => new()
    {
        Service = FuzzCall.RuntimeService,
        Rpc = "ListContainers",
        Parser = ListContainersResponse.Parser,
        What = what,
        Request = new ListContainersRequest
        {
            Filter = V.Chance(0.3) ? null : new ContainerFilter
            {
                Id = V.Chance(0.5) ? ContainerId().Id : "",
                PodSandboxId = V.Chance(0.5) ? PodId().Id : "",
                State = V.Chance(0.4) ? new ContainerStateValue { State = V.Chance(0.5) ? V.UnknownEnum<ContainerState>() : ContainerState.ContainerRunning } : null,
                LabelSelector = { V.Chance(0.2) ? V.HostileMap() : [] },
            },
        },
    };

    private FuzzCall StatsCall()
    {
        if (V.Chance(0.4))
        {
            var (id, _, _, what) = PodId();
            return new FuzzCall
            {
                Service = FuzzCall.RuntimeService, Rpc = "PodSandboxStats", Parser = PodSandboxStatsResponse.Parser, What = what,
                Request = new PodSandboxStatsRequest { PodSandboxId = id },
            };
        }

        if (V.Chance(0.5))
        {
            var (id, _, _, what) = ContainerId();
            return new FuzzCall
            {
                Service = FuzzCall.RuntimeService, Rpc = "ContainerStats", Parser = ContainerStatsResponse.Parser, What = what,
                Request = new ContainerStatsRequest { ContainerId = id },
            };
        }

        var filter = new ContainerStatsFilter { Id = V.Chance(0.5) ? ContainerId().Id : "", PodSandboxId = V.Chance(0.5) ? PodId().Id : "" };
        return V.Chance(0.5)
            ? new FuzzCall
            {
                Service = FuzzCall.RuntimeService, Rpc = "ListContainerStats", Parser = ListContainerStatsResponse.Parser, What = "filter",
                Request = new ListContainerStatsRequest { Filter = filter },
            }
            : new FuzzCall
            {
                Service = FuzzCall.RuntimeService, Rpc = "StreamContainerStats", Parser = StreamContainerStatsResponse.Parser, What = "filter",
                ServerStreaming = true, Request = new StreamContainerStatsRequest { Filter = filter },
            };
    }

    private FuzzCall PodSandboxResourcesCall()
    {
        var (id, _, _, what) = PodId();
        return new FuzzCall
        {
            Service = FuzzCall.RuntimeService, Rpc = "UpdatePodSandboxResources", Parser = UpdatePodSandboxResourcesResponse.Parser, What = what,
            Request = new UpdatePodSandboxResourcesRequest { PodSandboxId = id, Overhead = HostileResources(), Resources = HostileResources() },
        };
    }
}
