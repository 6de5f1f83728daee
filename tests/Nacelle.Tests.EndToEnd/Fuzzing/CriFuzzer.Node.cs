using Google.Protobuf;
using Grpc.Core;
using Runtime.V1;

namespace Nacelle.Tests.EndToEnd.Fuzzing;

/// <summary>The node-level rpcs (Version, Status, runtime config, metrics), the ImageService, GetContainerEvents, and
/// bytes that are not a valid request at all.</summary>
internal sealed partial class CriFuzzer
{
    private FuzzCall RuntimeLevelCall() => V.Int(0, 7) switch
    {
        0 => new FuzzCall
        {
            Service = FuzzCall.RuntimeService, Rpc = "Version", Parser = VersionResponse.Parser, What = "version",
            Request = new VersionRequest { Version = V.MaybeHostile("v1", 0.7) }, ExpectOk = true,
        },
        1 => new FuzzCall
        {
            Service = FuzzCall.RuntimeService, Rpc = "Status", Parser = StatusResponse.Parser, What = "status",
            Request = new StatusRequest { Verbose = V.Chance(0.5) }, ExpectOk = true,
        },
        2 => new FuzzCall
        {
            Service = FuzzCall.RuntimeService, Rpc = "RuntimeConfig", Parser = RuntimeConfigResponse.Parser, What = "runtime config",
            Request = new RuntimeConfigRequest(), ExpectOk = true,
        },
        3 => new FuzzCall
        {
            Service = FuzzCall.RuntimeService, Rpc = "UpdateRuntimeConfig", Parser = UpdateRuntimeConfigResponse.Parser, What = "pod cidr",
            Request = new UpdateRuntimeConfigRequest
            {
                RuntimeConfig = V.Chance(0.1) ? null : new RuntimeConfig
                {
                    NetworkConfig = V.Chance(0.1) ? null : new NetworkConfig
                    {
                        PodCidr = V.Pick([
                            "", "10.218.0.0/16", "10.218.0.0/33", "::/0", "fd00::/200", "10.218.0.0/16,fd00:218::/64", "not-a-cidr",
                            "10.218.0.0/16,10.219.0.0/16,10.220.0.0/16", "0.0.0.0/0", " 10.218.0.0/16 ", V.HostileString(),
                        ]),
                    },
                },
            },
        },
        4 => new FuzzCall
        {
            Service = FuzzCall.RuntimeService, Rpc = "ListMetricDescriptors", Parser = ListMetricDescriptorsResponse.Parser, What = "metrics",
            Request = new ListMetricDescriptorsRequest(),
        },
        5 => new FuzzCall
        {
            Service = FuzzCall.RuntimeService, Rpc = "ListPodSandboxMetrics", Parser = ListPodSandboxMetricsResponse.Parser, What = "metrics",
            Request = new ListPodSandboxMetricsRequest(),
        },
        _ => new FuzzCall
        {
            Service = FuzzCall.RuntimeService, Rpc = "StreamPodSandboxMetrics", Parser = StreamPodSandboxMetricsResponse.Parser, What = "metrics",
            Request = new StreamPodSandboxMetricsRequest(), ServerStreaming = true,
        },
    };

    private FuzzCall EventsCall() => new()
    {
        Service = FuzzCall.RuntimeService,
        Rpc = "GetContainerEvents",
        Parser = ContainerEventResponse.Parser,
        What = "a subscriber that leaves",
        Request = new GetEventsRequest(),
        ServerStreaming = true,
        ListenFor = TimeSpan.FromMilliseconds(V.Int(10, 600)),
    };

    // ------------------------------------------------------------------ images

    private ImageSpec HostileImageSpec()
    {
        var image = V.Int(0, 16) switch
        {
            0 => "",
            1 => $"{target.RegistryHost}/e2e/none:{V.Marker}",
            2 => $"{target.RegistryHost}/e2e/busybox@sha256:{new string('0', 64)}",
            3 => $"{target.RegistryHost}/e2e/busybox@sha256:zz",
            4 => "127.0.0.1:1/unreachable/image:tag",
            5 => "localhost:99999/x:y",
            6 => $"{target.RegistryHost}/../../etc/passwd",
            7 => "http://example.invalid/x",
            8 => $"{target.RegistryHost}/E2E/UPPER:case",
            9 => $"{target.RegistryHost}/e2e/busybox:{new string('t', 200)}",
            10 => $"{target.RegistryHost}/{string.Concat(Enumerable.Repeat("a/", 300))}x:y",
            11 => "sha256:" + V.Hex(64),
            12 => "sha256:" + V.Hex(6),
            13 => target.Image + "\0",
            14 => target.Image.ToUpperInvariant(),
            _ => V.HostileString(),
        };
        var spec = new ImageSpec { Image = image };
        if (V.Chance(0.2))
        {
            FuzzValues.SetAll(spec.Annotations, V.HostileMap());
            spec.RuntimeHandler = V.HostileString();
            spec.UserSpecifiedImage = V.HostileString();
        }

        return spec;
    }

