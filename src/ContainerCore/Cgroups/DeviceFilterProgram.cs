using System.Buffers.Binary;

namespace Nacelle.ContainerCore.Cgroups;

/// <summary>
/// Compiles device rules into a BPF_PROG_TYPE_CGROUP_DEVICE program (cgroup v2 has no devices.allow/deny files).
/// The program sees struct bpf_cgroup_dev_ctx { u32 access_type (access &lt;&lt; 16 | type); u32 major; u32 minor; }
/// and returns 1 (allow) or 0 (deny). Semantics follow v1's devices.allow/deny: the rules apply in order, a later
/// rule wins over an earlier one, and an "a" rule with all of rwm sets what happens to every device no later rule
/// names (so "deny a; allow c 1:3 rwm" is a whitelist). Without any "a" rule unmatched devices are allowed.
/// </summary>
public static class DeviceFilterProgram
{
    private const int DevBlock = 1; // BPF_DEVCG_DEV_BLOCK
    private const int DevChar = 2;  // BPF_DEVCG_DEV_CHAR
    private const int AccMknod = 1, AccRead = 2, AccWrite = 4;

    // opcodes (class | op | source)
    private const byte LdxMemW = 0x61;   // BPF_LDX | BPF_MEM | BPF_W
    private const byte Alu32AndK = 0x54; // BPF_ALU | BPF_AND | BPF_K
    private const byte Alu32RshK = 0x74; // BPF_ALU | BPF_RSH | BPF_K
    private const byte Alu32MovX = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
    private const byte JmpJneK = 0x55;   // BPF_JMP | BPF_JNE | BPF_K
    private const byte Mov64K = 0xb7;    // BPF_ALU64 | BPF_MOV | BPF_K
    private const byte Exit = 0x95;      // BPF_JMP | BPF_EXIT

    private readonly record struct Insn(byte Op, byte Dst, byte Src, short Off, int Imm);

    /// <summary>The program as bytes (8 per instruction, little-endian as the kernel expects on x86_64/arm64).</summary>
    public static byte[] Compile(IReadOnlyList<DeviceRule> rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        // Only rules after the last full "a" rule matter; that rule gives the default.
        var defaultAllow = true;
        var start = 0;
        for (var i = 0; i < rules.Count; i++)
        {
            if (rules[i].Type == 'a' && AccessMask(rules[i].Access) == (AccMknod | AccRead | AccWrite))
            {
                defaultAllow = rules[i].Allow;
                start = i + 1;
            }
        }

        var program = new List<Insn>
        {
            new(LdxMemW, 2, 1, 0, 0),   // r2 = ctx->access_type
            new(Alu32AndK, 2, 0, 0, 0xFFFF), // r2 = type
            new(LdxMemW, 3, 1, 0, 0),   // r3 = ctx->access_type
            new(Alu32RshK, 3, 0, 0, 16), // r3 = access
            new(LdxMemW, 4, 1, 4, 0),   // r4 = major
            new(LdxMemW, 5, 1, 8, 0),   // r5 = minor
        };

        // Later rules win: test them first, the first match decides.
        for (var i = rules.Count - 1; i >= start; i--)
        {
            var rule = rules[i];
            var block = new List<Insn>();
            if (rule.Type != 'a')
            {
                block.Add(new(JmpJneK, 2, 0, 0, rule.Type == 'b' ? DevBlock : DevChar));
            }

            var mask = AccessMask(rule.Access);
            if (mask != (AccMknod | AccRead | AccWrite))
            {
                // the rule covers the request when the request asks for nothing outside the rule's access
                block.Add(new(Alu32MovX, 0, 3, 0, 0));
                block.Add(new(Alu32AndK, 0, 0, 0, ~mask & 0xFFFF));
                block.Add(new(JmpJneK, 0, 0, 0, 0));
            }

            if (rule.Type != 'a' && rule.Major >= 0)
            {
                block.Add(new(JmpJneK, 4, 0, 0, (int)rule.Major));
            }

            if (rule.Type != 'a' && rule.Minor >= 0)
            {
                block.Add(new(JmpJneK, 5, 0, 0, (int)rule.Minor));
            }

            block.Add(new(Mov64K, 0, 0, 0, rule.Allow ? 1 : 0));
            block.Add(new(Exit, 0, 0, 0, 0));
            // every conditional jump skips to the end of this block
            for (var j = 0; j < block.Count; j++)
            {
                if (block[j].Op == JmpJneK)
                {
                    block[j] = block[j] with { Off = (short)(block.Count - j - 1) };
                }
            }

            program.AddRange(block);
        }

        program.Add(new(Mov64K, 0, 0, 0, defaultAllow ? 1 : 0));
        program.Add(new(Exit, 0, 0, 0, 0));

        var bytes = new byte[program.Count * 8];
        for (var i = 0; i < program.Count; i++)
        {
            var insn = program[i];
            var slot = bytes.AsSpan(i * 8, 8);
            slot[0] = insn.Op;
            slot[1] = (byte)((insn.Src << 4) | (insn.Dst & 0xF));
            BinaryPrimitives.WriteInt16LittleEndian(slot[2..], insn.Off);
            BinaryPrimitives.WriteInt32LittleEndian(slot[4..], insn.Imm);
        }

        return bytes;
    }

    private static int AccessMask(string access) =>
        (access.Contains('m') ? AccMknod : 0) | (access.Contains('r') ? AccRead : 0) | (access.Contains('w') ? AccWrite : 0);
}
