using System.Buffers.Binary;

namespace Nacelle.ContainerCore.Security.Seccomp;

/// <summary>
/// The few classic BPF instructions nacelle puts in front of libseccomp's program (runc patches its filters the same
/// way). Per ABI the profile filters, on seccomp_data.arch:
/// <code>
///   nr is -1 (a tracer skipped the call), or on x86_64 carries the x32 bit  -> libseccomp (x32: see below)
///   nr is a call this libseccomp does not know, named by the profile       -> that rule's action
///   nr is above the highest number the profile names                       -> ERRNO(ENOSYS), when the default refuses
///   anything else                                                          -> libseccomp's program
/// </code>
/// With x32 listed, x32 numbers get the same three checks against x32's own numbers. An architecture nothing is to be
/// done for falls straight through to libseccomp, which refuses ABIs the profile does not name. Conditional jumps
/// only ever skip one instruction; every longer jump is a BPF_JA with its 32-bit offset.
/// </summary>
internal sealed class SeccompPrologue(IReadOnlyList<SeccompArch> arches)
{
    // Classic BPF opcodes (linux/bpf_common.h).
    internal const ushort LdWAbs = 0x20;     // BPF_LD | BPF_W | BPF_ABS
    internal const ushort Ja = 0x05;         // BPF_JMP | BPF_JA
    internal const ushort JeqK = 0x15;       // BPF_JMP | BPF_JEQ | BPF_K
    internal const ushort JgtK = 0x25;       // BPF_JMP | BPF_JGT | BPF_K
    internal const ushort JgeK = 0x35;       // BPF_JMP | BPF_JGE | BPF_K
    internal const ushort RetK = 0x06;       // BPF_RET | BPF_K

    private const uint OffsetNr = 0;
    private const uint OffsetArch = 4;
    private const uint SkippedByTracer = 0xffffffff;

    private readonly Dictionary<SeccompArch, uint> _highest = [];
    private readonly Dictionary<SeccompArch, List<(uint Nr, uint Action)>> _matches = [];

    /// <summary>The profile names call <paramref name="nr"/> of <paramref name="arch"/> (it is not "newer than the profile").</summary>
    public void Know(SeccompArch arch, int nr)
    {
        if ((uint)nr > _highest.GetValueOrDefault(arch))
        {
            _highest[arch] = (uint)nr;
        }
    }

    /// <summary>Call <paramref name="nr"/> of <paramref name="arch"/> gets <paramref name="action"/> here, before libseccomp
    /// (which does not know it). The first rule for a number decides, as libseccomp keeps the first.</summary>
    public void Match(SeccompArch arch, int nr, uint action)
    {
        var list = _matches.TryGetValue(arch, out var existing) ? existing : _matches[arch] = [];
        if (!list.Exists(m => m.Nr == (uint)nr))
        {
            list.Add(((uint)nr, action));
        }
    }

