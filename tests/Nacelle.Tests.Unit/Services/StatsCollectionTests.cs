using Nacelle.Common;
using Nacelle.CriServer.Services;

namespace Nacelle.Tests.Unit.Services;

public sealed class StatsCollectionTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(100)]
    public void Results_keep_the_items_order(int count)
    {
        var items = Enumerable.Range(0, count).ToList();
        Assert.Equal(items.Select(i => i * 10), StatsCollection.Collect(items, i => i * 10));
    }

    [Fact]
    public void A_hundred_items_are_spread_over_the_cores()
    {
        Assert.SkipWhen(Environment.ProcessorCount == 1, "one core: the items are collected on the calling thread");
        var threads = new HashSet<int>();
        var gate = new Barrier(2);
        // Two items meet at the barrier: only two threads at once get both through.
        StatsCollection.Collect(Enumerable.Range(0, 100).ToList(), i =>
        {
            if (i is 0 or 99)
            {
                Assert.True(gate.SignalAndWait(TimeSpan.FromSeconds(30)), "the first and last item were not collected at once");
            }

            lock (threads)
            {
                threads.Add(Environment.CurrentManagedThreadId);
            }

            return i;
        });
        Assert.True(threads.Count > 1);
    }

    [Fact]
    public void A_failure_is_thrown_as_itself_not_wrapped()
    {
        var error = Assert.Throws<NacelleException>(() => StatsCollection.Collect(Enumerable.Range(0, 100).ToList(),
            i => i == 42 ? throw NacelleException.NotFound("item 42 is gone") : i));
        Assert.Equal(ErrorKind.NotFound, error.Kind);
        Assert.Equal("item 42 is gone", error.Message);
    }
}
