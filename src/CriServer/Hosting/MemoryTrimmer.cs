using Microsoft.Extensions.Logging;
using Nacelle.ContainerCore.Interop;
using Nacelle.CriServer.Observability;
using Nacelle.Storage;

namespace Nacelle.CriServer.Hosting;

/// <summary>
/// Gives memory back when the daemon is left alone. The GC collects only when something allocates, so garbage left by a
/// burst (startup, a round of pod creations, oversized requests refused) would stay resident in an idle daemon for as long
/// as it idles. Every <see cref="Period"/> this compares the GC's committed memory with what the last trim left; when it
/// has grown by more than <see cref="Slack"/>, one aggressive full collection compacts the heap and decommits what is free
/// (a few milliseconds for the daemon's heap). Once right after start, too: startup's garbage is never needed again.
/// A trim is followed by at least <see cref="FollowUps"/> more, one every <see cref="FollowUpPeriod"/>, and by more while
/// each leaves less than the one before it (<see cref="AfterFollowUp"/>): the shared array pool lets go of the buffers
/// a burst rented (protobuf reads a megabyte string that spans Kestrel's blocks through a rented array) only at a full
/// collection once they have been unused for a minute, one array per size and core at a time, and what it lets go of
/// is freed by the collection after that. Every period, the C heap's free pages go back too
/// (<see cref="TrimNativeHeap"/>). The executable's pages are reclaimed right after start and again once a period went
/// by without work (<see cref="ExecutablePages"/>). Before each trim for growth and its follow-ups, the metadata database's
/// idle pooled connections are closed (<see cref="MetadataDatabase.ReleaseIdleConnections"/>): a burst of calls leaves one
/// per call that was in flight, each with its page cache.
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

    /// <summary>Trims after a trim for growth, at least.</summary>
    public const int FollowUps = 3;

    /// <summary>The most trims after a trim for growth (with <see cref="FollowUpPeriod"/>, 2.5 minutes of them).</summary>
    public const int MaxFollowUps = 10;

    /// <summary>How much lower than the trim before it a follow-up must leave committed memory for another to follow once
    /// <see cref="FollowUps"/> are done.</summary>
    public const long FollowUpProgress = 256L << 10;

    /// <summary>
    /// The time between follow-ups. Half the period: the array pool frees a buffer at the first full collection a minute
    /// after the trim for growth found it idle, and the collection after that frees its memory; at 30 s the third
    /// follow-up did the first and nothing did the second, leaving a megabyte resident (bench/memory.sh).
    /// </summary>
    public static readonly TimeSpan FollowUpPeriod = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Allocation over a period below which the daemon counts as left alone. Idle, it allocates some kilobytes a period
    /// (timers, the CNI re-scan); one crictl call allocates tens of kilobytes, kubelet's relist of 30 pods hundreds a second.
    /// </summary>
    public const long QuietAllocation = 256L << 10;

    private readonly ILogger _logger;
    private readonly MetadataDatabase? _database;
    private int _followUps;
    private int _followUpsDone;
    private readonly Timer _timer;
    private long _floor;
    private long _allocated;
    private bool _pagedOut;

    private MemoryTrimmer(ILogger logger, MetadataDatabase? database)
    {
        _logger = logger;
        _database = database;
        _floor = Trim("start");
        TrimNativeHeap();
        ReleaseExecutablePages("start");
        _allocated = GC.GetTotalAllocatedBytes();
        _timer = new Timer(_ => Tick(), null, Period, Period);
    }

    public static MemoryTrimmer Start(ILogger logger, MetadataDatabase? database = null) => new(logger, database);

    private void Tick()
    {
        var committed = Committed();
        var following = _followUps > 0;
        if (following)
        {
            // A follow-up is a full collection too, and growth meanwhile is its to give back: a check for growth at each
            // follow-up would start a new series every 15 s under steady load, which grows 2 MB that fast.
            _database?.ReleaseIdleConnections();
            var previous = _floor;
            _floor = Trim("follow-up");
            (_followUps, _followUpsDone) = AfterFollowUp(_followUps - 1, _followUpsDone + 1, previous, _floor);
        }
        else if (committed > _floor + Slack)
        {
            _database?.ReleaseIdleConnections();
            _floor = Trim("grown");
            _followUps = FollowUps;
            _followUpsDone = 0;
        }
        else
        {
            _floor = Math.Min(_floor, committed);
        }

        if (following != _followUps > 0)
        {
            var next = _followUps > 0 ? FollowUpPeriod : Period;
            _timer.Change(next, next);
        }

        TrimNativeHeap();

        // Once per quiet spell: the calls before it brought back the code they ran, which stays mapped until the next
        // call needs it. A daemon under kubelet's load (a relist every second) is never quiet for a period.
        var allocated = GC.GetTotalAllocatedBytes();
        var quiet = allocated - _allocated < QuietAllocation;
        _allocated = allocated;
        if (!quiet)
        {
            _pagedOut = false;
        }
        else if (!_pagedOut)
        {
            ReleaseExecutablePages("quiet");
        }
    }

    /// <summary>
    /// The follow-ups still to come, and how many of the series are done, after a follow-up that left
    /// <paramref name="floor"/> bytes committed where the trim before it left <paramref name="previous"/> (compared with
    /// what the last trim left, not with what was committed before this one: under load that is always more, by the
    /// garbage made since). <paramref name="left"/> and <paramref name="done"/> count this one as done. A floor risen by
    /// more than <see cref="Slack"/> is a burst that came meanwhile, whose buffers the array pool holds now: a series of
    /// its own.
    /// </summary>
    internal static (int Left, int Done) AfterFollowUp(int left, int done, long previous, long floor)
    {
        if (floor > previous + Slack)
        {
            return (FollowUps, 0);
        }

        return left == 0 && KeepFollowingUp(done, previous - floor) ? (1, done) : (left, done);
    }

    /// <summary>
    /// Whether another follow-up comes after <paramref name="done"/> of them, the last of which left
    /// <paramref name="lowered"/> bytes less committed memory than the trim before it: once <see cref="FollowUps"/> are
    /// done, only while each still lowers it by <see cref="FollowUpProgress"/>, and never past <see cref="MaxFollowUps"/>.
    /// </summary>
    internal static bool KeepFollowingUp(int done, long lowered) => done < MaxFollowUps && lowered >= FollowUpProgress;

    private long Trim(string why)
    {
        var before = Committed();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        var info = GC.GetGCMemoryInfo(GCKind.Any);
        var after = info.TotalCommittedBytes;
        if (_logger.IsEnabled(LogLevel.Debug))
        {
            // Each generation's size after the collection and the free space inside it (issue 15: where a burst's memory stays).
            var g = info.GenerationInfo;
            Log.MemoryTrimmed(_logger, why, before >> 10, after >> 10, g[0].SizeAfterBytes >> 10, g[0].FragmentationAfterBytes >> 10,
                g[1].SizeAfterBytes >> 10, g[1].FragmentationAfterBytes >> 10, g[2].SizeAfterBytes >> 10, g[2].FragmentationAfterBytes >> 10,
                g[3].SizeAfterBytes >> 10, g[3].FragmentationAfterBytes >> 10, g[4].SizeAfterBytes >> 10, g[4].FragmentationAfterBytes >> 10);
        }

        return after;
    }

    /// <summary>
    /// Native memory is not the GC's: SQLite's page caches and statements, the runtime's tables and whatever the
    /// finalizers of the last collection freed live in glibc's malloc arenas, and free() hands back only the free space
    /// at the top of the main heap. A burst (rows with 10,000 annotations, many calls at once, thread pool threads with
    /// arenas of their own) left ~5 MB free but resident in the arenas. malloc_trim walks every arena and returns its
    /// whole free pages; it costs well under a millisecond for the daemon's few arenas, so it runs every period.
    /// </summary>
    private void TrimNativeHeap()
    {
        var before = Environment.WorkingSet;
        if (NativeHeap.Trim())
        {
            Log.NativeHeapTrimmed(_logger, before >> 10, Environment.WorkingSet >> 10);
        }
    }

    private void ReleaseExecutablePages(string why)
    {
        var resident = Environment.WorkingSet;
        var errno = ExecutablePages.Release();
        _pagedOut = true;
        Log.ExecutablePagesReleased(_logger, why, resident >> 10, Environment.WorkingSet >> 10, errno);
    }

    private static long Committed() => GC.GetGCMemoryInfo(GCKind.Any).TotalCommittedBytes;

    public void Dispose() => _timer.Dispose();
}
