using System.Text;
using Nacelle.Monitor.Memory;

namespace Nacelle.Tests.Unit.Monitor.Memory;

/// <summary>
/// When another thread counts as parked for <see cref="FilePages"/>' look-then-drop (<see cref="ThreadCensus"/>): blocked
/// in an untimed, process-private futex wait, as /proc/PID/task/TID/syscall shows it (x86_64 numbers); anything else,
/// or anything malformed, is not.
/// </summary>
public sealed class ThreadCensusTests
{
    private const int Futex = 202;

    [Theory]
    // glibc's pthread_cond_wait without a deadline: FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG (137), timeout NULL.
    [InlineData("202 0x1c2e5a8 0x89 0x0 0x0 0x0 0xffffffff 0x7f3a1c9fdc40 0x7f3a1d09e4d9\n", true)]
    [InlineData("202 0x1c2e5a8 0x80 0x2 0x0 0x0 0x0 0x7f3a1c9fdc40 0x7f3a1d09e4d9", true)] // FUTEX_WAIT_PRIVATE
    [InlineData("202 0x1c2e5a8 0x189 0x0 0x0 0x0 0xffffffff 0x7f3a1c9fdc40 0x7f3a1d09e4d9", true)] // | CLOCK_REALTIME
    [InlineData("202 0x1c2e5a8 0x89 0x0 0x7f3a1c9fdbf0 0x0 0xffffffff 0x7f3a1c9fdc40 0x7f3a1d09e4d9", false)] // a deadline
    [InlineData("202 0x1c2e5a8 0x9 0x0 0x0 0x0 0xffffffff 0x7f3a1c9fdc40 0x7f3a1d09e4d9", false)] // shared: another process may wake it
    [InlineData("202 0x1c2e5a8 0x81 0x1 0x0 0x0 0x0 0x7f3a1c9fdc40 0x7f3a1d09e4d9", false)] // FUTEX_WAKE
    [InlineData("232 0x4 0x7ffd4e0 0x100 0xffffffff 0x0 0x0 0x7ffd4e0 0x7f3a1d0a1f16", false)] // epoll_wait
    [InlineData("running", false)]
    [InlineData("-1 0x7f3a1c9fdc40 0x7f3a1d09e4d9", false)] // blocked outside a syscall
    [InlineData("202 0x1c2e5a8 0x89 0x0 0x0 0x0 0xffffffff 0x7f3a1c9fdc40", false)] // cut short
    [InlineData("202 0x1c2e5a8 0x89 0x0 0x0 0x0 0xffffffff 0x7f3a1c9fdc40 0x7f3a1d09e4d9 0x1", false)]
    [InlineData("202 0x1c2e5a8 0x89 0x0 0x0 0x0 0xffffffff 0x7f3a1c9fdc40 7f3a1d09e4d9", false)]
    [InlineData("202 0x1c2e5a8 0x89 0x0 0x0g 0x0 0xffffffff 0x7f3a1c9fdc40 0x7f3a1d09e4d9", false)]
    [InlineData("", false)]
    public void Only_an_untimed_private_futex_wait_is_parked(string syscall, bool parked)
    {
        Assert.Equal(parked, ThreadCensus.IsParked(Encoding.ASCII.GetBytes(syscall), Futex));
    }

    [Fact]
    public void On_an_architecture_without_a_known_futex_number_nothing_is_parked()
    {
        Assert.False(ThreadCensus.IsParked("202 0x1c2e5a8 0x89 0x0 0x0 0x0 0xffffffff 0x7f3a1c9fdc40 0x7f3a1d09e4d9"u8, -1));
    }

    [Theory]
    [InlineData("Name:\tnacelle-monitor\nUmask:\t0022\nState:\tS (sleeping)\nThreads:\t2\nSigQ:\t0/95438\n", 2)]
    [InlineData("Name:\tx\nThreads:\t17", 17)]
    [InlineData("Name:\tx\nThreads:\t2x\n", -1)]
    [InlineData("Name:\tx\nSigQ:\t0/95438\n", -1)]
    public void The_thread_count_is_read_from_the_status_text(string status, int threads)
    {
        Assert.Equal(threads, ThreadCensus.ThreadCount(Encoding.ASCII.GetBytes(status)));
    }

    [Theory]
    [InlineData("Name:\tnacelle-monitor\nSigIgn:\t0000000080001006\nSigCgt:\t0000000300000480\nCapInh:\t0\n", 0x300000480UL)]
    [InlineData("Name:\tx\nSigCgt:\t000000030000049g\n", null)]
    [InlineData("Name:\tx\nSigCgt:\t\n", null)]
    [InlineData("Name:\tx\n", null)]
    public void The_caught_signals_are_read_from_the_status_text(string status, ulong? caught)
    {
        Assert.Equal(caught, ThreadCensus.CaughtSignals(Encoding.ASCII.GetBytes(status)));
    }

    [Fact]
    public void An_idle_monitors_handlers_are_the_runtimes_and_a_sigchld_or_sigterm_handler_is_not()
    {
        Assert.Equal(0UL, 0x300000480UL & ~ThreadCensus.RuntimeSignals); // SIGFPE, SIGSEGV, 33, 34: an idle monitor, measured
        Assert.NotEqual(0UL, (1UL << 16) & ~ThreadCensus.RuntimeSignals); // SIGCHLD (17)
        Assert.NotEqual(0UL, (1UL << 14) & ~ThreadCensus.RuntimeSignals); // SIGTERM (15)
    }
}
