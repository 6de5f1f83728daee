using Nacelle.Sandbox.Containers.Spec;
using Runtime.V1;

namespace Nacelle.CriServer.Services.Containers;

/// <summary>The CRI Signal enum as Linux signals.</summary>
internal static class CriSignals
{
    /// <summary>The Linux number and canonical name of a CRI Signal enum value; null for RUNTIME_DEFAULT or an unknown value.</summary>
    public static (int Number, string Name)? FromCri(Signal signal)
    {
        var value = (int)signal;

        // 1..34 are the named signals, each enum value named after its signal (SIGABRT = 1 ... SIGXFSZ = 34); aliases
        // (SIGIOT, SIGCLD, SIGPOLL) come out under their canonical names.
        if (value is >= 1 and <= 34)
        {
            return StopSignals.Parse(signal.ToString());
        }

        // 35 = SIGRTMIN, 36..50 = SIGRTMIN+1..+15, 51..64 = SIGRTMAX-14..-1, 65 = SIGRTMAX.
        if (value is >= 35 and <= 65)
        {
            var number = StopSignals.RtMin + (value - 35);
            return (number, StopSignals.NameOf(number));
        }

        return null;
    }

    // Linux number -> its CRI enum value under the canonical name (SIGABRT, not SIGIOT), for the status' stop_signal.
    private static readonly Dictionary<int, Signal> ByNumber = BuildByNumber();

    /// <summary>
    /// The CRI Signal enum value of a Linux signal number under its canonical name (6 is SIGABRT, 17 SIGCHLD, 37
    /// SIGRTMIN+3); RUNTIME_DEFAULT for a number CRI has no value for.
    /// </summary>
    public static Signal ToCri(int number) => ByNumber.GetValueOrDefault(number, Signal.RuntimeDefault);

    private static Dictionary<int, Signal> BuildByNumber()
    {
        var map = new Dictionary<int, Signal>();
        for (var value = 1; value <= 65; value++)
        {
            var signal = (Signal)value;
            // An alias (SIGIOT, SIGCLD, SIGPOLL) maps to its signal's canonical name, which has an enum value of its own.
            if (FromCri(signal) is { } linux && (value >= 35 || IsNamed(signal, linux.Name)))
            {
                map.TryAdd(linux.Number, signal);
            }
        }

        return map;
    }

    // The generated C# names are "Sigterm" for SIGTERM: compare without case.
    private static bool IsNamed(Signal signal, string name) => string.Equals(signal.ToString(), name, StringComparison.OrdinalIgnoreCase);
}
