using System.Runtime.InteropServices;

namespace Nacelle.ImageService.Manifests;

/// <summary>An OCI platform: operating system, CPU architecture (GOARCH names) and optional variant (v7, v8...).</summary>
public sealed record Platform(string Os, string Architecture, string? Variant)
{
    /// <summary>The platform of this node: linux and the process architecture; arm64 carries variant v8, arm v7.</summary>
    public static Platform Current { get; } = FromArchitecture(RuntimeInformation.OSArchitecture);

    /// <summary>The OCI platform for a .NET <see cref="Architecture"/> on linux.</summary>
    public static Platform FromArchitecture(Architecture architecture) => architecture switch
    {
        System.Runtime.InteropServices.Architecture.X64 => new Platform("linux", "amd64", null),
        System.Runtime.InteropServices.Architecture.Arm64 => new Platform("linux", "arm64", "v8"),
        System.Runtime.InteropServices.Architecture.Arm => new Platform("linux", "arm", "v7"),
        System.Runtime.InteropServices.Architecture.Armv6 => new Platform("linux", "arm", "v6"),
        System.Runtime.InteropServices.Architecture.X86 => new Platform("linux", "386", null),
        System.Runtime.InteropServices.Architecture.S390x => new Platform("linux", "s390x", null),
        System.Runtime.InteropServices.Architecture.Ppc64le => new Platform("linux", "ppc64le", null),
        System.Runtime.InteropServices.Architecture.RiscV64 => new Platform("linux", "riscv64", null),
        System.Runtime.InteropServices.Architecture.LoongArch64 => new Platform("linux", "loong64", null),
        _ => new Platform("linux", architecture.ToString().ToLowerInvariant(), null),
    };

    /// <summary><c>os/architecture[/variant]</c>.</summary>
    public override string ToString() => Variant is null ? $"{Os}/{Architecture}" : $"{Os}/{Architecture}/{Variant}";
}
