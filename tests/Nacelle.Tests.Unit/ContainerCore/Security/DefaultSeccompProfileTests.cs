using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Security;
using Nacelle.ContainerCore.Security.Seccomp;
using static Nacelle.ContainerCore.Security.Seccomp.SeccompConstants;
using static Nacelle.Tests.Unit.ContainerCore.Security.BpfInterpreter;

namespace Nacelle.Tests.Unit.ContainerCore.Security;

/// <summary>
/// RuntimeDefault, compiled through libseccomp, run over every system call number of x86_64, i386 and x32 with the
/// argument variations of its argument rules, against what the profile says in plain terms.
/// </summary>
public sealed class DefaultSeccompProfileTests
{
    private const ulong CloneNewUser = 0x10000000, CloneNewNet = 0x40000000, CloneNewUts = 0x04000000, CloneNewNs = 0x20000;
    private const ulong ThreadFlags = 0x003d0f00; // CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID

    private static readonly string[] DefaultCaps = [.. Capabilities.DefaultNames];

    private static SeccompProfile Default(params string[] extra) =>
        DefaultSeccompProfile.For([.. DefaultCaps, .. extra], SeccompArch.X86_64);

    private static byte[] Compile(SeccompProfile profile)
    {
        var program = SeccompCompiler.CompileProgram(profile, SeccompArch.X86_64);
        Assert.Empty(program.Warnings);
        return program.Filter;
    }

    private static HashSet<string> Names(SeccompProfile profile, Func<SeccompSyscallRule, bool> which) =>
        profile.Syscalls.Where(which).SelectMany(r => r.Names).ToHashSet(StringComparer.Ordinal);

    private static bool Unconditional(SeccompSyscallRule r, string action) => r.Action == action && r.Args.Count == 0;

    [Fact]
    public void The_issue_s_walkarounds_are_refused_on_every_abi()
    {
        var program = Compile(Default());
        // i386: unshare (310) and keyctl (288) through int $0x80
        Assert.Equal(Eperm, BpfInterpreter.Run(program, I386, 310, CloneNewUser));
        Assert.Equal(Eperm, BpfInterpreter.Run(program, I386, 288, 0, 0));
        // x86_64: clone with namespace flags, personality(READ_IMPLIES_EXEC), unshare, keyctl
        Assert.Equal(Eperm, BpfInterpreter.Run(program, X64, 56, CloneNewUser | CloneNewNet | CloneNewUts | 17));
        Assert.Equal(Eperm, BpfInterpreter.Run(program, X64, 135, 0x0400000));
        Assert.Equal(Eperm, BpfInterpreter.Run(program, X64, 272, CloneNewUser));
        Assert.Equal(Eperm, BpfInterpreter.Run(program, X64, 250, 0));
        // and i386's clone (120) and personality (136)
        Assert.Equal(Eperm, BpfInterpreter.Run(program, I386, 120, CloneNewUser | 17));
        Assert.Equal(Eperm, BpfInterpreter.Run(program, I386, 136, 0x0400000));
        // x32 is not named: killed
        Assert.Equal(RetKillProcess, BpfInterpreter.Run(program, X64, 0x40000000 | 272, CloneNewUser));
        Assert.Equal(RetKillProcess, BpfInterpreter.Run(program, X64, 0x40000000 | 39));
        // a foreign ABI: killed
        Assert.Equal(RetKillProcess, BpfInterpreter.Run(program, AuditArchAarch64, 97, CloneNewUser));
    }

    [Fact]
    public void Clone_clone3_personality_and_socket_follow_their_argument_rules()
    {
        var program = Compile(Default());
        foreach (var (arch, clone, clone3, personality, socket) in new[] { (X64, 56, 435, 135, 41), (I386, 120, 435, 136, 359) })
        {
            Assert.Equal(RetAllow, BpfInterpreter.Run(program, arch, clone, 17));                   // fork: SIGCHLD
            Assert.Equal(RetAllow, BpfInterpreter.Run(program, arch, clone, ThreadFlags));          // pthread_create
            Assert.Equal(Eperm, BpfInterpreter.Run(program, arch, clone, ThreadFlags | CloneNewNs));
            Assert.Equal(Enosys, BpfInterpreter.Run(program, arch, clone3, 0, 88));
            foreach (var allowed in DefaultSeccompProfile.Personalities)
            {
                Assert.Equal(RetAllow, BpfInterpreter.Run(program, arch, personality, allowed));
            }

            Assert.Equal(Eperm, BpfInterpreter.Run(program, arch, personality, 0x0040000)); // ADDR_NO_RANDOMIZE
            Assert.Equal(Eperm, BpfInterpreter.Run(program, arch, personality, 0x0400008));
            foreach (var family in new ulong[] { 0, 1, 2, 10, 16, 17, 39, 41, 42, 43, 44, 45, 46, 47, 48, 63 })
            {
                Assert.Equal(RetAllow, BpfInterpreter.Run(program, arch, socket, family, 1, 0));
            }

            Assert.Equal(Eperm, BpfInterpreter.Run(program, arch, socket, 40, 1, 0));
            Assert.Equal(Eperm, BpfInterpreter.Run(program, arch, socket, 64, 1, 0));
        }

        // The kernel reads socket's family as a 32-bit int: upper bits must not walk around the AF_VSOCK rule.
        Assert.Equal(Eperm, BpfInterpreter.Run(program, X64, 41, 0x1_0000_0028, 1, 0));
        Assert.Equal(Eperm, BpfInterpreter.Run(program, X64, 41, 0xFFFF_FFFF_0000_0002, 1, 0));
    }

