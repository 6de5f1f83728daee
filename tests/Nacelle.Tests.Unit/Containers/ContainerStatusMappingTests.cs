using Nacelle.CriServer.Services.Containers;
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

    private static ContainerStatus Status(ContainerRecord record) =>
        ContainerMapping.ToStatus(record, ContainerStatusParts.Of(record, _ => null));

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

        // Messages built from the cached parts do not share its objects.
        Assert.Equal("web", Status(record).Labels["app"]);
        Assert.NotSame(Status(record), Status(record));
    }
}