    private FuzzCall ImageCall()
    {
        switch (V.Int(0, 10))
        {
            case 0:
                return new FuzzCall
                {
                    Service = FuzzCall.ImageService, Rpc = "ListImages", Parser = ListImagesResponse.Parser, What = "filter",
                    Request = new ListImagesRequest { Filter = V.Chance(0.5) ? null : new ImageFilter { Image = V.Chance(0.5) ? HostileImageSpec() : new ImageSpec { Image = target.Image } } },
                };
            case 1:
                return new FuzzCall
                {
                    Service = FuzzCall.ImageService, Rpc = "StreamImages", Parser = StreamImagesResponse.Parser, What = "filter",
                    ServerStreaming = true, Request = new StreamImagesRequest { Filter = new ImageFilter { Image = HostileImageSpec() } },
                };
            case 2:
            {
                var valid = V.Chance(0.5);
                var present = _model.ImagePresent;
                return new FuzzCall
                {
                    Service = FuzzCall.ImageService, Rpc = "ImageStatus", Parser = ImageStatusResponse.Parser,
                    What = valid ? "the test image" : "hostile image",
                    Request = new ImageStatusRequest { Image = valid ? new ImageSpec { Image = target.Image } : HostileImageSpec(), Verbose = V.Chance(0.5) },
                    ExpectOk = valid,
                    OnOk = response =>
                    {
                        if (valid && (((ImageStatusResponse)response!).Image is not null) != present)
                        {
                            Violation($"ImageStatus of the test image says present={!present}, but the fuzzer expected {present}", "ImageStatus");
                        }
                    },
                };
            }
            case 3:
            case 4:
                return PullCall();
            case 5:
            {
                var valid = V.Chance(0.4);
                var request = new RemoveImageRequest { Image = valid ? new ImageSpec { Image = target.Image } : HostileImageSpec() };
                return new FuzzCall
                {
                    Service = FuzzCall.ImageService, Rpc = "RemoveImage", Parser = RemoveImageResponse.Parser,
                    What = valid ? "the test image" : "hostile image",
                    Request = request,
                    Deadline = TimeSpan.FromSeconds(60),
                    OnOk = _ =>
                    {
                        if (valid)
                        {
                            _model.ImagePresent = false;
                        }
                    },
                };
            }
            default:
                return new FuzzCall
                {
                    Service = FuzzCall.ImageService, Rpc = "ImageFsInfo", Parser = ImageFsInfoResponse.Parser, What = "usage",
                    Request = new ImageFsInfoRequest(), ExpectOk = true,
                };
        }
    }

    private FuzzCall PullCall()
    {
        // The test image comes back whenever it was removed; otherwise a valid pull or a hostile one.
        var valid = !_model.ImagePresent || V.Chance(0.3);
        // Hostile references stay on the loopback registry (or a port that refuses): a pull never leaves the machine.
        var hostile = HostileImageSpec();
        if (!hostile.Image.StartsWith(target.RegistryHost, StringComparison.Ordinal) && !hostile.Image.StartsWith("127.0.0.1:1/", StringComparison.Ordinal))
        {
            hostile.Image = $"{target.RegistryHost}/{hostile.Image}";
        }

        var request = new PullImageRequest { Image = valid ? new ImageSpec { Image = target.Image } : hostile };
        if (V.Chance(0.3))
        {
            request.Auth = new AuthConfig
            {
                Username = V.HostileString(), Password = V.HostileString(), Auth = V.Pick(["", "!!notbase64", Convert.ToBase64String("a:b"u8.ToArray()), V.HostileString()]),
                ServerAddress = V.HostileString(), IdentityToken = V.HostileString(), RegistryToken = V.HostileString(),
            };
            valid = false;
        }

        // kubelet sends the pod's config along; a hostile one (a 1 MB annotation no pod object can have) may be refused
        // by the request limits like any other rpc carrying it, so such a pull is not expected to succeed.
        var hostileSandbox = false;
        if (V.Chance(0.2))
        {
            hostileSandbox = !V.Chance(0.5);
            request.SandboxConfig = hostileSandbox ? new PodSandboxConfig { LogDirectory = HostileLogDirectory(), Annotations = { V.HostileMap() } } : ValidPodConfig(true);
        }

        return new FuzzCall
        {
            Service = FuzzCall.ImageService,
            Rpc = "PullImage",
            Parser = PullImageResponse.Parser,
            What = valid ? "the test image" : "hostile image or auth",
            Request = request,
            ExpectOk = valid && request.Auth is null && !hostileSandbox,
            // A registry that does not answer (127.0.0.1:1) is the world's fault, not the caller's.
            MayBeUnavailable = !valid,
            Deadline = TimeSpan.FromSeconds(120),
            OnOk = _ =>
            {
                if (request.Image.Image == target.Image)
                {
                    _model.ImagePresent = true;
                }
            },
        };
    }

