using Nacelle.Common;
using Nacelle.ContainerCore.Interop;

namespace Nacelle.ContainerCore.Security.Seccomp;

/// <summary>The system-call ABIs nacelle filters: x86_64, i386 and x32 on amd64; aarch64 and 32-bit arm on arm64.</summary>
public enum SeccompArch
{
    X86_64,
    X86,
    X32,
    Aarch64,
    Arm,
}

/// <summary>Kernel constants of the seccomp ABI (linux/seccomp.h, linux/audit.h).</summary>
public static class SeccompConstants
{
    public const uint RetKillProcess = 0x80000000;
    public const uint RetKillThread = 0x00000000;
    public const uint RetTrap = 0x00030000;
    public const uint RetErrno = 0x00050000;
    public const uint RetTrace = 0x7ff00000;
    public const uint RetLog = 0x7ffc0000;
    public const uint RetAllow = 0x7fff0000;
    public const uint RetDataMask = 0x0000ffff;

    public const uint AuditArchX86_64 = 0xC000003E;
    public const uint AuditArchI386 = 0x40000003;
    public const uint AuditArchAarch64 = 0xC00000B7;
    public const uint AuditArchArm = 0x40000028;

    /// <summary>The bit x32 syscalls carry in their number (they run with AUDIT_ARCH_X86_64).</summary>
    public const uint X32SyscallBit = 0x40000000;

    public const uint FilterFlagTsync = 1;
    public const uint FilterFlagLog = 2;
    public const uint FilterFlagSpecAllow = 4;
    public const uint FilterFlagNewListener = 8;
    public const uint FilterFlagTsyncEsrch = 16;
    public const uint FilterFlagWaitKillableRecv = 32;

    /// <summary>BPF_MAXINSNS: the kernel refuses longer classic BPF programs.</summary>
    public const int MaxInstructions = 4096;

    /// <summary>Size of one struct sock_filter.</summary>
    public const int InstructionSize = 8;

    public const uint EPERM = 1;
    public const uint ENOSYS = 38;
}

/// <summary>A compiled filter: the struct sock_filter bytes, the seccomp() flags, and what was skipped or ignored.</summary>
public sealed record SeccompProgram(byte[] Filter, uint Flags, IReadOnlyList<string> Warnings)
{
    public int InstructionCount => Filter.Length / SeccompConstants.InstructionSize;
}

/// <summary>
/// Compiles an OCI seccomp profile into the classic BPF program the spawn helper installs, through libseccomp (the
/// library runc and crun use), with runc's rules: every ABI the CPU can enter and the profile names is filtered with its
/// own numbers, any other architecture (x32 too, unless named) kills the process, rules whose action is the default are
/// redundant, names no listed ABI knows are skipped. In front of libseccomp's program nacelle puts a short prologue of
/// its own (<see cref="SeccompPrologue"/>) that
/// <list type="bullet">
/// <item>answers ENOSYS for numbers above the highest the profile names on that ABI (calls newer than the profile, so
/// libraries fall back), unless the default action lets calls through anyway (ALLOW, LOG, TRACE), and</item>
/// <item>matches, by nacelle's own tables, the names this libseccomp is too old to know (argument conditions on those
/// are refused: the prologue compares numbers only).</item>
/// </list>
/// Everything a profile asks for is either compiled or refused naming the field; nothing is silently weakened.
/// </summary>
public static class SeccompCompiler
{
    /// <summary>Compiles <paramref name="profile"/> for a host of architecture <paramref name="nativeArch"/>; returns the filter bytes.</summary>
    public static byte[] Compile(SeccompProfile profile, SeccompArch nativeArch) => CompileProgram(profile, nativeArch).Filter;

