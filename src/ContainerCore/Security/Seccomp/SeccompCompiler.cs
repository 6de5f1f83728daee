using System.Buffers.Binary;
using Nacelle.Common;

namespace Nacelle.ContainerCore.Security.Seccomp;

/// <summary>The architectures an OCI profile may name (SCMP_ARCH_*).</summary>
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
}

/// <summary>A compiled filter: the struct sock_filter bytes, the seccomp() flags, and what was skipped.</summary>
public sealed record SeccompProgram(byte[] Filter, uint Flags, IReadOnlyList<string> Warnings)
{
    public int InstructionCount => Filter.Length / SeccompConstants.InstructionSize;
}

/// <summary>
/// Compiles an OCI seccomp profile into a classic BPF program over struct seccomp_data
/// ({ int nr; u32 arch; u64 instruction_pointer; u64 args[6]; }), as the spawn helper installs it.
/// Layout: an arch dispatch (unlisted arches get the default action), then per arch one block per syscall with its
/// rules in profile order (a rule's arg conditions are ANDed; the first matching rule decides), then the default action.
/// </summary>
public static class SeccompCompiler
{
    // Classic BPF opcodes (linux/bpf_common.h).
    internal const ushort LdWAbs = 0x20;     // BPF_LD | BPF_W | BPF_ABS
    internal const ushort AluAndK = 0x54;    // BPF_ALU | BPF_AND | BPF_K
    internal const ushort Ja = 0x05;         // BPF_JMP | BPF_JA
    internal const ushort JeqK = 0x15;       // BPF_JMP | BPF_JEQ | BPF_K
    internal const ushort JgtK = 0x25;       // BPF_JMP | BPF_JGT | BPF_K
    internal const ushort JgeK = 0x35;       // BPF_JMP | BPF_JGE | BPF_K
    internal const ushort JsetK = 0x45;      // BPF_JMP | BPF_JSET | BPF_K
    internal const ushort RetK = 0x06;       // BPF_RET | BPF_K

    private const uint OffsetNr = 0;
    private const uint OffsetArch = 4;
    private const uint OffsetArgs = 16;

    /// <summary>Compiles <paramref name="profile"/> for a host of architecture <paramref name="nativeArch"/>; returns the filter bytes.</summary>
    public static byte[] Compile(SeccompProfile profile, SeccompArch nativeArch) => CompileProgram(profile, nativeArch).Filter;

