using System.Buffers.Binary;
using Nacelle.Common;
using Nacelle.ContainerCore.Security.Seccomp;
using static Nacelle.ContainerCore.Security.Seccomp.SeccompConstants;

namespace Nacelle.Tests.Unit.ContainerCore.Security;

public sealed class SeccompCompilerTests
{
    private const uint X64 = AuditArchX86_64;
    private const uint A64 = AuditArchAarch64;

    // x86_64 numbers used below.
    private const int Read = 0, Write = 1, Ioctl = 16, Getcwd = 79, Personality = 135, Mkdirat = 258, Ptrace = 101;

    private static SeccompProfile Profile(string defaultAction, params SeccompSyscallRule[] rules)
        => new() { DefaultAction = defaultAction, Syscalls = rules };

    private static SeccompSyscallRule Rule(string action, string[] names, uint? errno = null, params SeccompArg[] args)
        => new() { Names = names, Action = action, ErrnoRet = errno, Args = args };

    private static SeccompArg Arg(uint index, string op, ulong value, ulong valueTwo = 0)
        => new() { Index = index, Op = op, Value = value, ValueTwo = valueTwo };

    private static byte[] CompileX64(SeccompProfile p) => SeccompCompiler.Compile(p, SeccompArch.X86_64);

    [Theory]
    [InlineData("SCMP_ACT_ALLOW", RetAllow)]
    [InlineData("SCMP_ACT_KILL", RetKillThread)]
    [InlineData("SCMP_ACT_KILL_THREAD", RetKillThread)]
    [InlineData("SCMP_ACT_KILL_PROCESS", RetKillProcess)]
    [InlineData("SCMP_ACT_TRAP", RetTrap)]
    [InlineData("SCMP_ACT_ERRNO", RetErrno | 1)]
    [InlineData("SCMP_ACT_TRACE", RetTrace)]
    [InlineData("SCMP_ACT_LOG", RetLog)]
    public void Default_action_applies_when_no_rule_matches(string action, uint expected)
    {
        var program = CompileX64(Profile(action));
        Assert.Equal(expected, BpfInterpreter.Run(program, X64, Getcwd));
        Assert.Equal(expected, BpfInterpreter.Run(program, X64, 434));
    }

    [Fact]
    public void Default_errno_ret_is_used()
    {
        var program = CompileX64(new SeccompProfile { DefaultAction = "SCMP_ACT_ERRNO", DefaultErrnoRet = 38 });
        Assert.Equal(RetErrno | 38, BpfInterpreter.Run(program, X64, Read));
    }