    [Fact]
    public void I386_socketcall_and_ipc_allow_exactly_the_listed_calls()
    {
        var program = Compile(Default());
        for (ulong call = 0; call <= 25; call++)
        {
            // SYS_SOCKET (1) .. SYS_SENDMMSG (20) are all listed; AF_VSOCK cannot be told apart here (arguments in memory).
            Assert.Equal(call is >= 1 and <= 20 ? RetAllow : Eperm, BpfInterpreter.Run(program, I386, 102, call, 0x1000));
        }

        ulong[] ipcCalls = [1, 2, 3, 4, 11, 12, 13, 14, 21, 22, 23, 24]; // semop..semtimedop, msgsnd..msgctl, shmat..shmctl
        for (ulong call = 0; call <= 30; call++)
        {
            Assert.Equal(ipcCalls.Contains(call) ? RetAllow : Eperm, BpfInterpreter.Run(program, I386, 117, call));
        }
    }

    [Fact]
    public void Every_system_call_of_x86_64_and_i386_is_decided_by_name()
    {
        var profile = Default();
        var named = Names(profile, _ => true);
        foreach (var arch in new[] { SeccompArch.X86_64, SeccompArch.X86 })
        {
            var undecided = SyscallTable.Entries(arch).Select(e => e.Key)
                .Where(n => !named.Contains(n) && n is not ("socketcall" or "ipc"))
                .ToList();
            Assert.True(undecided.Count == 0, $"{arch}: {string.Join(", ", undecided)}");
        }
    }

    [Fact]
    public void Every_number_of_every_abi_gets_what_the_profile_says()
    {
        var profile = Default();
        var program = Compile(profile);
        var allowed = Names(profile, r => Unconditional(r, "SCMP_ACT_ALLOW"));
        var refused = Names(profile, r => Unconditional(r, "SCMP_ACT_ERRNO") && r.ErrnoRet == EPERM);
        var conditional = Names(profile, r => r.Args.Count > 0 || (r.Action == "SCMP_ACT_ERRNO" && r.ErrnoRet != EPERM));
        Assert.Empty(allowed.Intersect(refused));
        Assert.Equal(["clone", "clone3", "personality", "socket"], conditional.Order());

        foreach (var (audit, arch) in new[] { (X64, SeccompArch.X86_64), (I386, SeccompArch.X86) })
        {
            var byNumber = SyscallTable.Entries(arch).ToDictionary(e => e.Value, e => e.Key);
            var highest = byNumber.Where(e => allowed.Contains(e.Value) || refused.Contains(e.Value) || conditional.Contains(e.Value)).Max(e => e.Key);
            Assert.Equal(469, highest);
            for (var nr = 0; nr < 1100; nr++)
            {
                var name = byNumber.GetValueOrDefault(nr);
                var got = BpfInterpreter.Run(program, audit, nr, 1, 2, 3, 4, 5, 6);
                if (name is null || conditional.Contains(name) || name is "socketcall" or "ipc")
                {
                    if (name is null)
                    {
                        Assert.True((nr > highest ? Enosys : Eperm) == got, $"{arch} {nr} (unassigned): 0x{got:x}");
                    }

                    continue; // argument rules: the tests above
                }

                var expected = allowed.Contains(name) ? RetAllow : Eperm;
                Assert.True(expected == got, $"{arch} {nr} {name}: expected 0x{expected:x}, got 0x{got:x}");
            }

            // The whole x32 range is killed on amd64 (x32 is not named).
            for (var nr = 0; nr < 1100; nr += 7)
            {
                Assert.Equal(RetKillProcess, BpfInterpreter.Run(program, X64, 0x40000000 | nr));
            }
        }
    }

