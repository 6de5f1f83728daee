using System.Runtime.InteropServices;

namespace Nacelle.ContainerCore.Interop;

/// <summary>open(2) flags whose values differ between architectures.</summary>
internal static class OpenFlags
{
    /// <summary>O_DIRECTORY: 0200000 on x86_64, 040000 on arm64.</summary>
    public static int Directory => RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x4000 : 0x10000;

    /// <summary>O_NOFOLLOW: 0400000 on x86_64, 0100000 on arm64.</summary>
    public static int NoFollow => RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x8000 : 0x20000;
}