    /// <summary>Compiles <paramref name="profile"/>; the result also carries the seccomp() flags and the warnings.</summary>
    public static SeccompProgram CompileProgram(SeccompProfile profile, SeccompArch nativeArch)
    {
        ArgumentNullException.ThrowIfNull(profile);
        if (nativeArch is not (SeccompArch.X86_64 or SeccompArch.Aarch64))
        {
            throw NacelleException.InvalidArgument($"seccomp: native architecture {ArchName(nativeArch)} is not supported (x86_64 and aarch64 are)");
        }

        if (NativeArch() != nativeArch)
        {
            // libseccomp always filters the architecture it was built for; it cannot compile for another host.
            throw new ArgumentException($"seccomp filters are compiled for this host's architecture, not {ArchName(nativeArch)}", nameof(nativeArch));
        }

        profile.ThrowIfNotOci();
        if (!string.IsNullOrEmpty(profile.ListenerPath))
        {
            throw NacelleException.InvalidArgument("seccomp: listenerPath: nacelle runs no seccomp agent (SCMP_ACT_NOTIFY is not supported)");
        }

        var warnings = new List<string>();
        var defaultAction = ParseAction(profile.DefaultAction, profile.DefaultErrnoRet, "defaultAction", "defaultErrnoRet");
        var flags = ParseFlags(profile.Flags);
        var arches = Architectures(profile.Architectures, nativeArch, warnings);
        var rules = ParseRules(profile.Syscalls);

        using var filter = LibSeccomp.Create(defaultAction);
        Check(LibSeccomp.SetAttribute(filter, LibSeccomp.Attribute.RawReturnCodes, 1), "set SCMP_FLTATR_API_SYSRAWRC");
        // An ABI the profile does not name is refused outright, never given the default action.
        Check(LibSeccomp.SetAttribute(filter, LibSeccomp.Attribute.BadArchAction, SeccompConstants.RetKillProcess), "set SCMP_FLTATR_ACT_BADARCH");
        // The filter is exported, not loaded here: the spawn helper sets no_new_privs itself when the spec asks.
        Check(LibSeccomp.SetAttribute(filter, LibSeccomp.Attribute.NoNewPrivileges, 0), "set SCMP_FLTATR_CTL_NNP");
        foreach (var arch in arches.Where(a => a != nativeArch))
        {
            Check(LibSeccomp.AddArchitecture(filter, Token(arch)), $"add {ArchName(arch)}");
        }

        var prologue = new SeccompPrologue(arches);
        var unconditional = new Dictionary<string, uint>(StringComparer.Ordinal);
        foreach (var rule in rules)
        {
            for (var j = 0; j < rule.Names.Count; j++)
            {
                var name = rule.Names[j];
                var field = $"syscalls[{rule.Index}].names[{j}]";
                var numbers = arches.Select(a => (Arch: a, Library: LibSeccomp.ResolveName(Token(a), name), Ours: SyscallTable.Lookup(a, name))).ToList();
                if (numbers.All(n => n.Library < 0 && !LibSeccomp.IsMultiplexed(n.Library) && n.Ours is null))
                {
                    AddOnce(warnings, $"seccomp: {field}: \"{name}\" is not a system call of {string.Join(", ", arches.Select(ArchName))}; skipped");
                    continue;
                }

                foreach (var (arch, library, ours) in numbers)
                {
                    // A negative libseccomp number is a pseudo one (a call i386 multiplexes, or none on that ABI).
                    if ((library >= 0 ? library : ours) is { } nr)
                    {
                        prologue.Know(arch, nr);
                    }
                }

                if (rule.Action == defaultAction)
                {
                    continue; // redundant (runc skips it too); its numbers still count as known above
                }

                if (rule.Args.Length == 0 && !unconditional.TryAdd(name, rule.Action) && unconditional[name] != rule.Action)
                {
                    // libseccomp keeps the earlier rule (as under runc); say so rather than let it pass unnoticed.
                    AddOnce(warnings, $"seccomp: {field}: an earlier rule already decides \"{name}\"; this one has no effect");
                }

                var libraryNr = LibSeccomp.ResolveName(name);
                if (libraryNr != LibSeccomp.UnknownSyscall)
                {
                    var rc = LibSeccomp.AddRule(filter, rule.Action, libraryNr, rule.Args);
                    if (rc < 0)
                    {
                        throw NacelleException.InvalidArgument(
                            $"seccomp: syscalls[{rule.Index}] (\"{name}\"): libseccomp {LibSeccomp.LibraryVersion()} refused the rule: {Errno(rc)}");
                    }
                }

                // ABIs on which this libseccomp does not know the name at all but nacelle's table does: the prologue
                // matches them.
                foreach (var (arch, library, ours) in numbers)
                {
                    if (library != LibSeccomp.UnknownSyscall || ours is not { } nr)
                    {
                        continue;
                    }

                    if (rule.Args.Length > 0)
                    {
                        throw NacelleException.InvalidArgument(
                            $"seccomp: syscalls[{rule.Index}].args: \"{name}\" is newer than libseccomp {LibSeccomp.LibraryVersion()}, " +
                            "which cannot compare its arguments; give it a rule without args");
                    }

                    prologue.Match(arch, nr, rule.Action);
                }
            }
        }

        var body = LibSeccomp.ExportBpf(filter);
        var program = prologue.Assemble(body, refusesByDefault: !LetsThrough(defaultAction));
        if (program.Length / SeccompConstants.InstructionSize > SeccompConstants.MaxInstructions)
        {
            throw NacelleException.InvalidArgument(
                $"seccomp: the compiled filter has {program.Length / SeccompConstants.InstructionSize} instructions; the kernel accepts at most {SeccompConstants.MaxInstructions}");
        }

        return new SeccompProgram(program, flags, warnings);
    }