    /// <summary>Compiles <paramref name="profile"/>; the result also carries the flags and the warnings (unknown syscall names skipped).</summary>
    public static SeccompProgram CompileProgram(SeccompProfile profile, SeccompArch nativeArch)
    {
        ArgumentNullException.ThrowIfNull(profile);
        if (SyscallTable.For(nativeArch) is null)
        {
            throw new NacelleException(ErrorKind.InvalidArgument, $"seccomp: native architecture {nativeArch} is not supported (x86_64 and aarch64 are)");
        }

        var warnings = new List<string>();
        var defaultAction = ParseAction(profile.DefaultAction, profile.DefaultErrnoRet, "defaultAction");
        var flags = ParseFlags(profile.Flags);

        // Architectures: the native one always, plus those listed. x32 rides on x86_64's audit arch.
        var listed = new List<SeccompArch>();
        for (var i = 0; i < profile.Architectures.Count; i++)
        {
            var arch = ParseArch(profile.Architectures[i], $"architectures[{i}]");
            if (!listed.Contains(arch))
            {
                listed.Add(arch);
            }
        }

        var allowX32 = listed.Contains(SeccompArch.X32);
        var arches = new List<SeccompArch> { nativeArch };
        foreach (var arch in listed)
        {
            if (arch == SeccompArch.X32 || arches.Contains(arch))
            {
                continue;
            }

            if (SyscallTable.For(arch) is null)
            {
                warnings.Add($"seccomp: no syscall table for {ArchName(arch)}; its syscalls get the default action");
                continue;
            }

            arches.Add(arch);
        }

        if (allowX32 && !arches.Contains(SeccompArch.X86_64))
        {
            warnings.Add("seccomp: SCMP_ARCH_X32 needs SCMP_ARCH_X86_64; ignored");
        }

        // Validate every rule once (actions, ops, indices), independent of the architecture.
        var rules = new List<(SeccompSyscallRule Rule, uint Action, Condition[] Conditions, int Index)>();
        for (var i = 0; i < profile.Syscalls.Count; i++)
        {
            var rule = profile.Syscalls[i]
                ?? throw new NacelleException(ErrorKind.InvalidArgument, $"seccomp: syscalls[{i}] is null");
            var action = ParseAction(rule.Action, rule.ErrnoRet, $"syscalls[{i}].action");
            var conditions = new Condition[rule.Args.Count];
            for (var a = 0; a < rule.Args.Count; a++)
            {
                var arg = rule.Args[a]
                    ?? throw new NacelleException(ErrorKind.InvalidArgument, $"seccomp: syscalls[{i}].args[{a}] is null");
                if (arg.Index > 5)
                {
                    throw new NacelleException(ErrorKind.InvalidArgument, $"seccomp: syscalls[{i}].args[{a}].index {arg.Index} is out of range (0-5)");
                }

                conditions[a] = new Condition(arg.Index, ParseOp(arg.Op, $"syscalls[{i}].args[{a}].op"), arg.Value, arg.ValueTwo);
            }

            rules.Add((rule, action, conditions, i));
        }

        var e = new Emitter();
        var archLabels = new int[arches.Count];
        e.Load(OffsetArch);
        for (var i = 0; i < arches.Count; i++)
        {
            archLabels[i] = e.NewLabel();
            e.JumpIf(JeqK, AuditArch(arches[i]), skipIfFalse: 1);
            e.JumpAlways(archLabels[i]);
        }

        e.Return(defaultAction);

        foreach (var (arch, index) in arches.Select((a, i) => (a, i)))
        {
            e.Mark(archLabels[index]);
            var table = SyscallTable.For(arch)!;
            e.Load(OffsetNr);
            if (arch == SeccompArch.X86_64)
            {
                if (allowX32)
                {
                    // x32 syscalls use x86_64's numbers plus the x32 bit: strip it and apply the same rules.
                    e.Emit(AluAndK, 0, 0, ~SeccompConstants.X32SyscallBit);
                }
                else
                {
                    // x32 not listed: such syscalls get the default action, as for a foreign architecture.
                    e.JumpIf(JsetK, SeccompConstants.X32SyscallBit, skipIfFalse: 1);
                    e.Return(defaultAction);
                }
            }

            // Group the rules by syscall number, keeping the profile order within each syscall.
            var groups = new List<(int Nr, List<(uint Action, Condition[] Conditions)> Rules)>();
            var byNr = new Dictionary<int, int>();
            foreach (var (rule, action, conditions, ruleIndex) in rules)
            {
                foreach (var name in rule.Names)
                {
                    if (name is null || !table.TryGetValue(name, out var nr))
                    {
                        var warning = $"seccomp: unknown syscall \"{name}\" on {ArchName(arch)} (syscalls[{ruleIndex}]) skipped";
                        if (!warnings.Contains(warning))
                        {
                            warnings.Add(warning);
                        }

                        continue;
                    }

                    if (!byNr.TryGetValue(nr, out var g))
                    {
                        g = groups.Count;
                        byNr[nr] = g;
                        groups.Add((nr, []));
                    }

                    groups[g].Rules.Add((action, conditions));
                }
            }

            foreach (var (nr, groupRules) in groups)
            {
                if (groupRules[0].Conditions.Length == 0)
                {
                    // The common case: no conditions, two instructions and no long jump.
                    e.JumpIf(JeqK, (uint)nr, skipIfFalse: 1);
                    e.Return(groupRules[0].Action);
                    continue;
                }

                var nextSyscall = e.NewLabel();
                e.Emit(JeqK, 1, 0, (uint)nr);   // match: skip the long jump into this syscall's rules
                e.JumpAlways(nextSyscall);
                foreach (var (action, conditions) in groupRules)
                {
                    if (conditions.Length == 0)
                    {
                        e.Return(action);
                        goto decided;   // later rules for this syscall can never match
                    }

                    var nextRule = e.NewLabel();
                    foreach (var condition in conditions)
                    {
                        EmitCondition(e, condition, nextRule);
                    }

                    e.Return(action);
                    e.Mark(nextRule);
                }

                // The syscall matched but none of its rules did; the accumulator no longer holds nr.
                e.Return(defaultAction);
            decided:
                e.Mark(nextSyscall);
            }

            e.Return(defaultAction);
        }

        var bytes = e.Assemble();
        return new SeccompProgram(bytes, flags, warnings);
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

    /// <summary>The architecture this process runs on, or null when nacelle cannot compile filters for it.</summary>
    public static SeccompArch? NativeArch() => System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture switch
    {
        System.Runtime.InteropServices.Architecture.X64 => SeccompArch.X86_64,
        System.Runtime.InteropServices.Architecture.Arm64 => SeccompArch.Aarch64,
        _ => null,
    };

    /// <summary>Parses an SCMP_ARCH_* name; unknown names are refused naming <paramref name="field"/>.</summary>
    public static SeccompArch ParseArch(string name, string field = "architectures") => name switch
    {
        "SCMP_ARCH_X86_64" => SeccompArch.X86_64,
        "SCMP_ARCH_X86" => SeccompArch.X86,
        "SCMP_ARCH_X32" => SeccompArch.X32,
        "SCMP_ARCH_AARCH64" => SeccompArch.Aarch64,
        "SCMP_ARCH_ARM" => SeccompArch.Arm,
        _ => throw new NacelleException(ErrorKind.InvalidArgument, $"seccomp: {field}: unknown or unsupported architecture \"{name}\""),
    };

    /// <summary>The SECCOMP_FILTER_FLAG_* bits for the profile's flags; unknown flags are refused.</summary>
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
                "SECCOMP_FILTER_FLAG_NEW_LISTENER" => SeccompConstants.FilterFlagNewListener,
                "SECCOMP_FILTER_FLAG_TSYNC_ESRCH" => SeccompConstants.FilterFlagTsyncEsrch,
                "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => SeccompConstants.FilterFlagWaitKillableRecv,
                var other => throw new NacelleException(ErrorKind.InvalidArgument, $"seccomp: flags[{i}]: unknown flag \"{other}\""),
            };
        }

        return result;
    }

    /// <summary>The SECCOMP_RET_* value of an SCMP_ACT_* action; unknown actions are refused naming <paramref name="field"/>.</summary>
    public static uint ParseAction(string action, uint? errnoRet, string field)
    {
        if (errnoRet is > SeccompConstants.RetDataMask)
        {
            throw new NacelleException(ErrorKind.InvalidArgument, $"seccomp: {field}: errnoRet {errnoRet} does not fit in 16 bits");
        }

        return action switch
        {
            "SCMP_ACT_KILL" or "SCMP_ACT_KILL_THREAD" => SeccompConstants.RetKillThread,
            "SCMP_ACT_KILL_PROCESS" => SeccompConstants.RetKillProcess,
            "SCMP_ACT_TRAP" => SeccompConstants.RetTrap,
            "SCMP_ACT_ERRNO" => SeccompConstants.RetErrno | (errnoRet ?? SeccompConstants.EPERM),
            "SCMP_ACT_TRACE" => SeccompConstants.RetTrace | (errnoRet ?? 0),
            "SCMP_ACT_LOG" => SeccompConstants.RetLog,
            "SCMP_ACT_ALLOW" => SeccompConstants.RetAllow,
            "SCMP_ACT_NOTIFY" => throw new NacelleException(ErrorKind.InvalidArgument, $"seccomp: {field}: SCMP_ACT_NOTIFY is not supported"),
            _ => throw new NacelleException(ErrorKind.InvalidArgument, $"seccomp: {field}: unknown action \"{action}\""),
        };
    }

    /// <summary>Parses an SCMP_CMP_* operator; unknown ones are refused naming <paramref name="field"/>.</summary>
    public static SeccompOp ParseOp(string op, string field) => op switch
    {
        "SCMP_CMP_NE" => SeccompOp.NotEqual,
        "SCMP_CMP_LT" => SeccompOp.LessThan,
        "SCMP_CMP_LE" => SeccompOp.LessOrEqual,
        "SCMP_CMP_EQ" => SeccompOp.Equal,
        "SCMP_CMP_GE" => SeccompOp.GreaterOrEqual,
        "SCMP_CMP_GT" => SeccompOp.GreaterThan,
        "SCMP_CMP_MASKED_EQ" => SeccompOp.MaskedEqual,
        _ => throw new NacelleException(ErrorKind.InvalidArgument, $"seccomp: {field}: unknown operator \"{op}\""),
    };

    private static string ArchName(SeccompArch arch) => arch switch
    {
        SeccompArch.X86_64 => "SCMP_ARCH_X86_64",
        SeccompArch.X86 => "SCMP_ARCH_X86",
        SeccompArch.X32 => "SCMP_ARCH_X32",
        SeccompArch.Aarch64 => "SCMP_ARCH_AARCH64",
        _ => "SCMP_ARCH_ARM",
    };

    // A 64-bit unsigned comparison of args[i] against value, done on the two 32-bit halves (little-endian: the low
    // half at 16+8i, the high half at +4). Falls through when the condition holds, jumps to `fail` otherwise.
    private static void EmitCondition(Emitter e, Condition c, int fail)
    {
        var lo = OffsetArgs + (8 * c.Index);
        var hi = lo + 4;
        var vLo = (uint)c.Value;
        var vHi = (uint)(c.Value >> 32);
        var pass = e.NewLabel();
        switch (c.Op)
        {
            case SeccompOp.Equal:
                e.Load(hi);
                e.Branch(JeqK, vHi, Emitter.Next, fail);
                e.Load(lo);
                e.Branch(JeqK, vLo, pass, fail);
                break;
            case SeccompOp.NotEqual:
                e.Load(hi);
                e.Branch(JeqK, vHi, Emitter.Next, pass);
                e.Load(lo);
                e.Branch(JeqK, vLo, fail, pass);
                break;
            case SeccompOp.GreaterThan:
            case SeccompOp.GreaterOrEqual:
                e.Load(hi);
                e.Branch(JgtK, vHi, pass, Emitter.Next);
                e.Branch(JeqK, vHi, Emitter.Next, fail);
                e.Load(lo);
                e.Branch(c.Op == SeccompOp.GreaterThan ? JgtK : JgeK, vLo, pass, fail);
                break;
            case SeccompOp.LessThan:
            case SeccompOp.LessOrEqual:
                e.Load(hi);
                e.Branch(JgtK, vHi, fail, Emitter.Next);
                e.Branch(JeqK, vHi, Emitter.Next, pass);
                e.Load(lo);
                // arg < v  <=>  !(lo >= vLo); arg <= v  <=>  !(lo > vLo)
                e.Branch(c.Op == SeccompOp.LessThan ? JgeK : JgtK, vLo, fail, pass);
                break;
            case SeccompOp.MaskedEqual:
                // (arg & value) == valueTwo
                e.Load(hi);
                e.Emit(AluAndK, 0, 0, vHi);
                e.Branch(JeqK, (uint)(c.ValueTwo >> 32), Emitter.Next, fail);
                e.Load(lo);
                e.Emit(AluAndK, 0, 0, vLo);
                e.Branch(JeqK, (uint)c.ValueTwo, pass, fail);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(c));
        }

        e.Mark(pass);
    }

    private readonly record struct Condition(uint Index, SeccompOp Op, ulong Value, ulong ValueTwo);

    // Collects instructions whose jump targets are labels and resolves them at the end. Conditional jumps (8-bit
    // offsets) are only used within one rule, which is far shorter than 255 instructions; every jump that can be long
    // (arch dispatch, skipping a syscall's rules) is a BPF_JA with its 32-bit offset.
    private sealed class Emitter
    {
        public const int Next = -1;

        private readonly List<(ushort Code, int Jt, int Jf, uint K, int KLabel)> _code = [];
        private readonly List<int> _labels = [];

        public int NewLabel()
        {
            _labels.Add(-1);
            return _labels.Count - 1;
        }

        public void Mark(int label) => _labels[label] = _code.Count;

        public void Emit(ushort code, byte jt, byte jf, uint k) => _code.Add((code, -2 - jt, -2 - jf, k, -1));

        public void Load(uint offset) => Emit(LdWAbs, 0, 0, offset);

        public void Return(uint action) => Emit(RetK, 0, 0, action);

        /// <summary>A conditional jump that skips <paramref name="skipIfFalse"/> instructions when false.</summary>
        public void JumpIf(ushort code, uint k, byte skipIfFalse) => Emit(code, 0, skipIfFalse, k);

        public void JumpAlways(int label) => _code.Add((Ja, -2, -2, 0, label));

        /// <summary>A conditional jump to labels (or <see cref="Next"/>).</summary>
        public void Branch(ushort code, uint k, int trueLabel, int falseLabel) => _code.Add((code, trueLabel, falseLabel, k, -1));

        public byte[] Assemble()
        {
            if (_code.Count > SeccompConstants.MaxInstructions)
            {
                throw new NacelleException(
                    ErrorKind.InvalidArgument,
                    $"seccomp: the compiled filter has {_code.Count} instructions; the kernel accepts at most {SeccompConstants.MaxInstructions}");
            }

            var bytes = new byte[_code.Count * SeccompConstants.InstructionSize];
            for (var i = 0; i < _code.Count; i++)
            {
                var (code, jt, jf, k, kLabel) = _code[i];
                if (kLabel >= 0)
                {
                    k = (uint)(Target(kLabel) - i - 1);
                }

                var span = bytes.AsSpan(i * SeccompConstants.InstructionSize, SeccompConstants.InstructionSize);
                BinaryPrimitives.WriteUInt16LittleEndian(span, code);
                span[2] = Offset(jt, i);
                span[3] = Offset(jf, i);
                BinaryPrimitives.WriteUInt32LittleEndian(span[4..], k);
            }

            return bytes;
        }

        private int Target(int label)
        {
            var target = _labels[label];
            if (target < 0)
            {
                throw new InvalidOperationException($"seccomp compiler: label {label} was never placed");
            }

            return target;
        }

        // jt/jf encoding: <= -2 is a literal offset (-2 - n), -1 (Next) is 0, >= 0 is a label.
        private byte Offset(int jump, int at)
        {
            if (jump <= -2)
            {
                return (byte)(-2 - jump);
            }

            if (jump == Next)
            {
                return 0;
            }

            var offset = Target(jump) - at - 1;
            if (offset is < 0 or > byte.MaxValue)
            {
                throw new InvalidOperationException($"seccomp compiler: conditional jump of {offset} at {at}");
            }

            return (byte)offset;
        }
    }
}

/// <summary>The SCMP_CMP_* argument comparisons (all unsigned 64-bit).</summary>
public enum SeccompOp
{
    NotEqual,
    LessThan,
    LessOrEqual,
    Equal,
    GreaterOrEqual,
    GreaterThan,
    MaskedEqual,
}
