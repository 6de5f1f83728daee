using System.Text;
using Nacelle.Sandbox.Pods;

namespace Nacelle.Tests.Unit.Pods;

public sealed class NetworkCountersTests
{
    [Fact]
    public void Proc_net_dev_is_parsed_into_rx_and_tx_bytes_and_errors()
    {
        const string dev = """
            Inter-|   Receive                                                |  Transmit
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
                lo:     140       2    0    0    0     0          0         0      140       2    0    0    0     0       0          0
              eth0:    5306      41    3    0    0     0          0         0     1796      19    7    0    0     0       0          0
            """;
        var counters = NetworkCounters.Parse(Encoding.ASCII.GetBytes(dev));
        Assert.Equal(2, counters.Count);
        Assert.Equal(new NetworkCounters("eth0", 5306, 3, 1796, 7), counters[1]);
        Assert.Equal("lo", counters[0].Name);
        Assert.Empty(NetworkCounters.Parse("header\nheader\nbroken line without colon\n"u8));
    }
}
