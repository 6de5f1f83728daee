using Nacelle.Common;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Reactor;
using Nacelle.ContainerCore.Spawn;

namespace Nacelle.Monitor.Memory;

/// <summary>
/// The monitor's working memory for bytes in flight: one read buffer (container output, request lines) and one write
/// batch (CRI log records), outside the GC heap and shared by everything on the loop. A buffer is lent for a synchronous
/// stretch of work, never across an await; a second borrower at the same moment (only possible off the loop thread, in
/// tests) gets a private array. When the monitor has been idle for <see cref="SettleDelay"/> after any work, the pages
/// go back to the kernel and the GC compacts and decommits what the work left (<see cref="Settle"/>): an idle monitor
/// holds no buffers, whatever it did before. <see cref="LateSettleDelay"/> later, still idle, it settles once more so
/// that the runtime's shared array pools let go of the arrays the work left in them (<see cref="SettleLate"/>). Each
/// settle also drops the JSON metadata the work built (<see cref="JsonMetadata.Release"/>) and unmaps the clean file
/// pages the work touched (<see cref="FilePages"/>, when <see cref="DropsFilePages"/>). A monitor that stays busy is
/// compacted every <see cref="BusyCompactInterval"/> meanwhile (<see cref="Compact"/>).
/// </summary>
public static class ScratchMemory
{
    /// <summary>The read buffer: a full pipe (64 KiB) in one read.</summary>
    public const int ReadSize = 64 * 1024;

    /// <summary>The write batch: the records of one read chunk, written with one pwrite (more when they do not fit).</summary>
    public const int BatchSize = 128 * 1024;

    /// <summary>How long after the last work the memory is settled.</summary>
    public static readonly TimeSpan SettleDelay = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How long after the settle the late settle comes. ArrayPool.Shared, which the runtime's own file and directory
    /// code rents from, keeps a returned array in the thread's slot until a full collection finds it unused for 30 s
    /// (its trim runs after each full collection); the settle's collection starts that clock.
    /// </summary>
    public static readonly TimeSpan LateSettleDelay = TimeSpan.FromSeconds(35);

    /// <summary>How often a monitor that keeps working is compacted meanwhile (<see cref="Compact"/>).</summary>
    public static readonly TimeSpan BusyCompactInterval = TimeSpan.FromSeconds(2);

    private static readonly Lock Gate = new();
    private static long _lastUse;
    private static long _lastCompacted;
    private static ITimer? _timer;
    private static bool _armed;
    private static bool _late;

    public static ScratchSlot Read { get; } = new(ReadSize);

    public static ScratchSlot Batch { get; } = new(BatchSize);

    /// <summary>How many times the memory was settled (for tests and diagnostics).</summary>
    public static int Settled { get; private set; }

    /// <summary>How many times a busy monitor was compacted (for tests and diagnostics).</summary>
    public static int Compacted { get; private set; }

    /// <summary>
    /// Whether a settle unmaps the process's clean file pages (<see cref="FilePages"/>). Off by default: only the Native
    /// AOT monitor turns it on (Program), never a JIT process or a test host, whose other threads map and relocate
    /// images while it would look.
    /// </summary>
    public static bool DropsFilePages { get; set; }

    /// <summary>The address space the last settle advised away (<see cref="FilePages.Drop"/>; for diagnostics).</summary>
    public static FilePages.Dropped FilePagesDropped { get; private set; }

