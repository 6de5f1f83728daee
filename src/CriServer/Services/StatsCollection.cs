using System.Runtime.ExceptionServices;

namespace Nacelle.CriServer.Services;

/// <summary>
/// Collects the stats of many containers or pods on up to one thread per core. Each one's numbers come from several
/// kernel files (cgroup control files, /proc/PID/net/dev) whose reads are kernel work: with a hundred containers the
/// list rpcs take milliseconds on one core while the others idle.
/// </summary>
internal static class StatsCollection
{
    // Below this many items one thread is quicker than handing out the work.
    private const int ParallelFrom = 8;

    private static readonly ParallelOptions Options = new() { MaxDegreeOfParallelism = Environment.ProcessorCount };

    /// <summary><paramref name="collect"/> of every item, in the items' order. An exception is thrown as itself (the
    /// first one when several items failed), not wrapped, so that the rpc maps it to its status as usual.</summary>
    public static TResult[] Collect<TItem, TResult>(IReadOnlyList<TItem> items, Func<TItem, TResult> collect)
    {
        var results = new TResult[items.Count];
        if (items.Count < ParallelFrom || Environment.ProcessorCount == 1)
        {
            for (var i = 0; i < items.Count; i++)
            {
                results[i] = collect(items[i]);
            }

            return results;
        }

        try
        {
            Parallel.For(0, items.Count, Options, i => results[i] = collect(items[i]));
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }

        return results;
    }
}
