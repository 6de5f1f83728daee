using System.Buffers.Binary;
using Nacelle.ContainerCore.Cgroups;

namespace Nacelle.Tests.Unit.ContainerCore.Cgroups;

public sealed class DeviceFilterProgramTests
{
    private static (byte Op, int Dst, int Src, short Off, int Imm)[] Decode(byte[] program) =>
        Enumerable.Range(0, program.Length / 8).Select(i =>
        {
            var slot = program.AsSpan(i * 8, 8);
            return (slot[0], slot[1] & 0xF, slot[1] >> 4, BinaryPrimitives.ReadInt16LittleEndian(slot[2..]),
                BinaryPrimitives.ReadInt32LittleEndian(slot[4..]));
        }).ToArray();

    [Fact]
    public void WhitelistCompilesToTypeMajorMinorChecksAndADenyDefault()
    {
        var insns = Decode(DeviceFilterProgram.Compile(
            [new DeviceRule(false, 'a', -1, -1, "rwm"), new DeviceRule(true, 'c', 1, 3, "rwm")]));

        Assert.Equal(13, insns.Length); // 6 loads, one 5-instruction rule block, default
        Assert.Equal((byte)0x61, insns[0].Op); // r2 = ctx->access_type
        Assert.Equal((0x55, 2, 0, (short)4, 2), (insns[6].Op, insns[6].Dst, insns[6].Src, insns[6].Off, insns[6].Imm)); // type != char -> next
        Assert.Equal((0x55, 4, (short)3, 1), (insns[7].Op, insns[7].Dst, insns[7].Off, insns[7].Imm)); // major != 1
        Assert.Equal((0x55, 5, (short)2, 3), (insns[8].Op, insns[8].Dst, insns[8].Off, insns[8].Imm)); // minor != 3
        Assert.Equal((0xb7, 1), (insns[9].Op, insns[9].Imm)); // allow
        Assert.Equal(0x95, insns[10].Op);
        Assert.Equal((0xb7, 0), (insns[11].Op, insns[11].Imm)); // default deny from "a *:* rwm" deny
        Assert.Equal(0x95, insns[12].Op);
    }

    [Fact]
    public void PartialAccessChecksTheRequestedBitsAndLaterRulesComeFirst()
    {
        var insns = Decode(DeviceFilterProgram.Compile(
            [new DeviceRule(true, 'c', 1, 5, "r"), new DeviceRule(false, 'b', 8, -1, "rwm")]));

        // no "a" rule: unmatched devices are allowed; the later block rule is tested first
        Assert.Equal((0x55, 2, 1), (insns[6].Op, insns[6].Dst, insns[6].Imm)); // type != block
        Assert.Equal((0x55, 4, 8), (insns[7].Op, insns[7].Dst, insns[7].Imm)); // major != 8, no minor check
        Assert.Equal((0xb7, 0), (insns[8].Op, insns[8].Imm)); // deny
        // then the char rule with access "r": r0 = access & ~READ, must be 0
        Assert.Equal((0xbc, 0, 3), (insns[11].Op, insns[11].Dst, insns[11].Src));
        Assert.Equal((0x54, ~2 & 0xFFFF), (insns[12].Op, insns[12].Imm));
        Assert.Equal((0x55, 0, 0), (insns[13].Op, insns[13].Dst, insns[13].Imm));
        Assert.Equal((0xb7, 1), (insns[^2].Op, insns[^2].Imm)); // default allow
    }
}