    [Fact]
    public void Allow_list_allows_listed_and_refuses_the_rest()
    {
        var program = CompileX64(Profile("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", ["read", "write", "getcwd"])));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, Read));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, Write));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, Getcwd));
        Assert.Equal(RetErrno | 1, BpfInterpreter.Run(program, X64, Mkdirat));
        Assert.Equal(RetErrno | 1, BpfInterpreter.Run(program, X64, 2));
    }

    [Fact]
    public void Deny_list_refuses_listed_with_their_errno_and_allows_the_rest()
    {
        var program = CompileX64(Profile(
            "SCMP_ACT_ALLOW",
            Rule("SCMP_ACT_KILL_PROCESS", ["ptrace"]),
            Rule("SCMP_ACT_ERRNO", ["getcwd"], errno: 38),
            Rule("SCMP_ACT_ERRNO", ["mkdirat"])));
        Assert.Equal(RetKillProcess, BpfInterpreter.Run(program, X64, Ptrace));
        Assert.Equal(RetErrno | 38, BpfInterpreter.Run(program, X64, Getcwd));
        Assert.Equal(RetErrno | 1, BpfInterpreter.Run(program, X64, Mkdirat));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, Read));
    }

    [Fact]
    public void Trace_carries_errno_ret_as_data()
    {
        var program = CompileX64(Profile("SCMP_ACT_ALLOW", Rule("SCMP_ACT_TRACE", ["getcwd"], errno: 77)));
        Assert.Equal(RetTrace | 77, BpfInterpreter.Run(program, X64, Getcwd));
    }

    public static TheoryData<string, ulong, ulong, bool> Comparisons => new()
    {
        { "SCMP_CMP_EQ", 5, 5, true },
        { "SCMP_CMP_EQ", 5, 6, false },
        { "SCMP_CMP_EQ", 0x1_0000_0005, 5, false },               // same low half, different high half
        { "SCMP_CMP_EQ", 0xFFFF_FFFF_0000_0000, 0xFFFF_FFFF_0000_0000, true },
        { "SCMP_CMP_NE", 5, 5, false },
        { "SCMP_CMP_NE", 5, 6, true },
        { "SCMP_CMP_NE", 0x1_0000_0005, 5, true },
        { "SCMP_CMP_LT", 10, 9, true },
        { "SCMP_CMP_LT", 10, 10, false },
        { "SCMP_CMP_LT", 10, 11, false },
        { "SCMP_CMP_LT", 0x2_0000_0000, 0x1_FFFF_FFFF, true },      // high 1 < 2 although low is larger
        { "SCMP_CMP_LT", 0x1_0000_0000, 0x1_0000_0001, false },
        { "SCMP_CMP_LT", 5, 0x1_0000_0000, false },
        { "SCMP_CMP_LE", 10, 10, true },
        { "SCMP_CMP_LE", 10, 11, false },
        { "SCMP_CMP_LE", 0x1_0000_0000, 0xFFFF_FFFF, true },
        { "SCMP_CMP_LE", 0xFFFF_FFFF, 0x1_0000_0000, false },
        { "SCMP_CMP_GT", 10, 11, true },
        { "SCMP_CMP_GT", 10, 10, false },
        { "SCMP_CMP_GT", 0xFFFF_FFFF, 0x1_0000_0000, true },        // high half decides
        { "SCMP_CMP_GT", 0x1_0000_0005, 0x6, false },
        { "SCMP_CMP_GT", 0x1_0000_0005, 0x1_0000_0006, true },
        { "SCMP_CMP_GE", 10, 10, true },
        { "SCMP_CMP_GE", 10, 9, false },
        { "SCMP_CMP_GE", 0x1_0000_0000, 0x1_0000_0000, true },
        { "SCMP_CMP_GE", 0x1_0000_0001, 0x2, false },
        { "SCMP_CMP_GE", 0, 0xFFFF_FFFF_FFFF_FFFF, true },
    };

    [Theory]
    [MemberData(nameof(Comparisons))]
    public void Each_operator_compares_64_bit_unsigned_values(string op, ulong value, ulong argument, bool matches)
    {
        foreach (var index in new uint[] { 0, 3, 5 })
        {
            var program = CompileX64(Profile(
                "SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", ["ioctl"], errno: 13, Arg(index, op, value))));
            var args = new ulong[6];
            args[index] = argument;
            Assert.Equal(matches ? RetErrno | 13 : RetAllow, BpfInterpreter.Run(program, X64, Ioctl, args));
            // Another syscall with the same arguments is untouched.
            Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, Read, args));
        }
    }

    [Theory]
    [InlineData(0x0000_0000_0000_00FFUL, 0x0000_0000_0000_0042UL, 0x1234_5678_0000_1142UL, true)]
    [InlineData(0x0000_0000_0000_00FFUL, 0x0000_0000_0000_0042UL, 0x0000_0000_0000_0043UL, false)]
    [InlineData(0xFFFF_0000_0000_0000UL, 0xABCD_0000_0000_0000UL, 0xABCD_1111_2222_3333UL, true)]
    [InlineData(0xFFFF_0000_0000_0000UL, 0xABCD_0000_0000_0000UL, 0xABCE_0000_0000_0000UL, false)]
    [InlineData(0x0000_0000_0000_000FUL, 0x0000_0000_0000_0010UL, 0x0000_0000_0000_0010UL, false)] // datum outside the mask never matches
    [InlineData(0x8000_0000_0000_0001UL, 0x8000_0000_0000_0001UL, 0xFFFF_FFFF_FFFF_FFFFUL, true)]
    [InlineData(0x8000_0000_0000_0001UL, 0x8000_0000_0000_0001UL, 0x7FFF_FFFF_FFFF_FFFFUL, false)]
    public void Masked_eq_compares_arg_and_mask_with_value_two(ulong mask, ulong expected, ulong argument, bool matches)
    {
        var program = CompileX64(Profile(
            "SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", ["ioctl"], errno: 22, Arg(1, "SCMP_CMP_MASKED_EQ", mask, expected))));
        Assert.Equal(matches ? RetErrno | 22 : RetAllow, BpfInterpreter.Run(program, X64, Ioctl, 0, argument));
    }

    [Fact]
    public void Conditions_of_one_rule_are_all_required()
    {
        var program = CompileX64(Profile(
            "SCMP_ACT_ALLOW",
            Rule("SCMP_ACT_ERRNO", ["mkdirat"], errno: 1, Arg(2, "SCMP_CMP_EQ", 0x1C0), Arg(0, "SCMP_CMP_NE", 0xFFFF_FF9C))));
        Assert.Equal(RetErrno | 1, BpfInterpreter.Run(program, X64, Mkdirat, 3, 0, 0x1C0));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, Mkdirat, 0xFFFF_FF9C, 0, 0x1C0));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, Mkdirat, 3, 0, 0x1ED));
    }

    [Fact]
    public void Several_rules_for_one_syscall_are_evaluated_in_order()
    {
        var program = CompileX64(Profile(
            "SCMP_ACT_ERRNO",
            Rule("SCMP_ACT_ERRNO", ["personality"], errno: 10, Arg(0, "SCMP_CMP_GT", 100)),
            Rule("SCMP_ACT_ALLOW", ["read"]),
            Rule("SCMP_ACT_ERRNO", ["personality"], errno: 20, Arg(0, "SCMP_CMP_GT", 10)),
            Rule("SCMP_ACT_ALLOW", ["personality"], null, Arg(0, "SCMP_CMP_EQ", 8)),
            Rule("SCMP_ACT_LOG", ["personality"])));
        Assert.Equal(RetErrno | 10, BpfInterpreter.Run(program, X64, Personality, 500));
        Assert.Equal(RetErrno | 20, BpfInterpreter.Run(program, X64, Personality, 50));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, Personality, 8));
        Assert.Equal(RetLog, BpfInterpreter.Run(program, X64, Personality, 3));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, Read));
        Assert.Equal(RetErrno | 1, BpfInterpreter.Run(program, X64, Write));
    }

    [Fact]
    public void A_syscall_whose_rules_all_fail_gets_the_default_action()
    {
        var program = CompileX64(Profile(
            "SCMP_ACT_ERRNO",
            Rule("SCMP_ACT_ALLOW", ["personality"], null, Arg(0, "SCMP_CMP_EQ", 0)),
            Rule("SCMP_ACT_ALLOW", ["personality"], null, Arg(0, "SCMP_CMP_EQ", 8))));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, Personality, 0));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, Personality, 8));
        Assert.Equal(RetErrno | 1, BpfInterpreter.Run(program, X64, Personality, 0x1_0000_0000));
    }

    [Fact]
    public void Foreign_architectures_not_listed_get_the_default_action()
    {
        var program = CompileX64(Profile("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", ["read", "getcwd"])));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, Read));
        Assert.Equal(RetErrno | 1, BpfInterpreter.Run(program, AuditArchI386, Read));
        Assert.Equal(RetErrno | 1, BpfInterpreter.Run(program, A64, 63)); // aarch64 read, not listed
    }

    [Fact]
    public void A_listed_second_architecture_uses_its_own_numbers()
    {
        var profile = Profile("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", ["getcwd"], errno: 38)) with
        {
            Architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
        };
        var program = CompileX64(profile);
        Assert.Equal(RetErrno | 38, BpfInterpreter.Run(program, X64, Getcwd));
        Assert.Equal(RetErrno | 38, BpfInterpreter.Run(program, A64, 17));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, A64, Getcwd));   // 79 is newfstatat on aarch64
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, 17));       // 17 is pread64 on x86_64

        // Compiled for an aarch64 host, x86_64 only when listed.
        var native = SeccompCompiler.Compile(Profile("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", ["getcwd"], errno: 38)), SeccompArch.Aarch64);
        Assert.Equal(RetErrno | 38, BpfInterpreter.Run(native, A64, 17));
        Assert.Equal(RetAllow, BpfInterpreter.Run(native, X64, Getcwd));
    }

    [Fact]
    public void X32_syscalls_get_the_default_action_unless_x32_is_listed()
    {
        const int x32Getcwd = unchecked((int)X32SyscallBit) | Getcwd;
        var deny = Profile("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", ["getcwd"]));
        var program = CompileX64(deny);
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, Getcwd));
        Assert.Equal(RetErrno | 1, BpfInterpreter.Run(program, X64, x32Getcwd));

        var withX32 = CompileX64(deny with { Architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"] });
        Assert.Equal(RetAllow, BpfInterpreter.Run(withX32, X64, Getcwd));
        Assert.Equal(RetAllow, BpfInterpreter.Run(withX32, X64, x32Getcwd));
        Assert.Equal(RetErrno | 1, BpfInterpreter.Run(withX32, X64, unchecked((int)X32SyscallBit) | Read));

        // With a default-allow profile the x32 twin of a denied syscall is caught only when x32 is listed.
        var allow = Profile("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", ["getcwd"], errno: 38)) with
        {
            Architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
        };
        Assert.Equal(RetErrno | 38, BpfInterpreter.Run(CompileX64(allow), X64, x32Getcwd));
    }

    [Fact]
    public void A_profile_of_every_x86_64_syscall_with_an_arg_rule_still_evaluates_correctly()
    {
        var table = SyscallTable.For(SeccompArch.X86_64)!;
        Assert.True(table.Count > 370, $"x86_64 table has {table.Count} entries");
        var rules = table
            .OrderBy(kv => kv.Value)
            .Select(kv => Rule("SCMP_ACT_ERRNO", [kv.Key], (uint)(kv.Value % 1000) + 1, Arg(1, "SCMP_CMP_EQ", (ulong)kv.Value + 0x1_0000_0000)))
            .ToArray();
        var result = SeccompCompiler.CompileProgram(Profile("SCMP_ACT_ALLOW", rules), SeccompArch.X86_64);
        Assert.Empty(result.Warnings);
        Assert.True(result.InstructionCount > 2000, $"{result.InstructionCount} instructions");
        foreach (var (name, nr) in table)
        {
            Assert.Equal(RetErrno | (uint)((nr % 1000) + 1), BpfInterpreter.Run(result.Filter, X64, nr, 0, (ulong)nr + 0x1_0000_0000));
            Assert.Equal(RetAllow, BpfInterpreter.Run(result.Filter, X64, nr, 0, (ulong)nr));
        }

        Assert.Equal(RetAllow, BpfInterpreter.Run(result.Filter, X64, 1000, 0, 1000 + 0x1_0000_0000));
    }

    [Fact]
    public void Jumps_longer_than_255_instructions_use_ja()
    {
        // 120 rules for one syscall (about 720 instructions) followed by other syscalls, on two architectures.
        var rules = Enumerable.Range(0, 120)
            .Select(i => Rule("SCMP_ACT_ERRNO", ["ioctl"], (uint)i + 1, Arg(1, "SCMP_CMP_EQ", (ulong)i * 3)))
            .Append(Rule("SCMP_ACT_ERRNO", ["getcwd"], 38))
            .Append(Rule("SCMP_ACT_KILL_PROCESS", ["ptrace"], null, Arg(0, "SCMP_CMP_EQ", 16)))
            .ToArray();
        var profile = Profile("SCMP_ACT_ALLOW", rules) with { Architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"] };
        var program = CompileX64(profile);

        Assert.Contains(Enumerable.Range(0, program.Length / 8), pc =>
            BinaryPrimitives.ReadUInt16LittleEndian(program.AsSpan(pc * 8)) == 0x05
            && BinaryPrimitives.ReadUInt32LittleEndian(program.AsSpan((pc * 8) + 4)) > 255);

        foreach (var (arch, ioctl, getcwd, ptrace) in new[] { (X64, Ioctl, Getcwd, Ptrace), (A64, 29, 17, 117) })
        {
            for (var i = 0; i < 120; i++)
            {
                Assert.Equal(RetErrno | (uint)(i + 1), BpfInterpreter.Run(program, arch, ioctl, 0, (ulong)i * 3));
            }

            Assert.Equal(RetAllow, BpfInterpreter.Run(program, arch, ioctl, 0, 1));
            Assert.Equal(RetErrno | 38, BpfInterpreter.Run(program, arch, getcwd));
            Assert.Equal(RetKillProcess, BpfInterpreter.Run(program, arch, ptrace, 16));
            Assert.Equal(RetAllow, BpfInterpreter.Run(program, arch, ptrace, 17));
        }
    }

    [Fact]
    public void A_filter_over_4096_instructions_is_refused()
    {
        var rules = Enumerable.Range(0, 900)
            .Select(i => Rule("SCMP_ACT_ERRNO", ["ioctl"], 1, Arg(1, "SCMP_CMP_EQ", (ulong)i)))
            .ToArray();
        var e = Assert.Throws<NacelleException>(() => CompileX64(Profile("SCMP_ACT_ALLOW", rules)));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("4096", e.Message);
    }

    [Fact]
    public void Unknown_action_op_arch_flag_and_index_are_refused_naming_the_field()
    {
        void Refused(SeccompProfile p, string field, string value)
        {
            var e = Assert.Throws<NacelleException>(() => CompileX64(p));
            Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
            Assert.Contains(field, e.Message);
            Assert.Contains(value, e.Message);
        }

        Refused(Profile("SCMP_ACT_SOMETIMES"), "defaultAction", "SCMP_ACT_SOMETIMES");
        Refused(Profile("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ALLOW", ["read"]), Rule("SCMP_ACT_NOPE", ["write"])), "syscalls[1].action", "SCMP_ACT_NOPE");
        Refused(Profile("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", ["read"], null, Arg(0, "SCMP_CMP_EQ", 1), Arg(1, "SCMP_CMP_ABOUT", 1))), "syscalls[0].args[1].op", "SCMP_CMP_ABOUT");
        Refused(Profile("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", ["read"], null, Arg(6, "SCMP_CMP_EQ", 1))), "syscalls[0].args[0].index", "6");
        Refused(Profile("SCMP_ACT_ALLOW") with { Architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"] }, "architectures[1]", "SCMP_ARCH_VAX");
        Refused(Profile("SCMP_ACT_ALLOW") with { Flags = ["SECCOMP_FILTER_FLAG_FAST"] }, "flags[0]", "SECCOMP_FILTER_FLAG_FAST");
        Refused(Profile("SCMP_ACT_ERRNO") with { DefaultErrnoRet = 70000 }, "defaultAction", "70000");
    }

    [Fact]
    public void Unknown_syscall_names_are_skipped_and_reported()
    {
        var result = SeccompCompiler.CompileProgram(
            Profile("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", ["read", "frobnicate", "getcwd", "arm_fadvise64_64"])),
            SeccompArch.X86_64);
        Assert.Equal(2, result.Warnings.Count);
        Assert.Contains(result.Warnings, w => w.Contains("\"frobnicate\"", StringComparison.Ordinal));
        Assert.Contains(result.Warnings, w => w.Contains("\"arm_fadvise64_64\"", StringComparison.Ordinal));
        Assert.Equal(RetAllow, BpfInterpreter.Run(result.Filter, X64, Read));
        Assert.Equal(RetAllow, BpfInterpreter.Run(result.Filter, X64, Getcwd));
        Assert.Equal(RetErrno | 1, BpfInterpreter.Run(result.Filter, X64, Write));
    }

    [Fact]
    public void Listed_architectures_without_a_table_are_reported()
    {
        var result = SeccompCompiler.CompileProgram(
            Profile("SCMP_ACT_ERRNO") with { Architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"] }, SeccompArch.X86_64);
        Assert.Contains(result.Warnings, w => w.Contains("SCMP_ARCH_X86;", StringComparison.Ordinal));
        Assert.Equal(RetErrno | 1, BpfInterpreter.Run(result.Filter, AuditArchI386, 3));
    }

    [Fact]
    public void Flags_map_to_their_kernel_values()
    {
        var result = SeccompCompiler.CompileProgram(
            Profile("SCMP_ACT_ALLOW") with
            {
                Flags = ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            },
            SeccompArch.X86_64);
        Assert.Equal(1u | 2u | 4u | 32u, result.Flags);
        Assert.Equal(0u, SeccompCompiler.CompileProgram(Profile("SCMP_ACT_ALLOW"), SeccompArch.X86_64).Flags);
    }

    [Fact]
    public void Program_bytes_are_little_endian_sock_filters_starting_with_the_arch_load()
    {
        var program = CompileX64(Profile("SCMP_ACT_ALLOW"));
        Assert.Equal(0, program.Length % 8);
        // ld [4]  = 20 00 00 00 04 00 00 00
        Assert.Equal(new byte[] { 0x20, 0, 0, 0, 4, 0, 0, 0 }, program[..8]);
        // jeq #0xC000003E, 0, 1
        Assert.Equal(new byte[] { 0x15, 0, 0, 1, 0x3E, 0, 0, 0xC0 }, program[8..16]);
    }

    [Fact]
    public void Oci_json_is_parsed_with_the_source_generated_context()
    {
        const string json = """
            {
              "defaultAction": "SCMP_ACT_ERRNO",
              "defaultErrnoRet": 38,
              "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
              "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
              "listenerPath": "/ignored",
              "syscalls": [
                { "names": ["read", "write"], "action": "SCMP_ACT_ALLOW" },
                { "names": ["personality"], "action": "SCMP_ACT_ALLOW",
                  "args": [ { "index": 0, "value": 4294967295, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ" } ] },
                { "names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13 }
              ]
            }
            """;
        var profile = SeccompProfile.Parse(json);
        Assert.Equal("SCMP_ACT_ERRNO", profile.DefaultAction);
        Assert.Equal(38u, profile.DefaultErrnoRet);
        Assert.Equal(["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"], profile.Architectures);
        Assert.Equal(3, profile.Syscalls.Count);
        Assert.Equal(0xFFFF_FFFFUL, profile.Syscalls[1].Args[0].Value);
        Assert.Equal(8UL, profile.Syscalls[1].Args[0].ValueTwo);
        Assert.Equal("SCMP_CMP_MASKED_EQ", profile.Syscalls[1].Args[0].Op);
        Assert.Equal(13u, profile.Syscalls[2].ErrnoRet);

        var result = SeccompCompiler.CompileProgram(profile, SeccompArch.X86_64);
        Assert.Equal(FilterFlagSpecAllow, result.Flags);
        Assert.Equal(RetAllow, BpfInterpreter.Run(result.Filter, X64, Personality, 8));
        Assert.Equal(RetErrno | 38, BpfInterpreter.Run(result.Filter, X64, Personality, 9));
        Assert.Equal(RetErrno | 13, BpfInterpreter.Run(result.Filter, X64, Getcwd));

        using var doc = System.Text.Json.JsonDocument.Parse(json);
        Assert.Equal(profile.DefaultErrnoRet, SeccompProfile.FromJson(doc.RootElement).DefaultErrnoRet);

        // Absent or null lists read as empty.
        var sparse = SeccompProfile.Parse(
            """{"defaultAction":"SCMP_ACT_ALLOW","architectures":null,"syscalls":[{"names":["getcwd"],"action":"SCMP_ACT_ERRNO","args":null}]}""");
        Assert.Empty(sparse.Architectures);
        Assert.Empty(sparse.Flags);
        Assert.Empty(sparse.Syscalls[0].Args);
        Assert.Equal(RetErrno | 1, BpfInterpreter.Run(SeccompCompiler.Compile(sparse, SeccompArch.X86_64), X64, Getcwd));

        var bad = Assert.Throws<NacelleException>(() => SeccompProfile.Parse("{\"defaultAction\": 5}"));
        Assert.Equal(ErrorKind.InvalidArgument, bad.Kind);
    }

    [Theory]
    [InlineData("read", 0, 63)]
    [InlineData("getcwd", 79, 17)]
    [InlineData("mkdirat", 258, 34)]
    [InlineData("execve", 59, 221)]
    [InlineData("clone", 56, 220)]
    [InlineData("seccomp", 317, 277)]
    [InlineData("recvmmsg", 299, 243)]
    [InlineData("wait4", 61, 260)]
    [InlineData("kexec_file_load", 320, 294)]
    [InlineData("pidfd_send_signal", 424, 424)]
    [InlineData("pidfd_open", 434, 434)]
    [InlineData("clone3", 435, 435)]
    [InlineData("close_range", 436, 436)]
    [InlineData("openat2", 437, 437)]
    [InlineData("faccessat2", 439, 439)]
    [InlineData("epoll_pwait2", 441, 441)]
    [InlineData("landlock_restrict_self", 446, 446)]
    [InlineData("memfd_secret", 447, 447)]
    [InlineData("futex_waitv", 449, 449)]
    [InlineData("cachestat", 451, 451)]
    [InlineData("fchmodat2", 452, 452)]
    [InlineData("map_shadow_stack", 453, 453)]
    [InlineData("statmount", 457, 457)]
    [InlineData("listmount", 458, 458)]
    [InlineData("mseal", 462, 462)]
    public void Syscall_tables_hold_the_kernel_numbers(string name, int x86_64, int aarch64)
    {
        Assert.Equal(x86_64, SyscallTable.Lookup(SeccompArch.X86_64, name));
        Assert.Equal(aarch64, SyscallTable.Lookup(SeccompArch.Aarch64, name));
    }

    [Theory]
    [InlineData("open")]
    [InlineData("mkdir")]
    [InlineData("arch_prctl")]
    public void Legacy_x86_64_syscalls_are_absent_on_aarch64(string name)
    {
        Assert.NotNull(SyscallTable.Lookup(SeccompArch.X86_64, name));
        Assert.Null(SyscallTable.Lookup(SeccompArch.Aarch64, name));
    }
}
