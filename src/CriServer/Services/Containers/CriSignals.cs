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
}
