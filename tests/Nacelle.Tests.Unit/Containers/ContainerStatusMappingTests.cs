using Google.Protobuf;
using Nacelle.CriServer.Services.Containers;
using Nacelle.CriServer.Services.Pods;
using Nacelle.Sandbox.Store;
using Runtime.V1;

namespace Nacelle.Tests.Unit.Containers;

public sealed class ContainerStatusMappingTests
{
    private static ContainerRecord Record(int stopSignal) => new()
    {
        Id = new string('c', 64), PodId = new string('p', 64), Name = "app", StopSignal = stopSignal,
        Labels = new Dictionary<string, string> { ["app"] = "web" },
    };

    private static ContainerStatus Status(ContainerRecord record) => ContainerMapping.ToStatus(record, _ => null);

    [Theory]
    [InlineData(15, Signal.Sigterm)] // the default, and an image's "SIGTERM"
    [InlineData(3, Signal.Sigquit)]
    [InlineData(9, Signal.Sigkill)]
    [InlineData(6, Signal.Sigabrt)] // not its alias SIGIOT
    [InlineData(17, Signal.Sigchld)] // not SIGCLD
    [InlineData(29, Signal.Sigio)] // not SIGPOLL
    [InlineData(34, Signal.Sigrtmin)]
    [InlineData(37, Signal.Sigrtminplus3)]
    [InlineData(50, Signal.Sigrtmaxminus14)]
    [InlineData(63, Signal.Sigrtmaxminus1)]
    [InlineData(64, Signal.Sigrtmax)]
    public void StatusReportsTheStopSignalTheContainerWasCreatedWith(int number, Signal expected)
    {
        Assert.Equal(expected, Status(Record(number)).StopSignal);
    }

    [Fact]
    public void EveryLinuxSignalNumberRoundTripsThroughTheCriEnum()
    {
        for (var number = 1; number <= 64; number++)
        {
            var cri = CriSignals.ToCri(number);
            if (number is 32 or 33)
            {
                // Used by glibc's threads, below SIGRTMIN: CRI has no value for them.
                Assert.Equal(Signal.RuntimeDefault, cri);
                continue;
            }

            Assert.NotEqual(Signal.RuntimeDefault, cri);
            Assert.Equal(number, CriSignals.FromCri(cri)!.Value.Number);
        }
    }

    [Fact]
    public void StatusPartsAreComputedOncePerRecord()
    {
        var record = Record(15);
        var reads = 0;
        var first = ContainerStatusParts.Of(record, _ => { reads++; return null; });
        var second = ContainerStatusParts.Of(record, _ => { reads++; return null; });
        Assert.Same(first, second);
        Assert.Equal(1, reads);

        // A new record (a state change makes one) is computed again.
        ContainerStatusParts.Of(record with { State = ContainerRecordState.Running }, _ => { reads++; return null; });
        Assert.Equal(2, reads);

        // A record's status is built once and shared; a message built from the cached parts does not share the parts' objects.
        Assert.Equal("web", Status(record).Labels["app"]);
        Assert.Same(Status(record), Status(record));
        var config = new ContainerConfig { Mounts = { new Mount { ContainerPath = "/data" } } };
        var withMount = Record(15) with { Id = new string('f', 64), Config = config.ToByteArray() };
        var built = ContainerMapping.BuildStatus(withMount, ContainerStatusParts.Of(withMount, _ => null));
        Assert.NotSame(ContainerStatusParts.Of(withMount, _ => null).Config.Mounts[0], built.Mounts[0]);
    }

    private const string Spec =
        """{"ociVersion":"1.2.0","root":{"path":"rootfs"},"process":{"args":["top"],"cwd":"/","env":["A=1"],"user":{"uid":1000,"gid":2000,"additionalGids":[3,4]},"capabilities":{"bounding":["CAP_KILL"]}},"hostname":"h"}""";

