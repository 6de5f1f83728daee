using System.Buffers.Binary;

namespace Nacelle.Tests.Unit.ContainerCore.Security;

/// <summary>
/// A small classic-BPF interpreter over a synthetic struct seccomp_data, with the kernel's structural checks
/// (every jump forward and in range, word loads aligned inside seccomp_data, the program ends in a return).
/// Unknown opcodes fail the test rather than being guessed.
/// </summary>
internal static class BpfInterpreter
{
    public const int SeccompDataSize = 64;

    // What the tests compare with: the audit values of x86_64 and i386, and the two refusals of RuntimeDefault.
    public const uint X64 = Nacelle.ContainerCore.Security.Seccomp.SeccompConstants.AuditArchX86_64;
    public const uint I386 = Nacelle.ContainerCore.Security.Seccomp.SeccompConstants.AuditArchI386;
    public const uint Eperm = Nacelle.ContainerCore.Security.Seccomp.SeccompConstants.RetErrno | 1;
    public const uint Enosys = Nacelle.ContainerCore.Security.Seccomp.SeccompConstants.RetErrno | 38;

    public static byte[] SeccompData(uint arch, int nr, params ulong[] args)
    {
        var data = new byte[SeccompDataSize];
        BinaryPrimitives.WriteInt32LittleEndian(data, nr);
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(4), arch);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(8), 0x00007fff_12345678);
        for (var i = 0; i < args.Length; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(16 + (8 * i)), args[i]);
        }

        return data;
    }

    public static uint Run(byte[] program, uint arch, int nr, params ulong[] args)
        => Run(program, SeccompData(arch, nr, args), out _);

    public static uint Run(byte[] program, byte[] data, out int executed)
    {
        Validate(program);
        var count = program.Length / 8;
        uint a = 0;
        executed = 0;
        var pc = 0;
        while (true)
        {
            Assert.InRange(pc, 0, count - 1);
            executed++;
            var insn = program.AsSpan(pc * 8, 8);
            var code = BinaryPrimitives.ReadUInt16LittleEndian(insn);
            var jt = insn[2];
            var jf = insn[3];
            var k = BinaryPrimitives.ReadUInt32LittleEndian(insn[4..]);
            pc++;
            switch (code)
            {
                case 0x20: // ld [k]
                    a = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan((int)k, 4));
                    break;
                case 0x54: // and #k
                    a &= k;
                    break;
                case 0x05: // ja
                    pc += (int)k;
                    break;
                case 0x15: // jeq #k
                    pc += a == k ? jt : jf;
                    break;
                case 0x25: // jgt #k
                    pc += a > k ? jt : jf;
                    break;
                case 0x35: // jge #k
                    pc += a >= k ? jt : jf;
                    break;
                case 0x45: // jset #k
                    pc += (a & k) != 0 ? jt : jf;
                    break;
                case 0x06: // ret #k
                    return k;
                default:
                    Assert.Fail($"unexpected BPF opcode 0x{code:x} at {pc - 1}");
                    return 0;
            }
        }
    }

    /// <summary>The checks the kernel's seccomp_check_filter/bpf_check_classic make that matter here.</summary>
    public static void Validate(byte[] program)
    {
        Assert.True(program.Length > 0 && program.Length % 8 == 0, "program length is a non-zero multiple of 8");
        var count = program.Length / 8;
        Assert.InRange(count, 1, 4096);
        for (var pc = 0; pc < count; pc++)
        {
            var insn = program.AsSpan(pc * 8, 8);
            var code = BinaryPrimitives.ReadUInt16LittleEndian(insn);
            var k = BinaryPrimitives.ReadUInt32LittleEndian(insn[4..]);
            switch (code)
            {
                case 0x20:
                    Assert.True(k % 4 == 0 && k < SeccompDataSize, $"ld offset {k} at {pc}");
                    break;
                case 0x05:
                    Assert.True((long)pc + 1 + k < count, $"ja out of range at {pc}");
                    break;
                case 0x15 or 0x25 or 0x35 or 0x45:
                    Assert.True(pc + 1 + Math.Max(insn[2], insn[3]) < count, $"conditional jump out of range at {pc}");
                    break;
                case 0x06 or 0x54:
                    break;
                default:
                    Assert.Fail($"unexpected BPF opcode 0x{code:x} at {pc}");
                    break;
            }
        }

        Assert.Equal((ushort)0x06, BinaryPrimitives.ReadUInt16LittleEndian(program.AsSpan((count - 1) * 8)));
    }
}
