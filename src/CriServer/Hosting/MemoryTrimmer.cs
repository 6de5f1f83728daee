using Microsoft.Extensions.Logging;
using Nacelle.CriServer.Observability;

namespace Nacelle.CriServer.Hosting;

/// <summary>
/// Gives memory back when the daemon is left alone. The GC collects only when something allocates, so garbage left by a
/// burst (startup, a round of pod creations, oversized requests refused) would stay resident in an idle daemon for as long
/// as it idles. Every <see cref="Period"/> this compares the GC's committed memory with what the last trim left; when it
/// has grown by more than <see cref="Slack"/>, one aggressive full collection compacts the heap and decommits what is free
/// (a few milliseconds for the daemon's heap). Once right after start, too: startup's garbage is never needed again.
/// After the first trim, the executable's pages only start-up needed are reclaimed (<see cref="StartupPages"/>).
/// A trim is followed by <see cref="FollowUps"/> more, one per period: the shared array pool lets go of the buffers a
/// burst rented (a megabyte request body) only at a full collection once they have been unused for a minute, and what it
/// lets go of is freed by the collection after that.
/// </summary>
internal sealed class MemoryTrimmer : IDisposable
{
    public static readonly TimeSpan Period = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Growth of committed GC memory over the last trim that is left alone. Issue 15 asks an idle daemon to come back
    /// within 10% of its size (~3 MB of ~30 MB) after a burst; 8 MB (about one gen0 budget) let a burst's garbage stay.
    /// Under steady load this means a full collection of the small heap (a few ms) at most every period.
    /// </summary>
    public const long Slack = 2L << 20;

    /// <summary>Trims after a trim for growth, one per period.</summary>
    public const int FollowUps = 3;

    private readonly ILogger _logger;
    private int _followUps;
    private readonly Timer _timer;
    private long _floor;

    private MemoryTrimmer(ILogger logger)
    {
        _logger = logger;
        _floor = Trim("start");
        var resident = Environment.WorkingSet;
        var errno = StartupPages.Release();
        Log.StartupPagesReleased(_logger, resident >> 10, Environment.WorkingSet >> 10, errno);
        _timer = new Timer(_ => Tick(), null, Period, Period);
    }

    public static MemoryTrimmer Start(ILogger logger) => new(logger);

    private void Tick()
    {
        var committed = Committed();
        if (committed > _floor + Slack)
        {
            _floor = Trim("grown");
            _followUps = FollowUps;
        }
        else if (_followUps > 0)
        {
            _followUps--;
            _floor = Trim("follow-up");
        }
        else
        {
            _floor = Math.Min(_floor, committed);
        }
    }

    private long Trim(string why)
    {
        var before = Committed();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        var after = Committed();
        Log.MemoryTrimmed(_logger, why, before >> 10, after >> 10);
        return after;
    }

    private static long Committed() => GC.GetGCMemoryInfo(GCKind.Any).TotalCommittedBytes;

    public void Dispose() => _timer.Dispose();
}
