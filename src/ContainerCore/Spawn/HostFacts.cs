using System.Globalization;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Mounts;
using Nacelle.ContainerCore.Security;

namespace Nacelle.ContainerCore.Spawn;

/// <summary>
/// What this process may hand to a container: whether it holds CAP_SYS_RESOURCE (without it, a child can neither
/// get an oom_score_adj below ours nor hard rlimits above ours: hardened nodes, and this project's CI machine), the
/// kernel's highest capability, our own oom_score_adj and hard limits. Tests pass their own values.
/// </summary>
public sealed record HostFacts(bool HasSysResource, int LastCapability, int OwnOomScoreAdj, Func<int, ulong> HardLimit)
{
    /// <summary>The host mount a path is on (its propagation decides whether shared propagation can be honoured).</summary>
    public Func<string, MountEntry?> MountOf { get; init; } = MountTable.MountOf;

    private const int CapSysResource = 24;

    /// <summary>The security modules this host enforces (AppArmor, SELinux); none unless detected.</summary>
    public LinuxSecurityModules Modules { get; init; } = LinuxSecurityModules.None;

    /// <summary>Read from /proc/self and getrlimit.</summary>
    public static HostFacts Detect()
    {
        var effective = 0UL;
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("CapEff:", StringComparison.Ordinal))
            {
                effective = ulong.Parse(line.AsSpan(7).Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            }
        }

        var lastCap = Capabilities.LastKnown;
        if (File.Exists(Capabilities.CapLastCapPath)
            && int.TryParse(File.ReadAllText(Capabilities.CapLastCapPath).Trim(), CultureInfo.InvariantCulture, out var kernelLast))
        {
            lastCap = Math.Min(kernelLast, 63);
        }

        var oom = int.Parse(File.ReadAllText("/proc/self/oom_score_adj").Trim(), CultureInfo.InvariantCulture);
        return new HostFacts((effective & (1UL << CapSysResource)) != 0, lastCap, oom, r => SpawnCalls.GetResourceLimit(r).Hard)
        {
            Modules = LinuxSecurityModules.Detect(),
        };
    }
}
