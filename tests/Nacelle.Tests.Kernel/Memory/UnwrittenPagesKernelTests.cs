using System.IO.MemoryMappedFiles;
using Nacelle.ContainerCore.Interop;
using Nacelle.Monitor.Memory;

namespace Nacelle.Tests.Kernel.Memory;

/// <summary>
/// The idle monitor's drop of a writable file mapping's pages (<see cref="FilePages.DropUnwritten"/>: its executable's
/// .data), on a private writable mapping of a file this test writes: the pages the process wrote keep what it wrote,
/// the others leave the resident set and read as the file afterwards. Dropping the whole mapping (what the read-only
/// mappings get) would turn the written pages back into the file's and fail it. And <see cref="ThreadCensus.IsParked"/>
/// against this kernel's own account of a thread in an untimed wait and of one asleep with a deadline.
/// </summary>
public sealed class UnwrittenPagesKernelTests
{
    private const int PageSize = 4096;
    private const int Pages = 32;
    private const ulong Present = 1UL << 63;
    private const ulong FilePage = 1UL << 61;
    private static readonly int[] Written = [3, 10, 11, 31];

    [Fact]
    public void Written_pages_keep_their_contents_and_the_unwritten_ones_leave_the_resident_set()
    {
        var path = Path.Combine(Path.GetTempPath(), $"nacelle-unwritten-{Guid.NewGuid():N}");
        try
        {
            var content = new byte[Pages * PageSize];
            for (var page = 0; page < Pages; page++)
            {
                content.AsSpan(page * PageSize, PageSize).Fill((byte)(page + 1));
            }

            File.WriteAllBytes(path, content);
            using var file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.CopyOnWrite);
            using var view = file.CreateViewAccessor(0, content.Length, MemoryMappedFileAccess.CopyOnWrite);
            var start = (ulong)view.SafeMemoryMappedViewHandle.DangerousGetHandle() + (ulong)view.PointerOffset;
            Assert.Equal(0UL, start % PageSize);
            for (var page = 0; page < Pages; page++)
            {
                Assert.Equal((byte)(page + 1), view.ReadByte(page * PageSize));
            }

            foreach (var page in Written)
            {
                view.Write(page * PageSize, (byte)0xee);
                view.Write((page * PageSize) + 100, (byte)0xef);
            }

            using var pagemap = File.OpenHandle("/proc/self/pagemap");
            var before = Entries(pagemap, start);
            Assert.All(Enumerable.Range(0, Pages), page => Assert.True((before[page] & Present) != 0, $"page {page} not resident"));
            Assert.All(Written, page => Assert.True((before[page] & FilePage) == 0, $"written page {page} is still the file's"));

            var range = new FilePages.Range(start, start + (ulong)content.Length, Writable: true);
            var advised = FilePages.DropUnwritten(range, pagemap, new byte[8 * 8]); // 8 pages a read: several chunks

            Assert.Equal((Pages - Written.Length) * PageSize, advised);
            var after = Entries(pagemap, start);
            for (var page = 0; page < Pages; page++)
            {
                var resident = (after[page] & Present) != 0;
                Assert.True(Written.Contains(page) == resident, $"page {page}: resident {resident} after the drop");
            }

            for (var page = 0; page < Pages; page++)
            {
                var first = Written.Contains(page) ? (byte)0xee : (byte)(page + 1);
                Assert.Equal(first, view.ReadByte(page * PageSize));
                Assert.Equal((byte)(page + 1), view.ReadByte((page * PageSize) + 1));
                Assert.Equal(Written.Contains(page) ? (byte)0xef : (byte)(page + 1), view.ReadByte((page * PageSize) + 100));
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_thread_in_an_untimed_wait_is_parked_and_one_asleep_with_a_deadline_is_not()
    {
        Assert.SkipWhen(ThreadCensus.FutexSyscall < 0, "no futex syscall number for this architecture");
        using var release = new ManualResetEventSlim();
        var waiterId = 0;
        var sleeperId = 0;
        var waiter = new Thread(() =>
        {
            Volatile.Write(ref waiterId, ThreadCalls.CurrentThreadId());
            lock (release)
            {
                System.Threading.Monitor.Wait(release); // pthread_cond_wait: an untimed private futex wait
            }
        });
        var sleeper = new Thread(() =>
        {
            Volatile.Write(ref sleeperId, ThreadCalls.CurrentThreadId());
            release.Wait(TimeSpan.FromMinutes(1));
        });
        waiter.Start();
        sleeper.Start();
        try
        {
            // Each is parked (or not) once it reaches its wait: look until the waiter shows it, a minute at most.
            var parked = false;
            for (var i = 0; i < 600 && !parked; i++)
            {
                Thread.Sleep(100);
                parked = Volatile.Read(ref waiterId) != 0 && ThreadCensus.IsParked(Syscall(waiterId), ThreadCensus.FutexSyscall);
            }

            Assert.True(parked, $"the waiting thread never showed as parked: {System.Text.Encoding.ASCII.GetString(Syscall(waiterId))}");
            var sleeping = Syscall(Volatile.Read(ref sleeperId));
            Assert.False(ThreadCensus.IsParked(sleeping, ThreadCensus.FutexSyscall), System.Text.Encoding.ASCII.GetString(sleeping));
            Assert.False(ThreadCensus.IsParked(Syscall(ThreadCalls.CurrentThreadId()), ThreadCensus.FutexSyscall)); // "running"
        }
        finally
        {
            lock (release)
            {
                System.Threading.Monitor.PulseAll(release);
            }

            release.Set();
            waiter.Join();
            sleeper.Join();
        }
    }

    private static byte[] Syscall(int tid) => File.ReadAllBytes($"/proc/self/task/{tid}/syscall");

    private static ulong[] Entries(Microsoft.Win32.SafeHandles.SafeFileHandle pagemap, ulong start)
    {
        var bytes = new byte[Pages * 8];
        Assert.Equal(bytes.Length, DescriptorCalls.ReadAt(pagemap, bytes, (long)(start / PageSize) * 8));
        return [.. Enumerable.Range(0, Pages).Select(i => BitConverter.ToUInt64(bytes, i * 8))];
    }
}