    /// <summary>The prologue followed by <paramref name="body"/> (libseccomp's program); just the body when there is
    /// nothing to do. <paramref name="refusesByDefault"/>: the default action refuses, so newer calls get ENOSYS.</summary>
    public byte[] Assemble(byte[] body, bool refusesByDefault)
    {
        var sections = arches.ToDictionary(a => a, a => new Section(
            _matches.GetValueOrDefault(a) ?? [],
            refusesByDefault && _highest.TryGetValue(a, out var highest) ? highest : null));
        if (sections.Values.All(s => s.IsEmpty))
        {
            return body;
        }

        var e = new Emitter();
        var library = e.NewLabel();
        var blocks = new List<(uint Audit, int Label, SeccompArch Arch)>();
        foreach (var arch in arches.Where(a => a != SeccompArch.X32))
        {
            var x32 = arch == SeccompArch.X86_64 && sections.TryGetValue(SeccompArch.X32, out var x) && !x.IsEmpty;
            if (!sections[arch].IsEmpty || x32)
            {
                blocks.Add((SeccompCompiler.AuditArch(arch), e.NewLabel(), arch));
            }
        }

        e.Load(OffsetArch);
        foreach (var (audit, label, _) in blocks)
        {
            e.JumpIf(JeqK, audit, label);
        }

        e.JumpAlways(library);
        foreach (var (_, label, arch) in blocks)
        {
            e.Mark(label);
            e.Load(OffsetNr);
            if (arch == SeccompArch.X86_64)
            {
                // x32 calls run under x86_64's audit value with bit 30 set in nr; -1 has it set as well.
                var x32 = sections.TryGetValue(SeccompArch.X32, out var x) && !x.IsEmpty ? e.NewLabel() : library;
                e.JumpIf(JgeK, SeccompConstants.X32SyscallBit, x32);
                EmitSection(e, sections[arch], library);
                if (x32 != library)
                {
                    e.Mark(x32);
                    e.JumpIf(JeqK, SkippedByTracer, library);
                    EmitSection(e, sections[SeccompArch.X32], library);
                }
            }
            else
            {
                e.JumpIf(JeqK, SkippedByTracer, library);
                EmitSection(e, sections[arch], library);
            }
        }

        e.Mark(library);
        var prologue = e.Assemble();
        return [.. prologue, .. body];
    }

    private static void EmitSection(Emitter e, Section section, int library)
    {
        foreach (var (nr, action) in section.Matches)
        {
            e.ReturnIf(JeqK, nr, action);
        }

        if (section.EnosysAbove is { } highest)
        {
            e.ReturnIf(JgtK, highest, SeccompConstants.RetErrno | SeccompConstants.ENOSYS);
        }

        e.JumpAlways(library);
    }

    private sealed record Section(List<(uint Nr, uint Action)> Matches, uint? EnosysAbove)
    {
        public bool IsEmpty => Matches.Count == 0 && EnosysAbove is null;
    }

    // Instructions whose BPF_JA targets are labels, resolved at the end.
    private sealed class Emitter
    {
        private readonly List<(ushort Code, byte Jt, byte Jf, uint K, int Label)> _code = [];
        private readonly List<int> _labels = [];

        public int NewLabel()
        {
            _labels.Add(-1);
            return _labels.Count - 1;
        }

        public void Mark(int label) => _labels[label] = _code.Count;

        public void Load(uint offset) => _code.Add((LdWAbs, 0, 0, offset, -1));

        /// <summary>When the test holds, return <paramref name="action"/>; otherwise go on.</summary>
        public void ReturnIf(ushort test, uint k, uint action)
        {
            _code.Add((test, 0, 1, k, -1));
            _code.Add((RetK, 0, 0, action, -1));
        }

        /// <summary>When the test holds, jump to <paramref name="label"/> (through a BPF_JA); otherwise go on.</summary>
        public void JumpIf(ushort test, uint k, int label)
        {
            _code.Add((test, 0, 1, k, -1));
            JumpAlways(label);
        }

        public void JumpAlways(int label) => _code.Add((Ja, 0, 0, 0, label));

        public byte[] Assemble()
        {
            var bytes = new byte[_code.Count * SeccompConstants.InstructionSize];
            for (var i = 0; i < _code.Count; i++)
            {
                var (code, jt, jf, k, label) = _code[i];
                if (label >= 0)
                {
                    var target = _labels[label];
                    if (target < i + 1)
                    {
                        throw new InvalidOperationException($"seccomp prologue: label {label} is not placed after {i}");
                    }

                    k = (uint)(target - i - 1);
                }

                var span = bytes.AsSpan(i * SeccompConstants.InstructionSize, SeccompConstants.InstructionSize);
                BinaryPrimitives.WriteUInt16LittleEndian(span, code);
                span[2] = jt;
                span[3] = jf;
                BinaryPrimitives.WriteUInt32LittleEndian(span[4..], k);
            }

            return bytes;
        }
    }
}
