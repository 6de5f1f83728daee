using System.Buffers.Binary;
using Nacelle.Common;
using Nacelle.ContainerCore.Security.Seccomp;
using static Nacelle.ContainerCore.Security.Seccomp.SeccompConstants;
using static Nacelle.Tests.Unit.ContainerCore.Security.BpfInterpreter;

namespace Nacelle.Tests.Unit.ContainerCore.Security;

/// <summary>
/// The compiler drives Debian's libseccomp for real; its programs are run here by <see cref="BpfInterpreter"/> over
/// synthetic seccomp_data, per ABI (x86_64, i386 with its own numbers, x32 numbers with bit 30, foreign audit values).
/// </summary>
public sealed class SeccompCompilerTests
{
    private const uint A64 = AuditArchAarch64;
    private const int X32Bit = 0x40000000;

    // x86_64 numbers used below.
    private const int Read = 0, Write = 1, Ioctl = 16, Getpid = 39, Getcwd = 79, Personality = 135, Keyctl = 250, Mkdirat = 258;

    // i386 numbers used below.
    private const int I386Getpid = 20, I386Ioctl = 54, I386Getcwd = 183, I386Keyctl = 288;

    private static SeccompProfile Profile(string defaultAction, params SeccompSyscallRule[] rules)
        => new() { DefaultAction = defaultAction, Syscalls = rules };

    private static SeccompSyscallRule Rule(string action, string[] names, uint? errno = null, params SeccompArg[] args)
        => new() { Names = names, Action = action, ErrnoRet = errno, Args = args };

    private static SeccompArg Arg(uint index, string op, ulong value, ulong valueTwo = 0)
        => new() { Index = index, Op = op, Value = value, ValueTwo = valueTwo };

    private static byte[] CompileX64(SeccompProfile p) => SeccompCompiler.Compile(p, SeccompArch.X86_64);