    /// <summary>Work happened: the memory is settled <see cref="SettleDelay"/> after the last of it.</summary>
    internal static void Touch()
    {
        lock (Gate)
        {
            _lastUse = Environment.TickCount64;
            if (_armed)
            {
                return;
            }

            _armed = true;
            _late = false;
            _lastCompacted = _lastUse;
            _timer ??= FdReactor.Time.CreateTimer(static _ => Fire(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _timer.Change(SettleDelay, Timeout.InfiniteTimeSpan);
        }
    }

    private static void Fire()
    {
        Action work;
        lock (Gate)
        {
            var now = Environment.TickCount64;
            var idle = now - _lastUse;
            if (_armed && idle < (long)SettleDelay.TotalMilliseconds)
            {
                // Still working: look again when it may have stopped, and compact now and then meanwhile.
                _timer!.Change(SettleDelay - TimeSpan.FromMilliseconds(idle), Timeout.InfiniteTimeSpan);
                if (now - _lastCompacted < (long)BusyCompactInterval.TotalMilliseconds)
                {
                    return;
                }

                _lastCompacted = now;
                work = Compact;
            }
            else
            {
                // Work since the settle re-armed the timer (_armed); otherwise this is the settle or the late one.
                var late = _late;
                _armed = false;
                _late = !late;
                if (!late)
                {
                    _timer!.Change(LateSettleDelay, Timeout.InfiniteTimeSpan);
                }

                work = late ? SettleLate : Settle;
            }
        }

        work();
    }

    /// <summary>
    /// The GC's part of a settle, for a monitor that has been busy for <see cref="BusyCompactInterval"/>: with its small
    /// gen0 budget, objects in flight at a collection (a request being answered, an exec being set up) are promoted
    /// and the older generations fill with what soon becomes garbage, in fresh regions, until a full collection; this
    /// one compacts them and gives the free regions back. The scratch buffers stay (they are in use), and so does the
    /// JSON metadata unless nothing used it since the last compaction (<see cref="JsonMetadata.ReleaseIfUnused"/>: a
    /// monitor busy only with a chatty container's log lets go of it).
    /// </summary>
    public static void Compact()
    {
        JsonMetadata.ReleaseIfUnused();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        Compacted++;
    }

    /// <summary>Gives the scratch pages back, drops what is kept only for the next piece of work (the JSON metadata, the
    /// compiled seccomp profiles by their text) and lets the GC compact and decommit everything it can.</summary>
    public static void Settle()
    {
        Read.Discard();
        Batch.Discard();
        JsonMetadata.Release();
        SpawnPlanner.ForgetCompiledProfiles();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        if (DropsFilePages)
        {
            // The finalizers the collection queued (the array pools' trim among them) run now, so that the finalizer
            // thread is back in its wait, parked, when FilePages looks at the writable mappings (FilePages, ThreadCensus).
            GC.WaitForPendingFinalizers();
            // Last, so that the collection's own code pages go too.
            FilePagesDropped = Read.DropFilePages();
        }

        Settled++;
    }

    /// <summary>
    /// The late settle: a full collection lets the shared array pools trim what has lain unused since the settle (their
    /// trim runs on the finalizer thread after it), then the arrays they let go are collected and the heap decommitted.
    /// </summary>
    public static void SettleLate()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Settle();
    }
}

/// <summary>One lendable buffer (see <see cref="ScratchMemory"/>).</summary>
public sealed class ScratchSlot(int size)
{
    private AnonymousMemory? _memory;
    private int _taken;

    public int Size { get; } = size;

    /// <summary>The buffer, until the lease is disposed (a private array if it is lent out already).</summary>
    public ScratchLease Rent()
    {
        ScratchMemory.Touch();
        if (Interlocked.Exchange(ref _taken, 1) != 0)
        {
            return new ScratchLease(null, new byte[Size]);
        }

        _memory ??= new AnonymousMemory(Size);
        return new ScratchLease(this, null);
    }

    internal Span<byte> Memory => _memory!.Span;

    internal void Return() => Volatile.Write(ref _taken, 0);

    /// <summary>
    /// <see cref="FilePages.Drop"/> with this buffer to read smaps through, then its pages back; not counted as work (no
    /// settle follows). 0 when the buffer is lent out right now.
    /// </summary>
    internal FilePages.Dropped DropFilePages()
    {
        if (Interlocked.Exchange(ref _taken, 1) != 0)
        {
            return default;
        }

        _memory ??= new AnonymousMemory(Size);
        try
        {
            return FilePages.Drop(_memory.Span, writable: true);
        }
        finally
        {
            _memory.Discard();
            Return();
        }
    }

    /// <summary>Gives the pages back unless the buffer is lent out right now.</summary>
    internal void Discard()
    {
        if (Interlocked.Exchange(ref _taken, 1) == 0)
        {
            _memory?.Discard();
            Return();
        }
    }
}

/// <summary>A lent buffer; disposing it gives it back.</summary>
public readonly struct ScratchLease : IDisposable
{
    private readonly ScratchSlot? _slot;
    private readonly byte[]? _private;

    internal ScratchLease(ScratchSlot? slot, byte[]? privateBuffer)
    {
        _slot = slot;
        _private = privateBuffer;
    }

    public Span<byte> Span => _private ?? _slot!.Memory;

    public void Dispose() => _slot?.Return();
}
