using Google.Protobuf;
using Microsoft.Data.Sqlite;
using Nacelle.CriServer.Services.Containers;
using Nacelle.CriServer.Services.Pods;
using Nacelle.Sandbox.Store;
using Nacelle.Storage;
using Runtime.V1;

namespace Nacelle.Tests.Unit.Services;

/// <summary>
/// The list items and statuses kept per record (ContainerMapping, PodSandboxMapping): the same record answers the same
/// message, and every change made through the store (state, exit, an update's new config, a pod stopped) answers a new
/// message with the change, never the kept one. Against a real store, as the rpcs read it.
/// </summary>
public sealed class KeptMessagesTests : IDisposable
{
    private static readonly string PodId = new('a', 64);
    private static readonly string ContainerId = new('c', 64);

    private readonly string _root = Directory.CreateTempSubdirectory("nacelle-kept-").FullName;
    private readonly PodStore _store;

    public KeptMessagesTests()
    {
        _store = new PodStore(new MetadataDatabase(Path.Combine(_root, "metadata.db")));
        _store.AddPod(new PodRecord
        {
            Id = PodId, Name = "web-0", Namespace = "default", Uid = "uid-1", State = PodState.Ready,
            Labels = new Dictionary<string, string> { ["app"] = "web" }, Ips = ["10.1.0.2"],
        });
        _store.AddContainer(new ContainerRecord
        {
            Id = ContainerId, PodId = PodId, Name = "app", State = ContainerRecordState.Running, StartedAt = 5,
            Labels = new Dictionary<string, string> { ["tier"] = "front" },
            Config = Config(cpuShares: 2).ToByteArray(),
        });
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_root, recursive: true);
    }

    private static ContainerConfig Config(long cpuShares) => new()
    {
        Metadata = new ContainerMetadata { Name = "app" },
        Linux = new LinuxContainerConfig { Resources = new LinuxContainerResources { CpuShares = cpuShares } },
    };

    private ContainerStatus Status() => ContainerMapping.ToStatus(_store.GetContainer(ContainerId), _ => null);

    private Container ListItem() => ContainerMapping.ToListItem(Assert.Single(_store.ListContainers()));

    [Fact]
    public void A_container_stopped_after_its_status_was_kept_shows_exited()
    {
        var running = Status();
        Assert.Equal(ContainerState.ContainerRunning, running.State);
        Assert.Equal(ContainerState.ContainerRunning, ListItem().State);
        Assert.Same(running, Status()); // kept while the record is unchanged
        Assert.Same(ListItem(), ListItem());

        _store.UpdateContainer(ContainerId, c => c with { State = ContainerRecordState.Exited, ExitCode = 137, FinishedAt = 9, Reason = "Error" });

        var exited = Status();
        Assert.Equal(ContainerState.ContainerExited, exited.State);
        Assert.Equal(137, exited.ExitCode);
        Assert.Equal(9, exited.FinishedAt);
        Assert.Equal("Error", exited.Reason);
        Assert.Equal(ContainerState.ContainerExited, ListItem().State);
        // The message kept for the old record was not changed under its readers.
        Assert.Equal(ContainerState.ContainerRunning, running.State);
    }

    [Fact]
    public void An_update_of_a_containers_resources_shows_in_its_next_status()
    {
        Assert.Equal(2, Status().Resources.Linux.CpuShares);

        _store.UpdateContainer(ContainerId, c => c with { Config = Config(cpuShares: 512).ToByteArray() });

        Assert.Equal(512, Status().Resources.Linux.CpuShares);
    }

    [Fact]
    public void A_stopped_pod_shows_not_ready_in_its_status_and_list_item()
    {
        var ready = PodSandboxMapping.ToStatus(_store.GetPod(PodId));
        Assert.Equal(PodSandboxState.SandboxReady, ready.State);
        Assert.Equal("10.1.0.2", ready.Network.Ip);
        Assert.Same(ready, PodSandboxMapping.ToStatus(_store.GetPod(PodId)));
        Assert.Equal(PodSandboxState.SandboxReady, PodSandboxMapping.ToListItem(_store.GetPod(PodId)).State);

        _store.UpdatePod(PodId, p => p with { State = PodState.NotReady, Ips = [] });

        var stopped = PodSandboxMapping.ToStatus(_store.GetPod(PodId));
        Assert.Equal(PodSandboxState.SandboxNotready, stopped.State);
        Assert.Equal("", stopped.Network.Ip);
        Assert.Equal(PodSandboxState.SandboxNotready, PodSandboxMapping.ToListItem(_store.GetPod(PodId)).State);
    }

    [Fact]
    public void Filters_still_select_from_the_kept_items()
    {
        var pod = _store.GetPod(PodId);
        Assert.True(PodSandboxMapping.Matches(pod, new PodSandboxFilter { LabelSelector = { ["app"] = "web" } }));
        Assert.False(PodSandboxMapping.Matches(pod, new PodSandboxFilter { State = new PodSandboxStateValue { State = PodSandboxState.SandboxNotready } }));
        _store.UpdatePod(PodId, p => p with { State = PodState.NotReady });
        Assert.True(PodSandboxMapping.Matches(_store.GetPod(PodId), new PodSandboxFilter { State = new PodSandboxStateValue { State = PodSandboxState.SandboxNotready } }));

        Assert.Single(_store.ListContainers(ContainerMapping.Filter(new ContainerFilter { State = new ContainerStateValue { State = ContainerState.ContainerRunning } })));
        _store.UpdateContainer(ContainerId, c => c with { State = ContainerRecordState.Exited });
        Assert.Empty(_store.ListContainers(ContainerMapping.Filter(new ContainerFilter { State = new ContainerStateValue { State = ContainerState.ContainerRunning } })));
        Assert.Equal(ContainerState.ContainerExited, ContainerMapping.ToListItem(Assert.Single(_store.ListContainers(
            ContainerMapping.Filter(new ContainerFilter { State = new ContainerStateValue { State = ContainerState.ContainerExited } })))).State);
    }
}