    // ------------------------------------------------------------------ malformed bytes

    private static readonly (string Service, string Rpc, MessageParser Parser, bool Streaming)[] AnyRpc =
    [
        (FuzzCall.RuntimeService, "RunPodSandbox", RunPodSandboxResponse.Parser, false),
        (FuzzCall.RuntimeService, "CreateContainer", CreateContainerResponse.Parser, false),
        (FuzzCall.RuntimeService, "ExecSync", ExecSyncResponse.Parser, false),
        (FuzzCall.RuntimeService, "ListContainers", ListContainersResponse.Parser, false),
        (FuzzCall.RuntimeService, "PodSandboxStatus", PodSandboxStatusResponse.Parser, false),
        (FuzzCall.RuntimeService, "UpdateContainerResources", UpdateContainerResourcesResponse.Parser, false),
        (FuzzCall.RuntimeService, "StreamContainers", StreamContainersResponse.Parser, true),
        (FuzzCall.ImageService, "PullImage", PullImageResponse.Parser, false),
        (FuzzCall.ImageService, "ImageStatus", ImageStatusResponse.Parser, false),
    ];

    /// <summary>Bytes that are not the request the rpc takes: random, cut short, wrong wire types, lengths past the end,
    /// groups nested past the parser's limit, another rpc's message, an rpc that does not exist.</summary>
    private FuzzCall MalformedCall()
    {
        var (service, rpc, parser, streaming) = V.Pick(AnyRpc);
        var valid = new RunPodSandboxRequest { Config = ValidPodConfig(true) }.ToByteArray();
        var (bytes, what, malformed) = V.Int(0, 8) switch
        {
            0 => (RandomBytes(V.Int(1, 300)), "random bytes", true),
            1 => (valid[..V.Int(1, valid.Length - 1)], "a message cut short", true),
            2 => ([0x0D, 0x01, 0x02, 0x03, 0x04, 0x0A, 0x05, 0x61], "field 1 with the wrong wire type", true),
            3 => ([0x0A, 0xFF, 0xFF, 0xFF, 0x0F, 0x61], "a length past the end", true),
            4 => (NestedGroups(V.Pick([50, 200, 5000])), "deeply nested groups", true),
            5 => (new CreateContainerRequest { PodSandboxId = V.Hex(64), Config = new ContainerConfig { Metadata = new ContainerMetadata { Name = "x" } } }.ToByteArray(),
                "another rpc's message", true),
            6 => (Array.Empty<byte>(), "an empty message", false),
            _ => ([0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], "an over-long varint", true),
        };
        var unknownRpc = V.Chance(0.1);
        return new FuzzCall
        {
            Service = unknownRpc ? V.Pick([service, "runtime.v1alpha2.RuntimeService", "grpc.health.v1.Health"]) : service,
            Rpc = unknownRpc ? V.Pick(["NoSuchRpc", rpc, "Check"]) : rpc,
            Raw = bytes,
            Parser = parser,
            ServerStreaming = streaming,
            What = unknownRpc ? what + " to an rpc that does not exist" : what,
            MalformedWire = malformed || unknownRpc,
        };
    }

    private byte[] RandomBytes(int length)
    {
        var bytes = new byte[length];
        V.Random.NextBytes(bytes);
        return bytes;
    }

    /// <summary>Field 15 as start-group tags, <paramref name="depth"/> deep, then the end-group tags.</summary>
    private static byte[] NestedGroups(int depth)
    {
        const byte start = (15 << 3) | 3;
        const byte end = (15 << 3) | 4;
        return [.. Enumerable.Repeat(start, depth), .. Enumerable.Repeat(end, depth)];
    }
}