    [Fact]
    public void StatusPartsLiveWithTheStoredConfigAcrossStateChangesAndAreComputedAgainAfterAnUpdate()
    {
        var config = new ContainerConfig { Metadata = new ContainerMetadata { Name = "app" }, Mounts = { new Mount { ContainerPath = "/data", HostPath = "/srv" } } };
        var record = Record(15) with { Config = config.ToByteArray() };
        var reads = 0;
        string? Read(ContainerRecord _) { reads++; return Spec; }

        var parts = ContainerStatusParts.Of(record, Read);
        Assert.Equal("/data", Assert.Single(parts.Config.Mounts).ContainerPath);
        Assert.Equal(1000, parts.User!.Linux.Uid);
        Assert.Equal(2000, parts.User.Linux.Gid);
        Assert.Equal([3L, 4L], parts.User.Linux.SupplementalGroups);

        // Started, exited: new records with the same stored config keep the parts.
        Assert.Same(parts, ContainerStatusParts.Of(record with { State = ContainerRecordState.Running }, Read));
        Assert.Same(parts, ContainerStatusParts.Of(record with { State = ContainerRecordState.Exited, ExitCode = 1 }, Read));
        Assert.Equal(1, reads);

        // Another container holding the same config instance is never served this one's parts.
        var other = record with { Id = new string('d', 64) };
        Assert.NotSame(parts, ContainerStatusParts.Of(other, Read));

        // An update replaces the stored config: computed again.
        config.Mounts[0].ContainerPath = "/other";
        var updated = ContainerStatusParts.Of(record with { Config = config.ToByteArray() }, Read);
        Assert.Equal("/other", Assert.Single(updated.Config.Mounts).ContainerPath);
    }

    [Fact]
    public void ConfigsStoredAsJsonByAnEarlierDaemonAreStillRead()
    {
        var config = new ContainerConfig { Metadata = new ContainerMetadata { Name = "old", Attempt = 2 }, Tty = true, Mounts = { new Mount { ContainerPath = "/legacy" } } };
        var record = Record(15) with { Id = new string('c', 64), LegacyConfigJson = JsonFormatter.Default.Format(config) };
        Assert.Equal(config, ContainerMapping.Config(record));
        Assert.True(ContainerMapping.StreamTarget(record).Tty);
        Assert.Equal("/legacy", Assert.Single(ContainerStatusParts.Of(record, _ => Spec).Config.Mounts).ContainerPath);

        // The binary form wins once written (UpdateContainerResources rewrites a legacy container's config).
        var binary = record with { Config = new ContainerConfig { Metadata = new ContainerMetadata { Name = "new" } }.ToByteArray() };
        Assert.Equal("new", ContainerMapping.Config(binary).Metadata.Name);

        var pod = new PodSandboxConfig { Metadata = new PodSandboxMetadata { Name = "web", Namespace = "ns", Uid = "u" }, Hostname = "h" };
        Assert.Equal(pod, PodSandboxMapping.Config(new PodRecord { Id = "", Name = "", Namespace = "", Uid = "", LegacyConfigJson = JsonFormatter.Default.Format(pod) }));
        Assert.Equal(pod, PodSandboxMapping.Config(new PodRecord { Id = "", Name = "", Namespace = "", Uid = "", Config = pod.ToByteArray() }));
        Assert.Equal(new PodSandboxConfig(), PodSandboxMapping.Config(new PodRecord { Id = "", Name = "", Namespace = "", Uid = "" }));
    }

    [Fact]
    public void CreateContainerSeedsThePartsFromTheConfigItMapped()
    {
        var config = new ContainerConfig { Metadata = new ContainerMetadata { Name = "app" }, Mounts = { new Mount { ContainerPath = "/seeded" } } };
        // Bytes that do not parse: a seeded container never needs to.
        var record = Record(15) with { Id = new string('e', 64), Config = [0xff, 0xff, 0xff] };
        ContainerStatusParts.Seed(record, config, _ => Spec);
        config.Mounts.Clear(); // the request's own object may change afterwards: the parts keep a copy

        var parts = ContainerStatusParts.Of(record with { State = ContainerRecordState.Running }, _ => throw new InvalidOperationException("not read again"));
        Assert.Equal("/seeded", Assert.Single(parts.Config.Mounts).ContainerPath);
        Assert.Equal(1000, parts.User!.Linux.Uid);
    }

    [Theory]
    [InlineData("""{"process":{"args":["a"]}}""")]
    [InlineData("""{"root":{"path":"rootfs"}}""")]
    [InlineData("""[]""")]
    public void ASpecWithoutAProcessUserHasNoUser(string spec)
    {
        Assert.Null(ContainerStatusParts.UserOf(spec));
    }
}
