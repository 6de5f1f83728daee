using Microsoft.Data.Sqlite;
using Nacelle.Common;
using Nacelle.Storage;
using Nacelle.Sandbox.Store;

namespace Nacelle.Tests.Unit.Pods;

/// <summary>The pod and container store against a real SQLite file: round trips, reservations, filters, updates, prefixes.</summary>
public sealed class PodStoreTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("nacelle-podstore-").FullName;
    private readonly string _dbPath;
    private readonly PodStore _store;

    public PodStoreTests()
    {
        _dbPath = Path.Combine(_root, "metadata.db");
        _store = new PodStore(new MetadataDatabase(_dbPath));
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_root, recursive: true);
    }

    private static string Id(char c, string prefix = "") => (prefix + new string(c, 64))[..64];

    private static PodRecord Pod(string id, string name = "web-0", string ns = "default", string uid = "uid-1", uint attempt = 0,
        PodState state = PodState.Ready, long createdAt = 1_763_900_000_123_456_789, Dictionary<string, string>? labels = null) => new()
    {
        Id = id,
        Name = name,
        Namespace = ns,
        Uid = uid,
        Attempt = attempt,
        State = state,
        CreatedAt = createdAt,
        Labels = labels ?? new Dictionary<string, string> { ["app"] = "web" },
    };

    private static ContainerRecord Container(string id, string podId, string name = "app", uint attempt = 0,
        ContainerRecordState state = ContainerRecordState.Created, long createdAt = 1_763_900_001_000_000_001,
        Dictionary<string, string>? labels = null) => new()
    {
        Id = id,
        PodId = podId,
        Name = name,
        Attempt = attempt,
        State = state,
        CreatedAt = createdAt,
        Labels = labels ?? new Dictionary<string, string> { ["tier"] = "front" },
    };

    [Fact]
    public void APodWithManyAnnotationsIsStoredAndReadWithoutLeavingBuffersInTheSharedPool()
    {
        var pod = Pod(Id('e')) with
        {
            Annotations = Enumerable.Range(0, 2_000).ToDictionary(i => $"example.com/annotation-{i}", i => $"value-{i}"),
        };

        // Some kilobytes are fine (SQLite's own buffers); a copy of the annotations' JSON (~70 kB) is not.
        Assert.InRange(Nacelle.Tests.Support.PooledBuffers.KeptAfter(() => _store.AddPod(pod)), 0, 32 << 10);
        PodRecord? read = null;
        Assert.InRange(Nacelle.Tests.Support.PooledBuffers.KeptAfter(() => read = new PodStore(new MetadataDatabase(_dbPath)).GetPod(pod.Id)), 0, 32 << 10);
        AssertSame(pod, read!);
    }

    [Fact]
    public void TheStoreKeepsNoValueOfARowItDeleted()
    {
        _store.AddPod(Pod(Id('c')));
        var configs = AddUpdateAndDeleteContainerWithLargeConfigs(Id('d'), Id('c'));
        // Full collections until both are gone (a few rounds at most when nothing holds them).
        for (var i = 0; i < 20 && (configs.Inserted.IsAlive || configs.Updated.IsAlive); i++)
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
            Thread.Sleep(10);
        }

        Assert.False(configs.Inserted.IsAlive, "the config the container was inserted with is still referenced");
        Assert.False(configs.Updated.IsAlive, "the config the container was updated with is still referenced");
    }

    // A method of its own, so that no local of the test keeps the values alive.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private (WeakReference Inserted, WeakReference Updated) AddUpdateAndDeleteContainerWithLargeConfigs(string id, string podId)
    {
        var inserted = new byte[1 << 20];
        var updated = new byte[1 << 20];
        _store.AddContainer(Container(id, podId) with { Config = inserted });
        _store.UpdateContainer(id, c => c with { Config = updated });
        _store.DeleteContainer(id);
        return (new WeakReference(inserted), new WeakReference(updated));
    }

    private static void AssertSame(PodRecord expected, PodRecord actual)
    {
        Assert.Equal(expected with { Labels = null!, Annotations = null!, Ips = null!, Config = null! },
            actual with { Labels = null!, Annotations = null!, Ips = null!, Config = null! });
        Assert.Equal(expected.Labels.OrderBy(p => p.Key), actual.Labels.OrderBy(p => p.Key));
        Assert.Equal(expected.Annotations.OrderBy(p => p.Key), actual.Annotations.OrderBy(p => p.Key));
        Assert.Equal(expected.Ips, actual.Ips);
        Assert.Equal(expected.Config, actual.Config);
    }

    private static void AssertSame(ContainerRecord expected, ContainerRecord actual)
    {
        Assert.Equal(expected with { Labels = null!, Annotations = null!, Config = null! }, actual with { Labels = null!, Annotations = null!, Config = null! });
        Assert.Equal(expected.Labels.OrderBy(p => p.Key), actual.Labels.OrderBy(p => p.Key));
        Assert.Equal(expected.Annotations.OrderBy(p => p.Key), actual.Annotations.OrderBy(p => p.Key));
        Assert.Equal(expected.Config, actual.Config);
    }

    private static NacelleException Fails(ErrorKind kind, Action action)
    {
        var e = Assert.Throws<NacelleException>(action);
        Assert.Equal(kind, e.Kind);
        return e;
    }

    // ---------------------------------------------------------------- pods

    [Fact]
    public void EveryPodFieldSurvivesAReopenedDatabase()
    {
        var pod = Pod(Id('a')) with
        {
            Attempt = uint.MaxValue,
            CreatedAt = 1_763_900_000_123_456_789, // nanosecond precision kept
            Labels = new Dictionary<string, string> { ["io.kubernetes.pod.name"] = "web-0", ["quote\"key"] = "ü\nvalue" },
            Annotations = new Dictionary<string, string> { ["kubernetes.io/config.seen"] = "2026-11-23T12:00:00Z" },
            RuntimeHandler = "fast",
            NetnsPath = "/run/nacelle/ns/aaa/net",
            Ips = ["10.88.0.5", "fd00::5"],
            Hostname = "web-0",
            LogDirectory = "/var/log/pods/default_web-0_uid-1",
            CgroupParent = "/kubepods/besteffort/poduid-1",
            NamespaceOptions = new PodNamespaceOptions(PodNamespaceMode.Node, PodNamespaceMode.Target, PodNamespaceMode.Pod, Id('f'),
                UserNamespaceOption.Pod([new IdMapping(0, 65536, 65536)], [new IdMapping(0, 131072, 65536)])),
            Privileged = true,
            MonitorPid = 4242,
            MonitorStartTime = ulong.MaxValue,
            PauseInitPid = 4243,
            Config = [0x0a, 0x07, 0x0a, 0x05, (byte)'w', (byte)'e', (byte)'b', (byte)'-', (byte)'0'],
            LegacyConfigJson = """{"metadata":{"name":"web-0"}}""",
            Complete = false,
        };
        _store.AddPod(pod);

        SqliteConnection.ClearAllPools();
        var reopened = new PodStore(new MetadataDatabase(_dbPath)); // migrations run again: nothing to do
        AssertSame(pod, reopened.GetPod(pod.Id));
        Assert.Equal(["1", "2", "3", "4", "5", "6"], new MetadataDatabase(_dbPath).QueryStrings("SELECT version FROM schema_migrations WHERE domain = 'pods'"));
    }

    [Fact]
    public void RowsAnEarlierDaemonWroteKeepTheirJsonConfig()
    {
        // Before the binary column, the config was JSON in config_json; the migration gives such rows an empty config.
        _store.AddPod(Pod(Id('a')) with { Config = [1, 2, 3] });
        _store.AddContainer(Container(Id('1'), Id('a')) with { Config = [4, 5, 6] });
        var database = new MetadataDatabase(_dbPath);
        using (var connection = database.Open())
        {
            MetadataDatabase.Execute(connection, """
                UPDATE pods SET config = x'', config_json = '{"hostname":"h"}';
                UPDATE containers SET config = x'', config_json = '{"tty":true}';
                """);
        }

        SqliteConnection.ClearAllPools();
        var reopened = new PodStore(database);
        Assert.Empty(reopened.GetPod(Id('a')).Config);
        Assert.Equal("""{"hostname":"h"}""", reopened.GetPod(Id('a')).LegacyConfigJson);
        Assert.Empty(reopened.GetContainer(Id('1')).Config);
        Assert.Equal("""{"tty":true}""", reopened.GetContainer(Id('1')).LegacyConfigJson);
    }

    [Fact]
    public void NullPidsAndDefaultsRoundTrip()
    {
        var pod = Pod(Id('b'), state: PodState.NotReady) with { Labels = new Dictionary<string, string>() };
        _store.AddPod(pod);
        var read = _store.GetPod(pod.Id);
        AssertSame(pod, read);
        Assert.Null(read.MonitorPid);
        Assert.Null(read.PauseInitPid);
        Assert.Empty(read.Ips);
        Assert.Equal(new PodNamespaceOptions(), read.NamespaceOptions);
    }

    [Theory]
    [InlineData("")]
    [InlineData("abc")]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    [InlineData("gggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg")]
    [InlineData("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")]
    public void MalformedPodIdsAreRefused(string id)
    {
        var e = Fails(ErrorKind.InvalidArgument, () => _store.AddPod(Pod(id)));
        Assert.Contains("pod id", e.Message);
        Assert.Empty(_store.ListPods());
    }

    [Fact]
    public void APodWithoutANameIsRefused()
    {
        Fails(ErrorKind.InvalidArgument, () => _store.AddPod(Pod(Id('a'), name: "")));
    }

    [Fact]
    public void TheSameIdTwiceIsAlreadyExists()
    {
        _store.AddPod(Pod(Id('a')));
        var e = Fails(ErrorKind.AlreadyExists, () => _store.AddPod(Pod(Id('a'), name: "other")));
        Assert.Contains(Id('a'), e.Message);
    }

    [Fact]
    public void ThePodNameIsReservedPerNamespaceNameUidAndAttempt()
    {
        _store.AddPod(Pod(Id('a')));
        var e = Fails(ErrorKind.AlreadyExists, () => _store.AddPod(Pod(Id('b'))));
        Assert.Contains("is reserved for pod " + Id('a'), e.Message);
        Assert.Contains("web-0", e.Message);
        Assert.Null(_store.TryGetPod(Id('b')));

        // Any one part different is another reservation.
        _store.AddPod(Pod(Id('c'), attempt: 1));
        _store.AddPod(Pod(Id('d'), ns: "other"));
        _store.AddPod(Pod(Id('e'), uid: "uid-2"));
        _store.AddPod(Pod(Id('f'), name: "web-1"));
        Assert.Equal(5, _store.ListPods().Count);
    }

    [Fact]
    public void AnUnknownPodIsNotFound()
    {
        var e = Fails(ErrorKind.NotFound, () => _store.GetPod(Id('9')));
        Assert.Contains(Id('9'), e.Message);
        Assert.Null(_store.TryGetPod(Id('9')));
    }

    [Fact]
    public void PodsAreListedOldestFirstAndFilteredByIdPrefixStateAndLabels()
    {
        _store.AddPod(Pod(Id('1', "ab"), name: "p1", createdAt: 30, labels: new() { ["app"] = "web", ["env"] = "prod" }));
        _store.AddPod(Pod(Id('2', "ab"), name: "p2", createdAt: 10, state: PodState.NotReady, labels: new() { ["app"] = "web" }));
        _store.AddPod(Pod(Id('3', "cd"), name: "p3", createdAt: 20, labels: new() { ["app"] = "db", ["env"] = "prod" }));

        string[] Names(PodRecordFilter? filter) => [.. _store.ListPods(filter).Select(p => p.Name)];

        Assert.Equal(["p2", "p3", "p1"], Names(null));
        Assert.Equal(["p2", "p3", "p1"], Names(new PodRecordFilter(IdPrefix: "")));
        Assert.Equal(["p2", "p1"], Names(new PodRecordFilter(IdPrefix: "ab")));
        Assert.Equal(["p1"], Names(new PodRecordFilter(IdPrefix: Id('1', "ab"))));
        Assert.Empty(Names(new PodRecordFilter(IdPrefix: "%")));       // no LIKE wildcards
        Assert.Equal(["p3", "p1"], Names(new PodRecordFilter(State: PodState.Ready)));
        Assert.Equal(["p2"], Names(new PodRecordFilter(State: PodState.NotReady)));
        Assert.Equal(["p2", "p1"], Names(new PodRecordFilter(LabelSelector: new Dictionary<string, string> { ["app"] = "web" })));
        Assert.Equal(["p1"], Names(new PodRecordFilter(LabelSelector: new Dictionary<string, string> { ["app"] = "web", ["env"] = "prod" })));
        Assert.Empty(Names(new PodRecordFilter(LabelSelector: new Dictionary<string, string> { ["app"] = "WEB" })));
        Assert.Empty(Names(new PodRecordFilter(LabelSelector: new Dictionary<string, string> { ["missing"] = "" })));
        Assert.Equal(["p1"], Names(new PodRecordFilter(IdPrefix: "ab", State: PodState.Ready, LabelSelector: new Dictionary<string, string> { ["env"] = "prod" })));
    }

    [Fact]
    public void UpdatesAreCommittedBeforeTheyReturn()
    {
        _store.AddPod(Pod(Id('a'), state: PodState.NotReady));
        var updated = _store.UpdatePod(Id('a'), p => p with
        {
            State = PodState.Ready,
            Ips = ["10.88.0.9"],
            NetnsPath = "/run/nacelle/ns/a/net",
            MonitorPid = 100,
            MonitorStartTime = 123456,
            PauseInitPid = 101,
        });

        // The database has it (a store opened now reads the file), and so has this store's copy.
        SqliteConnection.ClearAllPools();
        var reopened = new PodStore(new MetadataDatabase(_dbPath));
        var read = reopened.GetPod(Id('a'));
        AssertSame(updated, read);
        AssertSame(updated, _store.GetPod(Id('a')));
        Assert.Equal(PodState.Ready, read.State);
        Assert.Equal(["10.88.0.9"], read.Ips);
        Assert.Equal(101, read.PauseInitPid);

        reopened.UpdatePod(Id('a'), p => p with { State = PodState.NotReady, MonitorPid = null });
        Assert.Null(reopened.GetPod(Id('a')).MonitorPid);
        var again = new PodStore(new MetadataDatabase(_dbPath)).GetPod(Id('a'));
        Assert.Null(again.MonitorPid);
        Assert.Equal(PodState.NotReady, again.State);
    }

    [Fact]
    public void TheStoreKeepsItsOwnCopyOfACallersCollections()
    {
        var labels = new Dictionary<string, string> { ["app"] = "web" };
        _store.AddPod(Pod(Id('a'), labels: labels));
        labels["app"] = "changed after the add";
        labels["extra"] = "x";
        Assert.Equal([KeyValuePair.Create("app", "web")], _store.GetPod(Id('a')).Labels);
        Assert.Equal("web", new PodStore(new MetadataDatabase(_dbPath)).GetPod(Id('a')).Labels["app"]);
    }

    public static TheoryData<string, Func<PodRecord, PodRecord>> IdentityChanges() => new()
    {
        { "id", p => p with { Id = Id('b') } },
        { "name", p => p with { Name = "x" } },
        { "namespace", p => p with { Namespace = "x" } },
        { "uid", p => p with { Uid = "x" } },
        { "attempt", p => p with { Attempt = 7 } },
        { "created_at", p => p with { CreatedAt = 1 } },
    };

    [Theory]
    [MemberData(nameof(IdentityChanges))]
    public void AnUpdateCannotChangeAPodsIdentity(string field, Func<PodRecord, PodRecord> change)
    {
        _store.AddPod(Pod(Id('a')));
        var e = Fails(ErrorKind.InvalidArgument, () => _store.UpdatePod(Id('a'), change));
        Assert.Contains(field, e.Message);
        AssertSame(Pod(Id('a')), _store.GetPod(Id('a')));
    }

    [Fact]
    public void UpdatingAnUnknownPodIsNotFound()
    {
        Fails(ErrorKind.NotFound, () => _store.UpdatePod(Id('a'), p => p));
    }

    /// <summary>An exit applied beside a RemoveContainer (the fuzzer's StopPodSandbox answered NotFound for a container
    /// removed while the stop's refresh ran) finds no row: that is no change, not an error.</summary>
    [Fact]
    public void AContainerUpdateThatMayFindTheRowGoneChangesNothingAndSaysSo()
    {
        _store.AddPod(Pod(Id('a')));
        _store.AddContainer(Container(Id('1'), Id('a')));
        _store.DeleteContainer(Id('1'));
        var called = false;

        Assert.Null(_store.TryUpdateContainer(Id('1'), c => { called = true; return c with { StopSignal = 9 }; }));

        Assert.False(called);
        Assert.Null(_store.TryGetContainer(Id('1')));
        Assert.Null(new PodStore(new MetadataDatabase(_dbPath)).TryGetContainer(Id('1')));
        Fails(ErrorKind.NotFound, () => _store.UpdateContainer(Id('1'), c => c));
        _store.AddContainer(Container(Id('2'), Id('a')));
        Assert.Equal(9, _store.TryUpdateContainer(Id('2'), c => c with { StopSignal = 9 })!.StopSignal);
    }

    [Fact]
    public void ConcurrentUpdatesAreNotLost()
    {
        _store.AddPod(Pod(Id('a')));
        _store.AddPod(Pod(Id('b'), name: "other"));
        _store.AddContainer(Container(Id('1'), Id('a')));
        const int Writers = 4, Each = 25;
        Parallel.For(0, Writers, new ParallelOptions { MaxDegreeOfParallelism = Writers }, _ =>
        {
            for (var i = 0; i < Each; i++)
            {
                _store.UpdatePod(Id('a'), p => p with { MonitorStartTime = p.MonitorStartTime + 1 });
                _store.UpdateContainer(Id('1'), c => c with { StopSignal = c.StopSignal + 1 });
                _store.UpdatePod(Id('b'), p => p with { MonitorStartTime = p.MonitorStartTime + 2 });
            }
        });

        var reopened = new PodStore(new MetadataDatabase(_dbPath));
        foreach (var store in new[] { _store, reopened })
        {
            Assert.Equal((ulong)(Writers * Each), store.GetPod(Id('a')).MonitorStartTime);
            Assert.Equal((ulong)(2 * Writers * Each), store.GetPod(Id('b')).MonitorStartTime);
            Assert.Equal(15 + Writers * Each, store.GetContainer(Id('1')).StopSignal);
        }
    }

    [Fact]
    public async Task ReadsDuringWritesSeeEachRecordWhole()
    {
        // Readers never lock: every list and lookup is one snapshot, with each record as some write committed it.
        _store.AddPod(Pod(Id('a')) with { MonitorPid = 0 });
        using var stop = new CancellationTokenSource();
        var reading = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reader = Task.Run(() =>
        {
            var reads = 0;
            while (!stop.IsCancellationRequested)
            {
                var pod = _store.ListPods().Single();
                Assert.Equal(pod.MonitorPid, (int?)(long)pod.MonitorStartTime);
                reads++;
                reading.TrySetResult();
            }

            return reads;
        });
        await reading.Task.WaitAsync(TimeSpan.FromSeconds(30)); // the writes start once the reader runs (a busy machine)
        for (var i = 1; i <= 200; i++)
        {
            _store.UpdatePod(Id('a'), p => p with { MonitorStartTime = (ulong)i, MonitorPid = i });
        }

        await stop.CancelAsync();
        Assert.True(await reader > 0);
        Assert.Equal(200, _store.GetPod(Id('a')).MonitorPid);
    }

    [Fact]
    public void DeletingIsIdempotentAndTakesThePodsContainers()
    {
        _store.AddPod(Pod(Id('a')));
        _store.AddPod(Pod(Id('b'), name: "other"));
        _store.AddContainer(Container(Id('1'), Id('a')));
        _store.AddContainer(Container(Id('2'), Id('b')));

        Assert.True(_store.DeletePod(Id('a')));
        Assert.False(_store.DeletePod(Id('a')));
        Assert.False(_store.DeletePod("not-even-an-id"));
        Assert.Null(_store.TryGetPod(Id('a')));
        Assert.Null(_store.TryGetContainer(Id('1')));
        Assert.Equal([Id('2')], _store.ListContainers().Select(c => c.Id));

        // The reservation is released with the pod.
        _store.AddPod(Pod(Id('c')));
    }

    [Fact]
    public void APodIdPrefixResolvesToTheOnePodItStarts()
    {
        _store.AddPod(Pod(Id('1', "abc"), name: "p1"));
        _store.AddPod(Pod(Id('2', "abd"), name: "p2"));

        Assert.Equal(Id('1', "abc"), _store.ResolvePodId("abc"));
        Assert.Equal(Id('2', "abd"), _store.ResolvePodId("abd2"));
        Assert.Equal(Id('1', "abc"), _store.ResolvePodId(Id('1', "abc")));

        var ambiguous = Fails(ErrorKind.InvalidArgument, () => _store.ResolvePodId("ab"));
        Assert.Contains(Id('1', "abc"), ambiguous.Message);
        Assert.Contains(Id('2', "abd"), ambiguous.Message);
        Assert.Contains("ambiguous", ambiguous.Message);

        Assert.Contains("ff", Fails(ErrorKind.NotFound, () => _store.ResolvePodId("ff")).Message);
        Fails(ErrorKind.NotFound, () => _store.ResolvePodId("_"));
        Fails(ErrorKind.InvalidArgument, () => _store.ResolvePodId(""));
    }

    // ---------------------------------------------------------------- containers

    [Fact]
    public void EveryContainerFieldSurvivesAReopenedDatabase()
    {
        _store.AddPod(Pod(Id('a')));
        var container = Container(Id('1'), Id('a')) with
        {
            Attempt = 3,
            ImageRef = "docker.io/library/busybox:latest",
            ImageId = "sha256:" + new string('e', 64),
            State = ContainerRecordState.Exited,
            CreatedAt = 1_000_000_001,
            StartedAt = 2_000_000_002,
            FinishedAt = 3_000_000_003,
            ExitCode = 137,
            Reason = "OOMKilled",
            Message = "killed\nby the kernel",
            Annotations = new Dictionary<string, string> { ["io.kubernetes.container.hash"] = "abc" },
            LogPath = "app/3.log",
            Pid = 777,
            Config = [0x0a, 0x07, 0x0a, 0x03, (byte)'a', (byte)'p', (byte)'p', 0x10, 0x03],
            LegacyConfigJson = """{"metadata":{"name":"app","attempt":3}}""",
            Complete = false,
            StopSignal = 3,
            LogFile = "/var/log/pods/x/app/3.log",
            ImageDigestRef = "docker.io/library/busybox@sha256:" + new string('d', 64),
            CgroupPath = "/kubepods/pod-x/" + Id('1'),
            ImageName = "docker.io/library/busybox:latest",
            Stdin = true,
            StdinOnce = true,
        };
        _store.AddContainer(container);

        SqliteConnection.ClearAllPools();
        AssertSame(container, new PodStore(new MetadataDatabase(_dbPath)).GetContainer(container.Id));
    }

    [Fact]
    public void AFreshContainerHasNullTimesExitCodeAndPid()
    {
        _store.AddPod(Pod(Id('a')));
        _store.AddContainer(Container(Id('1'), Id('a')));
        var read = _store.GetContainer(Id('1'));
        Assert.Equal(ContainerRecordState.Created, read.State);
        Assert.Null(read.StartedAt);
        Assert.Null(read.FinishedAt);
        Assert.Null(read.ExitCode);
        Assert.Null(read.Pid);
        Assert.True(read.Complete);
        Assert.Equal(15, read.StopSignal);
    }

    [Fact]
    public void AContainerOfAnUnknownPodIsNotFound()
    {
        var e = Fails(ErrorKind.NotFound, () => _store.AddContainer(Container(Id('1'), Id('a'))));
        Assert.Contains(Id('a'), e.Message);
        Assert.Empty(_store.ListContainers());
    }

    [Fact]
    public void MalformedContainerIdsAreRefused()
    {
        _store.AddPod(Pod(Id('a')));
        Assert.Contains("container id", Fails(ErrorKind.InvalidArgument, () => _store.AddContainer(Container("123", Id('a')))).Message);
        Fails(ErrorKind.InvalidArgument, () => _store.AddContainer(Container(Id('1'), Id('a'), name: "")));
    }

    [Fact]
    public void TheContainerNameIsReservedPerPodNameAndAttempt()
    {
        _store.AddPod(Pod(Id('a')));
        _store.AddPod(Pod(Id('b'), name: "other"));
        _store.AddContainer(Container(Id('1'), Id('a')));

        var e = Fails(ErrorKind.AlreadyExists, () => _store.AddContainer(Container(Id('2'), Id('a'))));
        Assert.Contains("is reserved for container " + Id('1'), e.Message);
        Assert.Contains($"container {Id('1')} exists already", Fails(ErrorKind.AlreadyExists, () => _store.AddContainer(Container(Id('1'), Id('b')))).Message);

        _store.AddContainer(Container(Id('3'), Id('a'), attempt: 1));
        _store.AddContainer(Container(Id('4'), Id('a'), name: "sidecar"));
        _store.AddContainer(Container(Id('5'), Id('b')));
        Assert.Equal(4, _store.ListContainers().Count);
    }

    [Fact]
    public void ContainersAreFilteredByIdPrefixPodStateAndLabels()
    {
        _store.AddPod(Pod(Id('a', "aa")));
        _store.AddPod(Pod(Id('b', "ab"), name: "other"));
        _store.AddContainer(Container(Id('1', "c1"), Id('a', "aa"), name: "c1", createdAt: 3, state: ContainerRecordState.Running));
        _store.AddContainer(Container(Id('2', "c2"), Id('a', "aa"), name: "c2", createdAt: 1, labels: new() { ["tier"] = "back" }));
        _store.AddContainer(Container(Id('3', "c3"), Id('b', "ab"), name: "c3", createdAt: 2, state: ContainerRecordState.Exited));

        string[] Names(ContainerRecordFilter? filter) => [.. _store.ListContainers(filter).Select(c => c.Name)];

        Assert.Equal(["c2", "c3", "c1"], Names(null));
        Assert.Equal(["c1"], Names(new ContainerRecordFilter(IdPrefix: "c1")));
        Assert.Equal(["c2", "c1"], Names(new ContainerRecordFilter(PodIdPrefix: Id('a', "aa"))));
        Assert.Equal(["c3"], Names(new ContainerRecordFilter(PodIdPrefix: "ab")));
        Assert.Equal(["c2", "c3", "c1"], Names(new ContainerRecordFilter(PodIdPrefix: "a")));
        Assert.Equal(["c3"], Names(new ContainerRecordFilter(State: ContainerRecordState.Exited)));
        Assert.Empty(Names(new ContainerRecordFilter(State: ContainerRecordState.Unknown)));
        Assert.Equal(["c3", "c1"], Names(new ContainerRecordFilter(LabelSelector: new Dictionary<string, string> { ["tier"] = "front" })));
        Assert.Equal(["c1"], Names(new ContainerRecordFilter(PodIdPrefix: "aa", LabelSelector: new Dictionary<string, string> { ["tier"] = "front" })));
    }

    [Fact]
    public void AContainerUpdateRecordsItsLifecycle()
    {
        _store.AddPod(Pod(Id('a')));
        _store.AddContainer(Container(Id('1'), Id('a')));
        _store.UpdateContainer(Id('1'), c => c with { State = ContainerRecordState.Running, StartedAt = 5, Pid = 900 });
        var exited = _store.UpdateContainer(Id('1'), c => c with
        {
            State = ContainerRecordState.Exited,
            FinishedAt = 9,
            ExitCode = 0,
            Reason = "Completed",
            Pid = null,
        });

        var read = _store.GetContainer(Id('1'));
        AssertSame(exited, read);
        Assert.Equal(5, read.StartedAt);
        Assert.Equal(9, read.FinishedAt);
        Assert.Equal(0, read.ExitCode);
        Assert.Null(read.Pid);
    }

    [Fact]
    public void AContainerUpdateCannotChangeItsIdentityOrReachAnUnknownContainer()
    {
        _store.AddPod(Pod(Id('a')));
        _store.AddPod(Pod(Id('b'), name: "other"));
        _store.AddContainer(Container(Id('1'), Id('a')));
        Assert.Contains("pod id", Fails(ErrorKind.InvalidArgument, () => _store.UpdateContainer(Id('1'), c => c with { PodId = Id('b') })).Message);
        Fails(ErrorKind.InvalidArgument, () => _store.UpdateContainer(Id('1'), c => c with { Name = "x" }));
        Fails(ErrorKind.InvalidArgument, () => _store.UpdateContainer(Id('1'), c => c with { Attempt = 2 }));
        Fails(ErrorKind.InvalidArgument, () => _store.UpdateContainer(Id('1'), c => c with { CreatedAt = 0 }));
        Fails(ErrorKind.NotFound, () => _store.UpdateContainer(Id('2'), c => c));
        Assert.Equal(Id('a'), _store.GetContainer(Id('1')).PodId);
    }

    [Fact]
    public void DeletingAContainerIsIdempotentAndReleasesItsName()
    {
        _store.AddPod(Pod(Id('a')));
        _store.AddContainer(Container(Id('1'), Id('a')));
        Assert.True(_store.DeleteContainer(Id('1')));
        Assert.False(_store.DeleteContainer(Id('1')));
        Fails(ErrorKind.NotFound, () => _store.GetContainer(Id('1')));
        _store.AddContainer(Container(Id('2'), Id('a')));
        Assert.NotNull(_store.TryGetPod(Id('a')));
    }

    [Fact]
    public void AContainerIdPrefixResolvesToTheOneContainerItStarts()
    {
        _store.AddPod(Pod(Id('a')));
        _store.AddContainer(Container(Id('1', "12"), Id('a'), name: "x"));
        _store.AddContainer(Container(Id('3', "13"), Id('a'), name: "y"));
        Assert.Equal(Id('1', "12"), _store.ResolveContainerId("12"));
        var e = Fails(ErrorKind.InvalidArgument, () => _store.ResolveContainerId("1"));
        Assert.Contains(Id('1', "12"), e.Message);
        Assert.Contains(Id('3', "13"), e.Message);
        Fails(ErrorKind.NotFound, () => _store.ResolveContainerId("14"));
        Fails(ErrorKind.NotFound, () => _store.ResolveContainerId(Id('a'))); // a pod id is not a container id
    }
}