    public static TheoryData<string, string[]> CapabilityGroups => new()
    {
        { "CAP_SYS_ADMIN", ["mount", "umount2", "unshare", "setns", "sethostname", "bpf", "perf_event_open", "fsopen", "pivot_root"] },
        { "CAP_SYS_PTRACE", ["ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "userfaultfd"] },
        { "CAP_SYS_MODULE", ["init_module", "finit_module", "delete_module"] },
        { "CAP_SYS_BOOT", ["reboot"] },
        { "CAP_SYS_TIME", ["settimeofday", "clock_settime"] },
        { "CAP_SYS_NICE", ["mbind", "set_mempolicy", "get_mempolicy", "move_pages"] },
        { "CAP_SYS_PACCT", ["acct"] },
        { "CAP_SYS_RAWIO", ["iopl", "ioperm"] },
        { "CAP_SYS_TTY_CONFIG", ["vhangup"] },
        { "CAP_SYSLOG", ["syslog"] },
        { "CAP_BPF", ["bpf"] },
        { "CAP_PERFMON", ["perf_event_open"] },
        { "CAP_DAC_READ_SEARCH", ["open_by_handle_at"] },
    };

    [Theory]
    [MemberData(nameof(CapabilityGroups))]
    public void Calls_a_capability_stands_for_are_allowed_only_with_it(string capability, string[] calls)
    {
        var without = Compile(Default());
        var with = Compile(Default(capability.ToLowerInvariant().Replace("cap_", "", StringComparison.Ordinal)));
        foreach (var call in calls)
        {
            var nr = SyscallTable.Lookup(SeccompArch.X86_64, call)!.Value;
            Assert.True(Eperm == BpfInterpreter.Run(without, X64, nr), $"{call} without {capability}");
            Assert.True(RetAllow == BpfInterpreter.Run(with, X64, nr), $"{call} with {capability}");
            if (SyscallTable.Lookup(SeccompArch.X86, call) is { } i386)
            {
                Assert.True(Eperm == BpfInterpreter.Run(without, I386, i386), $"i386 {call} without {capability}");
                Assert.True(RetAllow == BpfInterpreter.Run(with, I386, i386), $"i386 {call} with {capability}");
            }
        }
    }

    [Fact]
    public void Chroot_follows_cap_sys_chroot_which_the_default_set_has()
    {
        Assert.Contains("CAP_SYS_CHROOT", DefaultCaps);
        Assert.Equal(RetAllow, BpfInterpreter.Run(Compile(Default()), X64, 161));
        var without = DefaultSeccompProfile.For(DefaultCaps.Where(c => c != "CAP_SYS_CHROOT").ToList(), SeccompArch.X86_64);
        Assert.Equal(Eperm, BpfInterpreter.Run(Compile(without), X64, 161));
    }

    [Fact]
    public void Cap_sys_admin_lifts_the_namespace_rules()
    {
        var program = Compile(Default("CAP_SYS_ADMIN"));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, 56, CloneNewUser | CloneNewNet | 17));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, 435, 0, 88));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, I386, 310, CloneNewUser));
        // still refused for everyone
        Assert.Equal(Eperm, BpfInterpreter.Run(program, X64, 250));
        Assert.Equal(Eperm, BpfInterpreter.Run(program, X64, 135, 0x0400000));
        Assert.Equal(Eperm, BpfInterpreter.Run(program, X64, 41, 40, 1, 0));
        Assert.Equal(Eperm, BpfInterpreter.Run(program, X64, 425)); // io_uring_setup
    }

    [Fact]
    public void The_profile_names_both_abis_of_its_cpu_and_never_x32()
    {
        Assert.Equal(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"], Default().Architectures);
        var arm = DefaultSeccompProfile.For(DefaultCaps, SeccompArch.Aarch64);
        Assert.Equal(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"], arm.Architectures);
        Assert.Equal("SCMP_ACT_ERRNO", arm.DefaultAction);
        Assert.Equal(EPERM, arm.DefaultErrnoRet);
    }

    [Fact]
    public void Every_name_is_a_call_of_one_of_the_profiles_abis()
    {
        foreach (var native in new[] { SeccompArch.X86_64, SeccompArch.Aarch64 })
        {
            var profile = DefaultSeccompProfile.For([.. DefaultCaps, "CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_TIME"], native);
            var abis = profile.Architectures.Select(a => a == "SCMP_ARCH_X86_64" ? SeccompArch.X86_64 : a == "SCMP_ARCH_X86" ? SeccompArch.X86
                : a == "SCMP_ARCH_AARCH64" ? SeccompArch.Aarch64 : SeccompArch.Arm).ToList();
            var strangers = profile.Syscalls.SelectMany(r => r.Names).Distinct()
                .Where(name => !abis.Any(abi => LibSeccomp.ResolveName(SeccompCompiler.Token(abi), name) >= 0
                    || (abi == SeccompArch.X86 && LibSeccomp.ResolveName(SeccompCompiler.Token(abi), name) < -1)
                    || SyscallTable.Lookup(abi, name) is not null))
                .ToList();
            Assert.True(strangers.Count == 0, $"{native}: {string.Join(", ", strangers)}");
        }
    }

    [Fact]
    public void Json_is_the_default_capability_profile_and_parses_back()
    {
        var parsed = SeccompProfile.Parse(DefaultSeccompProfile.Json);
        var built = DefaultSeccompProfile.For(DefaultCaps);
        Assert.Equal(built.Syscalls.Count, parsed.Syscalls.Count);
        Assert.Equal(built.Syscalls.SelectMany(r => r.Names), parsed.Syscalls.SelectMany(r => r.Names));
        Assert.Equal(Compile(built), Compile(parsed));
    }
}
