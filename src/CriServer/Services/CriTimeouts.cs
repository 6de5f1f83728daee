using Nacelle.Common;

namespace Nacelle.CriServer.Services;

/// <summary>CRI's timeouts (int64 seconds) as durations nacelle can wait for.</summary>
internal static class CriTimeouts
{
    /// <summary>The longest wait a .NET timer holds (2^32 - 2 ms, about 49.7 days). A timeout beyond it is waited for this
    /// long: no caller can tell the difference, and a larger value would overflow the timer (or TimeSpan itself).</summary>
    public static readonly TimeSpan Longest = TimeSpan.FromMilliseconds(uint.MaxValue - 1L);

    /// <summary><paramref name="seconds"/> of the request's <paramref name="field"/>; negative is refused naming it.</summary>
    public static TimeSpan FromSeconds(long seconds, string field = "timeout")
    {
        if (seconds < 0)
        {
            throw NacelleException.InvalidArgument($"{field} {seconds} is negative");
        }

        return seconds >= (long)Longest.TotalSeconds ? Longest : TimeSpan.FromSeconds(seconds);
    }
}
