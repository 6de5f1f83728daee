using System.Threading.Channels;

namespace Nacelle.Sandbox.Containers;

/// <summary>What happened (CRI <c>ContainerEventType</c>, same numbers).</summary>
public enum ContainerEventKind
{
    Created = 0,
    Started = 1,
    Stopped = 2,
    Deleted = 3,
}

/// <summary>One lifecycle event of a container, or of a pod sandbox when <see cref="ContainerId"/> is the pod's id.</summary>
/// <param name="At">Unix nanoseconds.</param>
public sealed record ContainerEvent(string ContainerId, string PodId, ContainerEventKind Kind, long At)
{
    public bool IsPod => ContainerId == PodId;
}

/// <summary>
/// Fans lifecycle events out to every subscriber (GetContainerEvents streams). Each subscriber has a bounded queue; a
/// subscriber that does not keep up loses the oldest events, and every loss is counted (<see cref="Dropped"/> and the
/// callback, which feeds a metric), so a slow consumer never loses events silently and never slows the runtime.
/// </summary>
public sealed class ContainerEvents(int capacity = 1024, Action<long>? onDropped = null)
{
    private readonly Lock _gate = new();
    private readonly List<Channel<ContainerEvent>> _subscribers = [];
    private long _dropped;

    /// <summary>Events dropped for slow subscribers since start.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    public int SubscriberCount
    {
        get
        {
            lock (_gate)
            {
                return _subscribers.Count;
            }
        }
    }

    public void Publish(ContainerEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        lock (_gate)
        {
            foreach (var subscriber in _subscribers)
            {
                // A full queue drops its oldest entry, and the channel counts it (OnDropped): a count taken here
                // before writing would also count an entry the reader took in between.
                subscriber.Writer.TryWrite(e);
            }
        }
    }

    private void OnDropped(ContainerEvent _)
    {
        Interlocked.Increment(ref _dropped);
        onDropped?.Invoke(1);
    }

    /// <summary>Subscribes until <paramref name="cancellationToken"/> is cancelled; events published from now on.</summary>
    public async IAsyncEnumerable<ContainerEvent> SubscribeAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var channel = Channel.CreateBounded<ContainerEvent>(new BoundedChannelOptions(capacity)
        {
            FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true, SingleWriter = false,
        }, OnDropped);
        lock (_gate)
        {
            _subscribers.Add(channel);
        }

        try
        {
            while (await channel.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                while (channel.Reader.TryRead(out var e))
                {
                    yield return e;
                }
            }
        }
        finally
        {
            lock (_gate)
            {
                _subscribers.Remove(channel);
            }
        }
    }
}