    /// <summary>The AUDIT_ARCH_* value the kernel puts in seccomp_data.arch for <paramref name="arch"/>.</summary>
    public static uint AuditArch(SeccompArch arch) => arch switch
    {
        SeccompArch.X86_64 or SeccompArch.X32 => SeccompConstants.AuditArchX86_64,
        SeccompArch.X86 => SeccompConstants.AuditArchI386,
        SeccompArch.Aarch64 => SeccompConstants.AuditArchAarch64,
        SeccompArch.Arm => SeccompConstants.AuditArchArm,
        _ => throw new ArgumentOutOfRangeException(nameof(arch)),
    };

    /// <summary>libseccomp's SCMP_ARCH_* token for <paramref name="arch"/> (the audit value; x32 has its own).</summary>
    public static uint Token(SeccompArch arch) => arch == SeccompArch.X32 ? 0x4000003E : AuditArch(arch);

    /// <summary>The architecture this process runs on, or null when nacelle cannot compile filters for it.</summary>
    public static SeccompArch? NativeArch() => System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture switch
    {
        System.Runtime.InteropServices.Architecture.X64 => SeccompArch.X86_64,
        System.Runtime.InteropServices.Architecture.Arm64 => SeccompArch.Aarch64,
        _ => null,
    };

    /// <summary>The ABIs a CPU of <paramref name="nativeArch"/> can enter, native first.</summary>
    public static IReadOnlyList<SeccompArch> AbisOf(SeccompArch nativeArch) => nativeArch switch
    {
        SeccompArch.X86_64 => [SeccompArch.X86_64, SeccompArch.X86, SeccompArch.X32],
        SeccompArch.Aarch64 => [SeccompArch.Aarch64, SeccompArch.Arm],
        _ => [nativeArch],
    };

    /// <summary>The SCMP_ARCH_* name of <paramref name="arch"/>.</summary>
    public static string ArchName(SeccompArch arch) => arch switch
    {
        SeccompArch.X86_64 => "SCMP_ARCH_X86_64",
        SeccompArch.X86 => "SCMP_ARCH_X86",
        SeccompArch.X32 => "SCMP_ARCH_X32",
        SeccompArch.Aarch64 => "SCMP_ARCH_AARCH64",
        _ => "SCMP_ARCH_ARM",
    };

    /// <summary>The SECCOMP_FILTER_FLAG_* bits for the profile's flags; unknown flags and the listener flags (nothing
    /// listens) are refused naming the field.</summary>
    public static uint ParseFlags(IReadOnlyList<string> flags)
    {
        uint result = 0;
        for (var i = 0; i < flags.Count; i++)
        {
            result |= flags[i] switch
            {
                "SECCOMP_FILTER_FLAG_TSYNC" => SeccompConstants.FilterFlagTsync,
                "SECCOMP_FILTER_FLAG_LOG" => SeccompConstants.FilterFlagLog,
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => SeccompConstants.FilterFlagSpecAllow,
                "SECCOMP_FILTER_FLAG_TSYNC_ESRCH" => SeccompConstants.FilterFlagTsyncEsrch,
                "SECCOMP_FILTER_FLAG_NEW_LISTENER" or "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => throw NacelleException.InvalidArgument(
                    $"seccomp: flags[{i}]: {flags[i]} needs a seccomp agent, and nacelle runs none"),
                var other => throw NacelleException.InvalidArgument($"seccomp: flags[{i}]: unknown flag \"{other}\""),
            };
        }

