namespace Nacelle.CriServer.Streaming;

/// <summary>
/// Bounds on open streams, in total and per pod. A stream is an exec or attach session, a port-forward session,
/// or one connection forwarded through it; each holds a lease while open.
/// </summary>
internal sealed class StreamLimits(int maxStreams, int maxStreamsPerPod)
{
    private readonly Dictionary<string, int> _perPod = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private int _total;

    public int Open
    {
        get
        {
            lock (_lock)
            {
                return _total;
            }
        }
    }

    /// <summary>Why a new stream of <paramref name="podId"/> would be refused now, or null.</summary>
    public string? WouldRefuse(string podId)
    {
        lock (_lock)
        {
            return Refusal(podId);
        }
    }

    /// <summary>A lease for one stream of <paramref name="podId"/> (dispose it when the stream ends), or null with
    /// <paramref name="reason"/> when a bound is reached.</summary>
    public IDisposable? TryAcquire(string podId, out string reason)
    {
        lock (_lock)
        {
            if (Refusal(podId) is { } why)
            {
                reason = why;
                return null;
            }

            _total++;
            _perPod[podId] = _perPod.GetValueOrDefault(podId) + 1;
        }

        reason = string.Empty;
        return new Lease(this, podId);
    }

    private string? Refusal(string podId)
    {
        if (_total >= maxStreams)
        {
            return $"{_total} streams are open, the most this node allows (stream.max_streams = {maxStreams})";
        }

        var ofPod = _perPod.GetValueOrDefault(podId);
        return ofPod >= maxStreamsPerPod
            ? $"pod {podId} has {ofPod} streams open, the most a pod may have (stream.max_streams_per_pod = {maxStreamsPerPod})"
            : null;
    }

    private void Release(string podId)
    {
        lock (_lock)
        {
            _total--;
            if (--_perPod[podId] == 0)
            {
                _perPod.Remove(podId);
            }
        }
    }

    private sealed class Lease(StreamLimits limits, string podId) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                limits.Release(podId);
            }
        }
    }
}
