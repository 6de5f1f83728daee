using System.Globalization;

namespace Nacelle.Tests.EndToEnd.Fuzzing;

/// <summary>
/// How long and from which seed the CRI fuzzer runs. CI runs it for <see cref="DefaultDuration"/> from
/// <see cref="DefaultSeed"/>, so a failure there replays locally; NACELLE_FUZZ_SEED picks another seed ("random" for a
/// fresh one; the test prints the seed first and again in its failure), NACELLE_FUZZ_SECONDS makes a longer local run,
/// NACELLE_FUZZ_STEPS stops after that many steps instead (with a seed: the same requests as the reported run, as far
/// as the daemon's answers allow).
/// </summary>
internal sealed record FuzzSettings(int Seed, TimeSpan Duration, int? MaxSteps)
{
    public static readonly TimeSpan DefaultDuration = TimeSpan.FromSeconds(90);

    /// <summary>The seed of a run that names none: fixed, so that every CI run draws the same requests (as far as the daemon answers alike) and a failure replays.</summary>
    public const int DefaultSeed = 20261205;

    public static FuzzSettings FromEnvironment()
    {
        var seed = Read("NACELLE_FUZZ_SEED") switch
        {
            null => DefaultSeed,
            "random" => Random.Shared.Next(),
            var s => int.Parse(s, CultureInfo.InvariantCulture),
        };
        var duration = Read("NACELLE_FUZZ_SECONDS") is { } d
            ? TimeSpan.FromSeconds(double.Parse(d, CultureInfo.InvariantCulture))
            : DefaultDuration;
        var steps = Read("NACELLE_FUZZ_STEPS") is { } n ? int.Parse(n, CultureInfo.InvariantCulture) : (int?)null;
        return new FuzzSettings(seed, duration, steps);
    }

    private static string? Read(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value.Trim() : null;

    public override string ToString() =>
        $"NACELLE_FUZZ_SEED={Seed} NACELLE_FUZZ_SECONDS={Duration.TotalSeconds.ToString(CultureInfo.InvariantCulture)}" +
        (MaxSteps is { } steps ? $" NACELLE_FUZZ_STEPS={steps}" : "");
}
