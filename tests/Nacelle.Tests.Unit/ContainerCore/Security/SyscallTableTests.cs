using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Security.Seccomp;

namespace Nacelle.Tests.Unit.ContainerCore.Security;

public sealed class SyscallTableTests
{
    [Theory]
    [InlineData("read", 0, 3, 63)]
    [InlineData("getcwd", 79, 183, 17)]
    [InlineData("mkdirat", 258, 296, 34)]
    [InlineData("execve", 59, 11, 221)]
    [InlineData("clone", 56, 120, 220)]
    [InlineData("seccomp", 317, 354, 277)]
    [InlineData("recvmmsg", 299, 337, 243)]
    [InlineData("wait4", 61, 114, 260)]
    [InlineData("keyctl", 250, 288, 219)]
    [InlineData("unshare", 272, 310, 97)]
    [InlineData("personality", 135, 136, 92)]
    [InlineData("socket", 41, 359, 198)]
    [InlineData("kexec_file_load", 320, null, 294)]
    [InlineData("pidfd_send_signal", 424, 424, 424)]
    [InlineData("clone3", 435, 435, 435)]
    [InlineData("close_range", 436, 436, 436)]
    [InlineData("futex_waitv", 449, 449, 449)]
    [InlineData("cachestat", 451, 451, 451)]
    [InlineData("statmount", 457, 457, 457)]
    [InlineData("mseal", 462, 462, 462)]
    [InlineData("file_setattr", 469, 469, 469)]
    [InlineData("uretprobe", 335, null, null)]
    [InlineData("uprobe", 336, null, null)]
    [InlineData("socketcall", null, 102, null)]
    [InlineData("arch_prctl", 158, 384, null)]
    public void Tables_hold_the_kernel_numbers(string name, int? x86_64, int? i386, int? aarch64)
    {
        Assert.Equal(x86_64, SyscallTable.Lookup(SeccompArch.X86_64, name));
        Assert.Equal(i386, SyscallTable.Lookup(SeccompArch.X86, name));
        Assert.Equal(aarch64, SyscallTable.Lookup(SeccompArch.Aarch64, name));
    }

    [Fact]
    public void X32_and_arm_know_the_shared_block_only_and_x32_numbers_carry_bit_30()
    {
        Assert.Equal(0x40000000 | 462, SyscallTable.Lookup(SeccompArch.X32, "mseal"));
        Assert.Equal(462, SyscallTable.Lookup(SeccompArch.Arm, "mseal"));
        Assert.Null(SyscallTable.Lookup(SeccompArch.X32, "read"));
        Assert.Null(SyscallTable.Lookup(SeccompArch.Arm, "read"));
    }

    public static TheoryData<SeccompArch> FullTables => [SeccompArch.X86_64, SeccompArch.X86, SeccompArch.Aarch64, SeccompArch.X32, SeccompArch.Arm];

    /// <summary>nacelle's tables and Debian's libseccomp agree on every number both know; whatever libseccomp does not
    /// know is in the block every architecture shares (or x86_64's uprobe pair), where nacelle's prologue takes over.</summary>
    [Theory]
    [MemberData(nameof(FullTables))]
    public void Every_number_agrees_with_libseccomp(SeccompArch arch)
    {
        var unknownToLibrary = new List<string>();
        foreach (var (name, nr) in SyscallTable.Entries(arch))
        {
            var library = LibSeccomp.ResolveName(SeccompCompiler.Token(arch), name);
            if (library == LibSeccomp.UnknownSyscall)
            {
                unknownToLibrary.Add(name);
                continue;
            }

            // i386's socket and SysV IPC calls: libseccomp names them by pseudo numbers (it also muxes socketcall/ipc).
            if (library < 0 && arch == SeccompArch.X86)
            {
                continue;
            }

            Assert.True(library == nr, $"{name} on {arch}: nacelle {nr}, libseccomp {library}");
        }

        Assert.All(unknownToLibrary, name =>
            Assert.True((SyscallTable.Lookup(SeccompArch.Aarch64, name) ?? SyscallTable.Lookup(SeccompArch.X86_64, name)) >= 335, name));
    }
}
