namespace Nacelle.Common;

/// <summary>CRI's time unit: nanoseconds since the Unix epoch (the precision .NET keeps is 100 ns).</summary>
public static class UnixTime
{
    public static long Nanoseconds(DateTimeOffset time) => (time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;

    public static long Now() => Nanoseconds(DateTimeOffset.UtcNow);
}
