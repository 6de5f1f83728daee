using Nacelle.Sandbox.Containers;

namespace Nacelle.Tests.Unit.Containers;

public sealed class ContainerEventsTests
{
    private static ContainerEvent Event(int n) => new($"c{n}", "p", ContainerEventKind.Created, n);

    [Fact]
    public async Task Every_subscriber_gets_every_event_in_order()
    {
        var events = new ContainerEvents();
        using var cancel = new CancellationTokenSource();
        var first = events.SubscribeAsync(cancel.Token).GetAsyncEnumerator();
        var second = events.SubscribeAsync(cancel.Token).GetAsyncEnumerator();
        var firstNext = first.MoveNextAsync();
        var secondNext = second.MoveNextAsync();
        while (events.SubscriberCount < 2)
        {
            await Task.Delay(5);
        }

        events.Publish(Event(1));
        events.Publish(Event(2));
        Assert.True(await firstNext);
        Assert.Equal("c1", first.Current.ContainerId);
        Assert.True(await first.MoveNextAsync());
        Assert.Equal("c2", first.Current.ContainerId);
        Assert.True(await secondNext);
        Assert.Equal("c1", second.Current.ContainerId);
        await cancel.CancelAsync();
        await first.DisposeAsync();
        await second.DisposeAsync();
        Assert.Equal(0, events.Dropped);
    }

    [Fact]
    public async Task A_slow_subscriber_loses_the_oldest_events_and_every_loss_is_counted()
    {
        long reported = 0;
        var events = new ContainerEvents(capacity: 4, onDropped: n => Interlocked.Add(ref reported, n));
        using var cancel = new CancellationTokenSource();
        var slow = events.SubscribeAsync(cancel.Token).GetAsyncEnumerator();
        var started = slow.MoveNextAsync();
        while (events.SubscriberCount < 1)
        {
            await Task.Delay(5);
        }

        // The pending MoveNext may take the first event at once; the queue then holds at most 4 of the rest.
        for (var i = 0; i < 10; i++)
        {
            events.Publish(Event(i));
        }

        Assert.True(await started);
        var received = new List<long> { slow.Current.At };
        // Exactly what was lost is counted (the count once included an event the reader took between the publisher's
        // check and its write, one too many): every event is either received or counted.
        while (received.Count + events.Dropped < 10)
        {
            Assert.True(await slow.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)), "the stream ended before the newest event");
            received.Add(slow.Current.At);
        }

        Assert.True(events.Dropped >= 5, $"dropped {events.Dropped}");
        Assert.Equal(10, received.Count + events.Dropped);
        Assert.Equal(events.Dropped, Interlocked.Read(ref reported));
        Assert.Equal(9, received[^1]);
        Assert.Equal(received.Order(), received);
        await cancel.CancelAsync();
        await slow.DisposeAsync();
        Assert.Equal(0, events.SubscriberCount);
    }

    [Fact]
    public void Publishing_without_subscribers_drops_nothing()
    {
        var events = new ContainerEvents(capacity: 1);
        events.Publish(Event(1));
        events.Publish(Event(2));
        Assert.Equal(0, events.Dropped);
    }
}