    private static SeccompProfile WithI386(SeccompProfile p) => p with { Architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"] };

    [Theory]
    [InlineData("SCMP_ACT_ALLOW", RetAllow)]
    [InlineData("SCMP_ACT_KILL", RetKillThread)]
    [InlineData("SCMP_ACT_KILL_THREAD", RetKillThread)]
    [InlineData("SCMP_ACT_KILL_PROCESS", RetKillProcess)]
    [InlineData("SCMP_ACT_TRAP", RetTrap)]
    [InlineData("SCMP_ACT_ERRNO", RetErrno | 1)]
    [InlineData("SCMP_ACT_TRACE", RetTrace | 1)]
    [InlineData("SCMP_ACT_LOG", RetLog)]
    public void Default_action_applies_when_no_rule_matches_on_every_listed_abi(string action, uint expected)
    {
        // futex_waitv (449) is named, so lower numbers are not "newer than the profile".
        var program = CompileX64(WithI386(Profile(action, Rule(action == "SCMP_ACT_ALLOW" ? "SCMP_ACT_LOG" : "SCMP_ACT_ALLOW", ["futex_waitv"]))));
        Assert.Equal(expected, BpfInterpreter.Run(program, X64, Getcwd));
        Assert.Equal(expected, BpfInterpreter.Run(program, I386, I386Getcwd));
        Assert.Equal(expected, BpfInterpreter.Run(program, X64, 3));
    }

    [Fact]
    public void Default_errno_ret_is_used()
    {
        var program = CompileX64(new SeccompProfile { DefaultAction = "SCMP_ACT_ERRNO", DefaultErrnoRet = 13 });
        Assert.Equal(RetErrno | 13, BpfInterpreter.Run(program, X64, Read));
    }

    [Fact]
    public void Allow_list_allows_listed_refuses_the_rest_and_answers_enosys_above_the_highest_named_number()
    {
        var program = CompileX64(WithI386(Profile("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", ["read", "write", "getcwd", "getpid"]))));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, Read));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, Getcwd));
        Assert.Equal(Eperm, BpfInterpreter.Run(program, X64, Ioctl));
        // getcwd (79) is the highest x86_64 number named: above it, ENOSYS.
        Assert.Equal(Enosys, BpfInterpreter.Run(program, X64, Getcwd + 1));
        Assert.Equal(Enosys, BpfInterpreter.Run(program, X64, Mkdirat));
        Assert.Equal(Enosys, BpfInterpreter.Run(program, X64, 0x3fffffff));

        // i386 with i386 numbers: getcwd is 183 there.
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, I386, I386Getpid));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, I386, I386Getcwd));
        Assert.Equal(Eperm, BpfInterpreter.Run(program, I386, I386Ioctl));
        Assert.Equal(Enosys, BpfInterpreter.Run(program, I386, I386Keyctl));
    }

    [Theory]
    [InlineData("SCMP_ACT_ALLOW", RetAllow)]
    [InlineData("SCMP_ACT_LOG", RetLog)]
    [InlineData("SCMP_ACT_TRACE", RetTrace | 1)]
    public void Defaults_that_let_calls_through_get_no_enosys(string action, uint expected)
    {
        var program = CompileX64(Profile(action, Rule("SCMP_ACT_ERRNO", ["getpid"], 13)));
        Assert.Equal(RetErrno | 13, BpfInterpreter.Run(program, X64, Getpid));
        Assert.Equal(expected, BpfInterpreter.Run(program, X64, 1000));
    }

    [Fact]
    public void A_rule_whose_action_is_the_default_still_counts_as_known()
    {
        var program = CompileX64(Profile(
            "SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", ["read"]), Rule("SCMP_ACT_ERRNO", ["keyctl"], EPERM)));
        Assert.Equal(Eperm, BpfInterpreter.Run(program, X64, Keyctl));
        Assert.Equal(Eperm, BpfInterpreter.Run(program, X64, Getcwd));
        Assert.Equal(Enosys, BpfInterpreter.Run(program, X64, Keyctl + 1));
    }

    [Fact]
    public void Architectures_the_profile_does_not_name_kill_the_process()
    {
        var program = CompileX64(Profile("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", ["getcwd"], 38)));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, Read));
        Assert.Equal(RetKillProcess, BpfInterpreter.Run(program, I386, I386Getpid));
        Assert.Equal(RetKillProcess, BpfInterpreter.Run(program, A64, 63));
        Assert.Equal(RetKillProcess, BpfInterpreter.Run(program, AuditArchArm, 20));
        Assert.Equal(RetKillProcess, BpfInterpreter.Run(program, X64, X32Bit | Getcwd));
        Assert.Equal(RetKillProcess, BpfInterpreter.Run(program, X64, X32Bit | Getpid));
    }

    [Fact]
    public void I386_is_filtered_with_its_own_numbers()
    {
        var program = CompileX64(WithI386(Profile("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", ["keyctl", "getcwd"], 13))));
        Assert.Equal(RetErrno | 13, BpfInterpreter.Run(program, X64, Keyctl));
        Assert.Equal(RetErrno | 13, BpfInterpreter.Run(program, I386, I386Keyctl));
        Assert.Equal(RetErrno | 13, BpfInterpreter.Run(program, I386, I386Getcwd));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, I386, Keyctl));   // 250 is fadvise64 on i386
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, I386Keyctl)); // 288 is accept4 on x86_64
    }

    [Fact]
    public void X32_is_filtered_with_its_own_numbers_only_when_listed()
    {
        var profile = Profile("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", ["getpid", "getcwd", "ioctl"])) with
        {
            Architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
        };
        var program = CompileX64(profile);
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, Getpid));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, X32Bit | Getpid));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, X32Bit | Getcwd));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, X32Bit | 514));   // x32 ioctl is 514
        Assert.Equal(Eperm, BpfInterpreter.Run(program, X64, X32Bit | Ioctl));    // 16 is not a call of x32
        Assert.Equal(Eperm, BpfInterpreter.Run(program, X64, X32Bit | Read));
        Assert.Equal(Enosys, BpfInterpreter.Run(program, X64, X32Bit | 515 + 100));
        Assert.Equal(RetKillProcess, BpfInterpreter.Run(program, I386, I386Getpid));
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
    [InlineData("SCMP_CMP_EQ", 5u, 5u, true)]
    [InlineData("SCMP_CMP_NE", 5u, 5u, false)]
    [InlineData("SCMP_CMP_LT", 10u, 9u, true)]
    [InlineData("SCMP_CMP_LE", 10u, 11u, false)]
    [InlineData("SCMP_CMP_GT", 10u, 0xFFFF_FFFFu, true)]
    [InlineData("SCMP_CMP_GE", 10u, 9u, false)]
    public void Operators_compare_the_32_bit_arguments_of_i386(string op, uint value, uint argument, bool matches)
    {
        var program = CompileX64(WithI386(Profile("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", ["ioctl"], errno: 13, Arg(1, op, value)))));
        Assert.Equal(matches ? RetErrno | 13 : RetAllow, BpfInterpreter.Run(program, I386, I386Ioctl, 0, argument));
        Assert.Equal(matches ? RetErrno | 13 : RetAllow, BpfInterpreter.Run(program, X64, Ioctl, 0, argument));
    }

    [Theory]
    [InlineData(0x0000_0000_0000_00FFUL, 0x0000_0000_0000_0042UL, 0x1234_5678_0000_1142UL, true)]
    [InlineData(0x0000_0000_0000_00FFUL, 0x0000_0000_0000_0042UL, 0x0000_0000_0000_0043UL, false)]
    [InlineData(0xFFFF_0000_0000_0000UL, 0xABCD_0000_0000_0000UL, 0xABCD_1111_2222_3333UL, true)]
    [InlineData(0xFFFF_0000_0000_0000UL, 0xABCD_0000_0000_0000UL, 0xABCE_0000_0000_0000UL, false)]
    [InlineData(0x0000_0000_0000_000FUL, 0x0000_0000_0000_0010UL, 0x0000_0000_0000_0020UL, true)] // libseccomp (so runc) masks the datum too
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
    public void Several_rules_for_one_syscall_are_alternatives()
    {
        var program = CompileX64(Profile(
            "SCMP_ACT_ERRNO",
            Rule("SCMP_ACT_ALLOW", ["personality"], null, Arg(0, "SCMP_CMP_EQ", 0)),
            Rule("SCMP_ACT_ALLOW", ["read"]),
            Rule("SCMP_ACT_ALLOW", ["personality"], null, Arg(0, "SCMP_CMP_EQ", 8)),
            Rule("SCMP_ACT_LOG", ["personality"], null, Arg(0, "SCMP_CMP_GT", 0xFFFF_FFFF))));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, Personality, 0));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, Personality, 8));
        Assert.Equal(RetLog, BpfInterpreter.Run(program, X64, Personality, 0x1_0000_0000));
        Assert.Equal(Eperm, BpfInterpreter.Run(program, X64, Personality, 9));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, Read));
    }

    [Fact]
    public void Two_conditions_on_one_argument_are_refused_rather_than_or_ed()
    {
        var e = Assert.Throws<NacelleException>(() => CompileX64(Profile(
            "SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", ["socket"], null, Arg(0, "SCMP_CMP_GT", 40), Arg(0, "SCMP_CMP_LT", 64)))));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("syscalls[0].args[1]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Calls_newer_than_libseccomp_are_matched_by_number_on_every_abi()
    {
        // mseal (462) and file_setattr (469) are unknown to Debian's libseccomp 2.5.4; nacelle's tables know them.
        var program = CompileX64(WithI386(Profile("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", ["getpid", "mseal"]), Rule("SCMP_ACT_ERRNO", ["file_setattr"], 13))));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, X64, 462));
        Assert.Equal(RetAllow, BpfInterpreter.Run(program, I386, 462));
        Assert.Equal(RetErrno | 13, BpfInterpreter.Run(program, X64, 469));
        Assert.Equal(RetErrno | 13, BpfInterpreter.Run(program, I386, 469));
        Assert.Equal(Eperm, BpfInterpreter.Run(program, X64, 463));
        Assert.Equal(Enosys, BpfInterpreter.Run(program, X64, 470));
        Assert.Equal(Enosys, BpfInterpreter.Run(program, I386, 470));

        var e = Assert.Throws<NacelleException>(() => CompileX64(Profile(
            "SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", ["read"]), Rule("SCMP_ACT_ALLOW", ["mseal"], null, Arg(2, "SCMP_CMP_EQ", 0)))));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("syscalls[1].args", e.Message, StringComparison.Ordinal);
        Assert.Contains("mseal", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Minus_one_is_left_to_libseccomp_and_never_answered_enosys()
    {
        var program = CompileX64(WithI386(Profile("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", ["getpid"]))));
        Assert.NotEqual(Enosys, BpfInterpreter.Run(program, X64, -1));
        Assert.NotEqual(Enosys, BpfInterpreter.Run(program, I386, -1));
    }

    [Fact]
    public void A_large_profile_with_argument_rules_on_every_x86_64_call_evaluates_correctly()
    {
        var calls = SyscallTable.Entries(SeccompArch.X86_64).Where(e => e.Value is < 335 or (> 336 and < 457)).OrderBy(e => e.Value).ToList();
        Assert.True(calls.Count > 360, $"x86_64 table has {calls.Count} entries");
        var rules = calls
            .Select(kv => Rule("SCMP_ACT_ERRNO", [kv.Key], (uint)(kv.Value % 1000) + 2, Arg(1, "SCMP_CMP_EQ", (ulong)kv.Value + 0x1_0000_0000)))
            .ToArray();
        var result = SeccompCompiler.CompileProgram(Profile("SCMP_ACT_ALLOW", rules), SeccompArch.X86_64);
        Assert.Empty(result.Warnings);
        Assert.True(result.InstructionCount > 2000, $"{result.InstructionCount} instructions");
        foreach (var (_, nr) in calls)
        {
            Assert.Equal(RetErrno | (uint)((nr % 1000) + 2), BpfInterpreter.Run(result.Filter, X64, nr, 0, (ulong)nr + 0x1_0000_0000));
            Assert.Equal(RetAllow, BpfInterpreter.Run(result.Filter, X64, nr, 0, (ulong)nr));
        }
    }

    [Fact]
    public void A_filter_over_4096_instructions_is_refused()
    {
        var rules = Enumerable.Range(0, 2000)
            .Select(i => Rule("SCMP_ACT_ERRNO", ["ioctl"], 2, Arg(1, "SCMP_CMP_EQ", (ulong)i * 0x1_0000_0001)))
            .ToArray();
        var e = Assert.Throws<NacelleException>(() => CompileX64(Profile("SCMP_ACT_ALLOW", rules)));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("4096", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Bad_fields_are_refused_naming_them()
    {
        void Refused(SeccompProfile p, string field, string value)
        {
            var e = Assert.Throws<NacelleException>(() => CompileX64(p));
            Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
            Assert.Contains(field, e.Message, StringComparison.Ordinal);
            Assert.Contains(value, e.Message, StringComparison.Ordinal);
        }

        Refused(Profile("SCMP_ACT_SOMETIMES"), "defaultAction", "SCMP_ACT_SOMETIMES");
        Refused(Profile("SCMP_ACT_NOTIFY"), "defaultAction", "SCMP_ACT_NOTIFY");
        Refused(Profile("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ALLOW", ["read"]), Rule("SCMP_ACT_NOPE", ["write"])), "syscalls[1].action", "SCMP_ACT_NOPE");
        Refused(Profile("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", ["read"]), Rule("SCMP_ACT_NOTIFY", ["write"])), "syscalls[1].action", "SCMP_ACT_NOTIFY");
        Refused(Profile("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", ["read"], errno: 5)), "syscalls[0].errnoRet", "SCMP_ACT_ALLOW");
        Refused(Profile("SCMP_ACT_ALLOW") with { DefaultErrnoRet = 5 }, "defaultErrnoRet", "SCMP_ACT_ALLOW");
        Refused(Profile("SCMP_ACT_ERRNO") with { DefaultErrnoRet = 70000 }, "defaultErrnoRet", "70000");
        Refused(Profile("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", ["read"], null, Arg(0, "SCMP_CMP_EQ", 1), Arg(1, "SCMP_CMP_ABOUT", 1))), "syscalls[0].args[1].op", "SCMP_CMP_ABOUT");
        Refused(Profile("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", ["read"], null, Arg(6, "SCMP_CMP_EQ", 1))), "syscalls[0].args[0].index", "6");
        Refused(Profile("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", [])), "syscalls[0].names", "empty");
        Refused(Profile("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", ["read", ""])), "syscalls[0].names[1]", "empty");
        Refused(Profile("SCMP_ACT_ALLOW") with { Architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"] }, "architectures[1]", "SCMP_ARCH_VAX");
        Refused(Profile("SCMP_ACT_ALLOW") with { Flags = ["SECCOMP_FILTER_FLAG_FAST"] }, "flags[0]", "SECCOMP_FILTER_FLAG_FAST");
        Refused(Profile("SCMP_ACT_ALLOW") with { Flags = ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_NEW_LISTENER"] }, "flags[1]", "agent");
        Refused(Profile("SCMP_ACT_ALLOW") with { Flags = ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"] }, "flags[0]", "agent");
        Refused(Profile("SCMP_ACT_ALLOW") with { ListenerPath = "/run/agent.sock" }, "listenerPath", "agent");
    }

    [Fact]
    public void Docker_format_profiles_are_refused_rather_than_read_without_their_conditions()
    {
        var archMap = Assert.Throws<NacelleException>(() => SeccompProfile.Parse(
            """{"defaultAction":"SCMP_ACT_ERRNO","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]}],"syscalls":[]}"""));
        Assert.Equal(ErrorKind.InvalidArgument, archMap.Kind);
        Assert.Contains("archMap", archMap.Message, StringComparison.Ordinal);

        var includes = Assert.Throws<NacelleException>(() => SeccompProfile.Parse(
            """{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"},{"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}}]}"""));
        Assert.Contains("syscalls[1].includes", includes.Message, StringComparison.Ordinal);
        var excludes = Assert.Throws<NacelleException>(() => SeccompProfile.Parse(
            """{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["clone"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["CAP_SYS_ADMIN"]}}]}"""));
        Assert.Contains("syscalls[0].excludes", excludes.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_syscall_names_and_foreign_architectures_are_skipped_and_reported()
    {
        var result = SeccompCompiler.CompileProgram(
            Profile("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", ["read", "frobnicate", "getcwd", "arm_fadvise64_64"])) with
            {
                Architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64", "SCMP_ARCH_S390X"],
            },
            SeccompArch.X86_64);
        Assert.Equal(4, result.Warnings.Count);
        Assert.Contains(result.Warnings, w => w.Contains("\"frobnicate\"", StringComparison.Ordinal));
        Assert.Contains(result.Warnings, w => w.Contains("\"arm_fadvise64_64\"", StringComparison.Ordinal));
        Assert.Contains(result.Warnings, w => w.Contains("architectures[1]: SCMP_ARCH_AARCH64", StringComparison.Ordinal));
        Assert.Contains(result.Warnings, w => w.Contains("architectures[2]: SCMP_ARCH_S390X", StringComparison.Ordinal));
        Assert.Equal(RetAllow, BpfInterpreter.Run(result.Filter, X64, Read));
        Assert.Equal(RetAllow, BpfInterpreter.Run(result.Filter, X64, Getcwd));
        Assert.Equal(Eperm, BpfInterpreter.Run(result.Filter, X64, Write));
        Assert.Equal(RetKillProcess, BpfInterpreter.Run(result.Filter, A64, 63));
    }

    [Fact]
    public void A_second_unconditional_rule_for_a_call_is_reported_and_the_first_decides()
    {
        var result = SeccompCompiler.CompileProgram(
            Profile("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", ["getpid"]), Rule("SCMP_ACT_KILL_PROCESS", ["getpid"])), SeccompArch.X86_64);
        Assert.Contains(result.Warnings, w => w.Contains("syscalls[1].names[0]", StringComparison.Ordinal));
        Assert.Equal(RetAllow, BpfInterpreter.Run(result.Filter, X64, Getpid));
    }

    [Fact]
    public void Flags_map_to_their_kernel_values()
    {
        var result = SeccompCompiler.CompileProgram(
            Profile("SCMP_ACT_ALLOW") with
            {
                Flags = ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC_ESRCH"],
            },
            SeccompArch.X86_64);
        Assert.Equal(1u | 2u | 4u | 16u, result.Flags);
        Assert.Equal(0u, SeccompCompiler.CompileProgram(Profile("SCMP_ACT_ALLOW"), SeccompArch.X86_64).Flags);
    }

    [Fact]
    public void The_program_starts_by_loading_the_architecture()
    {
        foreach (var profile in new[] { Profile("SCMP_ACT_ALLOW"), Profile("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", ["read"])) })
        {
            var program = CompileX64(profile);
            Assert.Equal(0, program.Length % 8);
            // ld [4]  = 20 00 00 00 04 00 00 00
            Assert.Equal(new byte[] { 0x20, 0, 0, 0, 4, 0, 0, 0 }, program[..8]);
            Assert.Equal(4u, BinaryPrimitives.ReadUInt32LittleEndian(program.AsSpan(4)));
        }
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
        Assert.Equal(profile.Syscalls.Count, SeccompProfile.Parse(profile.ToJson()).Syscalls.Count);

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
}
