using System.Buffers.Text;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Nacelle.ContainerCore.Interop;

namespace Nacelle.Monitor.Memory;

/// <summary>
/// Whether every thread of this process but the caller is parked: blocked in an untimed, process-private futex wait
/// (the kernel's /proc/self/task/TID/syscall), so that it runs again only when a thread of this process wakes it (a
/// futex wake, a lock released, an event set) or a signal reaches it. <see cref="FilePages"/> looks at the pages of a
/// writable mapping and then drops the unwritten ones; with every other thread parked and the caller waking none of them
/// meanwhile, nothing can write those pages between the look and the drop.
/// <para>
/// Everything that allocates (listing the threads, opening their files) happens in <see cref="Open"/>; <see
/// cref="AllOthersParked"/> allocates nothing, so no collection (which would wake the finalizer thread) can come between
/// its look and the caller's work. The thread count is read last (/proc/self/status), so a thread started meanwhile
/// fails the census rather than being missed.
/// </para>
/// <para>
/// Signals: a parked thread also runs when a signal it does not block has a handler. The census passes only when the
/// process catches nothing outside the runtime's own set (<see cref="RuntimeSignals"/>): the hardware faults (SIGILL,
/// SIGTRAP, SIGBUS, SIGFPE, SIGSEGV; a parked thread cannot fault, and one sent by kill(2) ends the process), glibc's
/// internal cancellation and set*id broadcast (32, 33: only from this process's own calls) and the runtime's thread
/// activation signal (34: sent by a collection suspending threads, which nothing starts while the caller works).
/// </para>
/// </summary>
public sealed class ThreadCensus : IDisposable
{
    /// <summary>At most this many other threads are looked at (an idle monitor has one: the finalizer).</summary>
    public const int MaxThreads = 8;

    private const int FutexPrivateFlag = 128;
    private const int FutexWait = 0;
    private const int FutexWaitBitset = 9;
    private const int FutexCommandMask = 0x7f;

    /// <summary>The signals the Native AOT runtime and glibc catch (bit n-1 for signal n): 4, 5, 7, 8, 11, 32, 33, 34.</summary>
    public const ulong RuntimeSignals = (1UL << 3) | (1UL << 4) | (1UL << 6) | (1UL << 7) | (1UL << 10) | (1UL << 31) | (1UL << 32) | (1UL << 33);

    private readonly SafeFileHandle _status;
    private readonly SafeFileHandle[] _others;

    private ThreadCensus(SafeFileHandle status, SafeFileHandle[] others)
    {
        _status = status;
        _others = others;
    }

    /// <summary>The futex syscall's number on this machine, or -1 where it is not known (the census then fails).</summary>
    public static int FutexSyscall { get; } = RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 202,
        Architecture.Arm64 => 98,
        _ => -1,
    };

    /// <summary>Lists this process's threads and opens their syscall files; null when there are more than
    /// <see cref="MaxThreads"/> others or a file cannot be opened (a thread that just ended).</summary>
    public static ThreadCensus? Open()
    {
        var self = ThreadCalls.CurrentThreadId().ToString(System.Globalization.CultureInfo.InvariantCulture);
        var others = new List<SafeFileHandle>();
        SafeFileHandle? status = null;
        try
        {
            foreach (var task in Directory.EnumerateDirectories("/proc/self/task"))
            {
                if (Path.GetFileName(task) == self)
                {
                    continue;
                }

                if (others.Count == MaxThreads)
                {
                    throw new IOException("too many threads");
                }

                others.Add(File.OpenHandle(Path.Combine(task, "syscall")));
            }

            status = File.OpenHandle("/proc/self/status");
            return new ThreadCensus(status, [.. others]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            status?.Dispose();
            others.ForEach(h => h.Dispose());
            return null;
        }
    }

    /// <summary>
    /// True when every other thread listed is parked now and the process has no thread besides them and the caller.
    /// Reads through <paramref name="buffer"/> (4 KiB is plenty); allocates nothing.
    /// </summary>
    public bool AllOthersParked(Span<byte> buffer)
    {
        foreach (var other in _others)
        {
            var n = DescriptorCalls.ReadAt(other, buffer, 0);
            if (n <= 0 || n == buffer.Length || !IsParked(buffer[..n], FutexSyscall))
            {
                return false;
            }
        }

        var length = DescriptorCalls.ReadAt(_status, buffer, 0);
        return length > 0 && length < buffer.Length && ThreadCount(buffer[..length]) == _others.Length + 1
            && CaughtSignals(buffer[..length]) is { } caught && (caught & ~RuntimeSignals) == 0;
    }

    /// <summary>The "SigCgt:" mask of a /proc/PID/status text (the signals the process has handlers for), or null.</summary>
    public static ulong? CaughtSignals(ReadOnlySpan<byte> status)
    {
        var value = Field(status, "\nSigCgt:"u8);
        return Utf8Parser.TryParse(value, out ulong mask, out var used, 'x') && used == value.Length && value.Length > 0 ? mask : null;
    }

    /// <summary>
    /// Whether a /proc/PID/task/TID/syscall text says the thread is blocked in futex(uaddr, FUTEX_WAIT or
    /// FUTEX_WAIT_BITSET with FUTEX_PRIVATE_FLAG, val, timeout = NULL, ...): "nr arg1 ... arg6 sp pc", numbers after
    /// the first in hexadecimal with 0x. "running" (the thread is on a CPU or woken and about to be), "-1 sp pc" (blocked
    /// outside a syscall), another syscall, a timed or shared wait: false.
    /// </summary>
    public static bool IsParked(ReadOnlySpan<byte> text, int futexSyscall)
    {
        text = text.TrimEnd((byte)'\n');
        if (futexSyscall < 0 || !Utf8Parser.TryParse(ProcFields.Next(ref text), out int number, out var used) || used == 0 || number != futexSyscall)
        {
            return false;
        }

        Span<ulong> args = stackalloc ulong[8];
        for (var i = 0; i < args.Length; i++)
        {
            var token = ProcFields.Next(ref text);
            if (token is not [(byte)'0', (byte)'x', .. var hex] || hex.Length == 0
                || !Utf8Parser.TryParse(hex, out args[i], out used, 'x') || used != hex.Length)
            {
                return false;
            }
        }

        var operation = args[1];
        var command = (int)(operation & FutexCommandMask);
        return text.IsEmpty
            && (operation & FutexPrivateFlag) != 0
            && command is FutexWait or FutexWaitBitset
            && args[3] == 0;
    }

    /// <summary>The "Threads:" count of a /proc/PID/status text, or -1.</summary>
    public static int ThreadCount(ReadOnlySpan<byte> status)
    {
        var value = Field(status, "\nThreads:"u8);
        return Utf8Parser.TryParse(value, out int count, out var used) && used == value.Length && value.Length > 0 ? count : -1;
    }

    /// <summary>The value after <paramref name="name"/> ("\nName:") up to the end of its line, blanks trimmed; empty
    /// when there is no such line.</summary>
    private static ReadOnlySpan<byte> Field(ReadOnlySpan<byte> status, ReadOnlySpan<byte> name)
    {
        var at = status.IndexOf(name);
        if (at < 0)
        {
            return [];
        }

        var value = status[(at + name.Length)..];
        var end = value.IndexOf((byte)'\n');
        return (end < 0 ? value : value[..end]).Trim(" \t"u8);
    }

    public void Dispose()
    {
        _status.Dispose();
        foreach (var other in _others)
        {
            other.Dispose();
        }
    }
}