        return result;
    }

    /// <summary>The SECCOMP_RET_* value of an SCMP_ACT_* action. ERRNO and TRACE take <paramref name="errnoRet"/>
    /// (EPERM when absent, as runc does); any other action with an errno, an unknown action and SCMP_ACT_NOTIFY (nothing
    /// listens) are refused naming the field.</summary>
    public static uint ParseAction(string action, uint? errnoRet, string field, string errnoField)
    {
        var takesErrno = action is "SCMP_ACT_ERRNO" or "SCMP_ACT_TRACE";
        if (errnoRet is { } errno)
        {
            if (!takesErrno)
            {
                throw NacelleException.InvalidArgument($"seccomp: {errnoField}: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE return an errno, not {Quote(action)}");
            }

            if (errno > SeccompConstants.RetDataMask)
            {
                throw NacelleException.InvalidArgument($"seccomp: {errnoField}: {errno} does not fit in 16 bits");
            }
        }

        return action switch
        {
            "SCMP_ACT_KILL" or "SCMP_ACT_KILL_THREAD" => SeccompConstants.RetKillThread,
            "SCMP_ACT_KILL_PROCESS" => SeccompConstants.RetKillProcess,
            "SCMP_ACT_TRAP" => SeccompConstants.RetTrap,
            "SCMP_ACT_ERRNO" => SeccompConstants.RetErrno | (errnoRet ?? SeccompConstants.EPERM),
            "SCMP_ACT_TRACE" => SeccompConstants.RetTrace | (errnoRet ?? SeccompConstants.EPERM),
            "SCMP_ACT_LOG" => SeccompConstants.RetLog,
            "SCMP_ACT_ALLOW" => SeccompConstants.RetAllow,
            "SCMP_ACT_NOTIFY" => throw NacelleException.InvalidArgument(
                $"seccomp: {field}: SCMP_ACT_NOTIFY needs a seccomp agent to answer, and nacelle runs none"),
            _ => throw NacelleException.InvalidArgument($"seccomp: {field}: unknown action {Quote(action)}"),
        };
    }

    /// <summary>Parses an SCMP_CMP_* operator; unknown ones are refused naming <paramref name="field"/>.</summary>
    public static LibSeccomp.Compare ParseOp(string op, string field) => op switch
    {
        "SCMP_CMP_NE" => LibSeccomp.Compare.NotEqual,
        "SCMP_CMP_LT" => LibSeccomp.Compare.LessThan,
        "SCMP_CMP_LE" => LibSeccomp.Compare.LessOrEqual,
        "SCMP_CMP_EQ" => LibSeccomp.Compare.Equal,
        "SCMP_CMP_GE" => LibSeccomp.Compare.GreaterOrEqual,
        "SCMP_CMP_GT" => LibSeccomp.Compare.GreaterThan,
        "SCMP_CMP_MASKED_EQ" => LibSeccomp.Compare.MaskedEqual,
        _ => throw NacelleException.InvalidArgument($"seccomp: {field}: unknown operator {Quote(op)}"),
    };

    // The listed architectures this CPU can enter, native first and always (as runc: libseccomp starts with it). Known
    // architectures of other CPUs never reach this kernel's filter; they are noted and left out.
    private static List<SeccompArch> Architectures(IReadOnlyList<string> names, SeccompArch nativeArch, List<string> warnings)
    {
        var abis = AbisOf(nativeArch);
        var result = new List<SeccompArch> { nativeArch };
        for (var i = 0; i < names.Count; i++)
        {
            var name = names[i];
            SeccompArch? arch = name switch
            {
                "SCMP_ARCH_X86_64" => SeccompArch.X86_64,
                "SCMP_ARCH_X86" => SeccompArch.X86,
                "SCMP_ARCH_X32" => SeccompArch.X32,
                "SCMP_ARCH_AARCH64" => SeccompArch.Aarch64,
                "SCMP_ARCH_ARM" => SeccompArch.Arm,
                "SCMP_ARCH_MIPS" or "SCMP_ARCH_MIPS64" or "SCMP_ARCH_MIPS64N32" or "SCMP_ARCH_MIPSEL" or "SCMP_ARCH_MIPSEL64"
                    or "SCMP_ARCH_MIPSEL64N32" or "SCMP_ARCH_PPC" or "SCMP_ARCH_PPC64" or "SCMP_ARCH_PPC64LE" or "SCMP_ARCH_S390"
                    or "SCMP_ARCH_S390X" or "SCMP_ARCH_PARISC" or "SCMP_ARCH_PARISC64" or "SCMP_ARCH_RISCV64"
                    or "SCMP_ARCH_LOONGARCH64" or "SCMP_ARCH_M68K" or "SCMP_ARCH_SH" or "SCMP_ARCH_SHEB" => null,
                _ => throw NacelleException.InvalidArgument($"seccomp: architectures[{i}]: unknown architecture {Quote(name)}"),
            };
            if (arch is not { } known || !abis.Contains(known))
            {
                AddOnce(warnings, $"seccomp: architectures[{i}]: {name} is not an ABI of this {ArchName(nativeArch)} CPU; ignored");
                continue;
            }

            if (!result.Contains(known))
            {
                result.Add(known);
            }
        }

        return result;
    }

    private sealed record Rule(int Index, IReadOnlyList<string> Names, uint Action, LibSeccomp.ArgCompare[] Args);

    // Validates every rule once (names, action, errnoRet, argument index/op), before anything is compiled.
    private static List<Rule> ParseRules(IReadOnlyList<SeccompSyscallRule> syscalls)
    {
        var rules = new List<Rule>(syscalls.Count);
        for (var i = 0; i < syscalls.Count; i++)
        {
            var rule = syscalls[i] ?? throw NacelleException.InvalidArgument($"seccomp: syscalls[{i}] is null");
            if (rule.Names.Count == 0)
            {
                throw NacelleException.InvalidArgument($"seccomp: syscalls[{i}].names is empty");
            }

            for (var j = 0; j < rule.Names.Count; j++)
            {
                if (string.IsNullOrWhiteSpace(rule.Names[j]))
                {
                    throw NacelleException.InvalidArgument($"seccomp: syscalls[{i}].names[{j}] is empty");
                }
            }

            var action = ParseAction(rule.Action, rule.ErrnoRet, $"syscalls[{i}].action", $"syscalls[{i}].errnoRet");
            var args = new LibSeccomp.ArgCompare[rule.Args.Count];
            var seen = new bool[6];
            for (var a = 0; a < rule.Args.Count; a++)
            {
                var arg = rule.Args[a] ?? throw NacelleException.InvalidArgument($"seccomp: syscalls[{i}].args[{a}] is null");
                if (arg.Index > 5)
                {
                    throw NacelleException.InvalidArgument($"seccomp: syscalls[{i}].args[{a}].index {arg.Index} is out of range (0-5)");
                }

                if (seen[arg.Index])
                {
                    // runc turns such a rule into one rule per condition (OR instead of AND); nacelle does not weaken it.
                    throw NacelleException.InvalidArgument(
                        $"seccomp: syscalls[{i}].args[{a}]: a second condition on argument {arg.Index}; libseccomp cannot AND " +
                        "two conditions on one argument, write them as separate rules");
                }

                seen[arg.Index] = true;
                args[a] = new LibSeccomp.ArgCompare
                {
                    Argument = arg.Index,
                    Op = ParseOp(arg.Op, $"syscalls[{i}].args[{a}].op"),
                    DatumA = arg.Value,
                    DatumB = arg.ValueTwo,
                };
            }

            rules.Add(new Rule(i, rule.Names, action, args));
        }

        return rules;
    }

    // ALLOW, LOG and TRACE let an unknown call through anyway: answering ENOSYS for newer calls would refuse them.
    private static bool LetsThrough(uint action) =>
        action == SeccompConstants.RetAllow || action == SeccompConstants.RetLog || (action & ~SeccompConstants.RetDataMask) == SeccompConstants.RetTrace;

    private static void Check(int rc, string what)
    {
        if (rc < 0)
        {
            throw new InvalidOperationException($"seccomp: libseccomp {LibSeccomp.LibraryVersion()}: cannot {what}: {Errno(rc)}");
        }
    }

    private static string Errno(int rc) => System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(-rc);

    private static string Quote(string? s) => s is null ? "null" : $"\"{s}\"";

    private static void AddOnce(List<string> warnings, string warning)
    {
        if (!warnings.Contains(warning))
        {
            warnings.Add(warning);
        }
    }
}
