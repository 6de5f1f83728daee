using Grpc.Core;
using Nacelle.Tests.EndToEnd.Infrastructure;
using Runtime.V1;

namespace Nacelle.Tests.EndToEnd.Fuzzing;

/// <summary>
/// What the CRI fuzzer (<see cref="CriFuzzTests"/>) found, each pinned down by a plain request over the socket: before
/// its fix every one of these answered Internal (or a transport error), or raced into one.
/// </summary>
public sealed class FuzzFindingsTests(SharedDaemon shared) : IClassFixture<SharedDaemon>
{
    private RuntimeService.RuntimeServiceClient Runtime => shared.Daemon.Client.Runtime;

    /// <summary>A state CRI does not define matched nothing in the store and failed with Internal ("unknown container state").</summary>
    [Theory]
    [InlineData(-1)]
    [InlineData(4)]
    [InlineData(1000)]
    public async Task A_container_filter_on_an_undefined_state_lists_nothing(int state)
    {
        var filter = new ContainerFilter { State = new ContainerStateValue { State = (ContainerState)state } };

        Assert.Empty((await Runtime.ListContainersAsync(new ListContainersRequest { Filter = filter })).Containers);
        using var stream = Runtime.StreamContainers(new StreamContainersRequest { Filter = filter });
        Assert.False(await stream.ResponseStream.MoveNext(CancellationToken.None));
    }

    /// <summary>TimeSpan.FromSeconds overflowed for timeouts over about 29,000 years (Internal) before the id was even
    /// looked up; timers overflow past 49.7 days.</summary>
    [Theory]
    [InlineData(long.MaxValue)]
    [InlineData(1L << 40)]
    [InlineData(5_000_000)]
    public async Task Huge_timeouts_are_waited_for_as_long_as_a_timer_can(long timeout)
    {
        var unknown = new string('e', 64);
        await Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = unknown, Timeout = timeout });
        var exec = await Assert.ThrowsAsync<RpcException>(async () =>
            await Runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = unknown, Cmd = { "true" }, Timeout = timeout }));
        Assert.Equal(StatusCode.NotFound, exec.StatusCode);
    }

    /// <summary>The NotFound detail quoted a megabyte id whole: trailers over .NET's 64 KiB limit, which the client saw as
    /// a broken call (Unavailable) instead of a refusal. An id that long is now refused before the rpc runs, naming the
    /// field and its length without quoting it.</summary>
    [Fact]
    public async Task A_refusal_quoting_a_huge_id_still_arrives()
    {
        var id = new string('f', 1 << 20);
        var e = await Assert.ThrowsAsync<RpcException>(async () =>
            await Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = id }));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("pod_sandbox_id", e.Status.Detail, StringComparison.Ordinal);
        Assert.True(e.Status.Detail.Length < 1024, $"the detail quotes the id: {e.Status.Detail.Length} characters");
    }

    /// <summary>Concurrent StopPodSandbox and RemovePodSandbox of one pod each tore down half of it: Internal for
    /// ObjectDisposedException (one disposed the monitor connection the other was using) and for a namespace pin the
    /// other had already removed; a Stop that lost the race answered NotFound. All of them must succeed.</summary>
    [Fact]
    public async Task Concurrent_stops_and_removes_of_one_pod_all_succeed()
    {
        Assert.SkipUnless(Environment.UserName == "root", "pods need root");
        await using var daemon = await DaemonProcess.StartAsync();
        var leftovers = new PodLeftovers();
        try
        {
            for (var round = 0; round < 4; round++)
            {
                var config = new PodSandboxConfig
                {
                    Metadata = new PodSandboxMetadata { Name = $"race-{round}", Namespace = "e2e", Uid = Guid.NewGuid().ToString() },
                    Linux = new LinuxPodSandboxConfig
                    {
                        SecurityContext = new LinuxSandboxSecurityContext { NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node } },
                    },
                };
                var id = (await daemon.Client.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config })).PodSandboxId;
                await leftovers.TrackAsync(daemon, id);

                var calls = Enumerable.Range(0, 6).Select(i => i % 3 == 0
                    ? daemon.Client.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = id }).ResponseAsync
                    : (Task)daemon.Client.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id }).ResponseAsync);
                await Task.WhenAll(calls);

                Assert.Empty((await daemon.Client.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items);
                Assert.Empty(PodLeftovers.MountsUnder(daemon.WorkDirectory));
            }
        }
        finally
        {
            await leftovers.CleanUpAsync(daemon);
        }
    }
}
