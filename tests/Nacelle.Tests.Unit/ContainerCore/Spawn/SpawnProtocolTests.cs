using System.Buffers.Binary;
using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.RegularExpressions;
using Nacelle.Common;
using Nacelle.ContainerCore.Security;
using Nacelle.ContainerCore.Spawn;

namespace Nacelle.Tests.Unit.ContainerCore.Spawn;

/// <summary>The C header is the protocol: every number the C# side uses must equal it; the encoder follows its layout.</summary>
public sealed partial class SpawnProtocolTests
{
    private static string NativePath(string file, [CallerFilePath] string here = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(here)!, "../../../../src/ContainerCore/native", file));

    private static string HeaderPath() => NativePath("spawn_protocol.h");

    [GeneratedRegex(@"case NSP_STAGE_(\w+): return ""([^""]+)"";")]
    private static partial Regex StageCase();

    [GeneratedRegex(@"^#define\s+NSP_(\w+)\s+(0x[0-9a-fA-F]+|\d+|'.')", RegexOptions.Multiline)]
    private static partial Regex Define();

    private static Dictionary<string, long> HeaderValues()
    {
        var text = File.ReadAllText(HeaderPath());
        return Define().Matches(text).ToDictionary(
            m => m.Groups[1].Value,
            m => m.Groups[2].Value switch
            {
                var hex when hex.StartsWith("0x", StringComparison.Ordinal) => long.Parse(hex[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                var chr when chr.StartsWith('\'') => chr[1],
                var dec => long.Parse(dec, CultureInfo.InvariantCulture),
            });
    }

    private static string CSharpName(string header) =>
        string.Concat(header.ToLowerInvariant().Split('_').Select(w => char.ToUpperInvariant(w[0]) + w[1..]));

    [Fact]
    public void Every_number_in_the_header_matches_the_csharp_side()
    {
        var header = HeaderValues();
        Assert.True(header.Count > 50, $"only {header.Count} defines parsed from {HeaderPath()}");
        var fields = typeof(SpawnProtocol).GetFields(BindingFlags.Public | BindingFlags.Static).Where(f => f.IsLiteral)
            .ToDictionary(f => f.Name, f => Convert.ToInt64(f.GetRawConstantValue(), CultureInfo.InvariantCulture));
        var stages = SpawnProtocol.Stages.ToDictionary(s => s.Number, s => s.Name);
        // The names the helper shows in ps (spawn.c's stage_name) are the names C# reports.
        var cNames = StageCase().Matches(File.ReadAllText(NativePath("spawn.c"))).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
        var unmatched = new List<string>();
        foreach (var (name, value) in header)
        {
            if (name.StartsWith("STAGE_", StringComparison.Ordinal))
            {
                if (!stages.TryGetValue((int)value, out var csharp) || cNames.GetValueOrDefault(name["STAGE_".Length..]) != csharp)
                {
                    unmatched.Add($"{name}={value} (C# has '{csharp}')");
                }

                continue;
            }

            var candidate = CSharpName(name);
            if (!fields.TryGetValue(candidate, out var mine) || mine != value)
            {
                unmatched.Add($"{name}={value} (C# {candidate}={(fields.TryGetValue(candidate, out var m) ? m : "missing")})");
            }
        }

        Assert.Empty(unmatched);
        Assert.Equal(header.Count(p => p.Key.StartsWith("STAGE_", StringComparison.Ordinal)), SpawnProtocol.Stages.Count);
    }

    [Fact]
    public void The_message_has_the_header_and_8_byte_aligned_records_in_order()
    {
        var request = new SpawnRequest { Park = true, Rootfs = "/r", Cwd = "/w", Hostname = "h" };
        request.Args.AddRange(["/bin/sh", "-c", "echo"]);
        request.Env.Add("A=b");
        request.Mounts.Add(new SpawnMount(SpawnProtocol.MountFs, "proc", "/proc", "proc", 0xe, 0, "", false));
        request.Capabilities = new CapabilitySets(1, 2, 3, 4, 5);
        request.Seccomp = new SpawnSeccomp(1, new byte[16]);
        request.AppArmorProfile = "nacelle-default";
        request.SelinuxLabel = "system_u:system_r:container_t:s0";
        request.CgroupThreadFiles.AddRange(["/sys/fs/cgroup/cpu/c/tasks", "/sys/fs/cgroup/pids/c/tasks"]);
        request.CgroupCloneInto = "/sys/fs/cgroup/unified/c";
        var bytes = SpawnMessage.Encode(request);

        Assert.Equal(SpawnProtocol.Magic, BinaryPrimitives.ReadUInt32LittleEndian(bytes));
        Assert.Equal(SpawnProtocol.Version, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(4)));
        Assert.Equal((uint)bytes.Length, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8)));
        var records = new List<(ushort Type, byte[] Payload)>();
        var offset = SpawnProtocol.HeaderSize;
        while (offset < bytes.Length)
        {
            Assert.Equal(0, (offset - SpawnProtocol.HeaderSize) % 8);
            var type = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(offset));
            var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset + 4));
            records.Add((type, bytes.AsSpan(offset + 8, length).ToArray()));
            offset += 8 + (length + 7) / 8 * 8;
        }

        Assert.Equal(bytes.Length, offset);
        var args = records.Where(r => r.Type == SpawnProtocol.RecArg).Select(r => Encoding.UTF8.GetString(r.Payload).TrimEnd('\0')).ToList();
        Assert.Equal(["/bin/sh", "-c", "echo"], args);
        var mount = records.Single(r => r.Type == SpawnProtocol.RecMount).Payload;
        Assert.Equal(0xeUL, BinaryPrimitives.ReadUInt64LittleEndian(mount));
        Assert.Equal("proc\0/proc\0proc\0\0", Encoding.UTF8.GetString(mount.AsSpan(24)));
        var caps = records.Single(r => r.Type == SpawnProtocol.RecCaps).Payload;
        Assert.Equal(8 + 5 * 8, caps.Length);
        Assert.Equal(5UL, BinaryPrimitives.ReadUInt64LittleEndian(caps.AsSpan(40)));
        Assert.Equal(8 + 16, records.Single(r => r.Type == SpawnProtocol.RecSeccomp).Payload.Length);
        Assert.Equal("nacelle-default\0", Encoding.UTF8.GetString(records.Single(r => r.Type == SpawnProtocol.RecApparmor).Payload));
        Assert.Equal("system_u:system_r:container_t:s0\0", Encoding.UTF8.GetString(records.Single(r => r.Type == SpawnProtocol.RecSelinuxLabel).Payload));
        Assert.Contains(records, r => r.Type == SpawnProtocol.RecPark);
        Assert.Contains(records, r => r.Type == SpawnProtocol.RecRootPropagation);
        Assert.Equal(["/sys/fs/cgroup/cpu/c/tasks\0", "/sys/fs/cgroup/pids/c/tasks\0"],
            records.Where(r => r.Type == SpawnProtocol.RecCgroupThread).Select(r => Encoding.UTF8.GetString(r.Payload)));
        Assert.Equal("/sys/fs/cgroup/unified/c\0", Encoding.UTF8.GetString(records.Single(r => r.Type == SpawnProtocol.RecCgroupInto).Payload));
    }

    [Fact]
    public void Strings_with_a_NUL_and_filters_that_are_not_whole_instructions_are_refused()
    {
        var request = new SpawnRequest();
        request.Args.Add("a\0b");
        Assert.Equal(ErrorKind.InvalidArgument, Assert.Throws<NacelleException>(() => SpawnMessage.Encode(request)).Kind);
        var seccomp = new SpawnRequest { Seccomp = new SpawnSeccomp(0, new byte[12]) };
        Assert.Equal(ErrorKind.InvalidArgument, Assert.Throws<NacelleException>(() => SpawnMessage.Encode(seccomp)).Kind);
    }

    [Fact]
    public void Reports_decode_stage_errno_and_message()
    {
        var report = new byte[SpawnProtocol.ReportSize];
        BinaryPrimitives.WriteUInt32LittleEndian(report, SpawnProtocol.Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(report.AsSpan(4), SpawnProtocol.ReportError);
        BinaryPrimitives.WriteInt32LittleEndian(report.AsSpan(8), 7);
        BinaryPrimitives.WriteInt32LittleEndian(report.AsSpan(12), 2);
        Encoding.UTF8.GetBytes("cannot mount /proc").CopyTo(report.AsSpan(20));
        var decoded = Spawner.Decode(report);
        var error = Spawner.ToException(decoded);
        Assert.Equal("mounts", error.StageName);
        Assert.Equal(2, error.Errno);
        Assert.Equal(ErrorKind.Internal, error.Kind);
        Assert.Contains("stage mounts: cannot mount /proc", error.Message);
        Assert.Contains("errno 2", error.Message);
        Assert.Throws<NacelleException>(() => Spawner.Decode(report.AsSpan(0, 10)));
    }

    /// <summary>Regression (found by the CRI fuzzer): a pod's sysctl the kernel does not have, and a container created
    /// while its pod's pid namespace was losing its init, were answered Internal.</summary>
    [Theory]
    [InlineData(11, 2, ErrorKind.InvalidArgument)]
    [InlineData(11, 22, ErrorKind.InvalidArgument)]
    [InlineData(11, 34, ErrorKind.InvalidArgument)]
    [InlineData(11, 1, ErrorKind.InvalidArgument)]
    [InlineData(5, 12, ErrorKind.FailedPrecondition)]
    [InlineData(5, 11, ErrorKind.Internal)]
    [InlineData(7, 2, ErrorKind.Internal)]
    [InlineData(18, 2, ErrorKind.FailedPrecondition)]
    public void Report_stages_and_errnos_map_to_the_caller_or_to_nacelle(int stage, int errno, ErrorKind expected)
    {
        var error = Spawner.ToException(new Spawner.Report(SpawnProtocol.ReportError, stage, errno, 0, "what failed"));
        Assert.Equal(expected, error.Kind);
    }

    [Fact]
    public void A_terminal_is_one_record_with_the_console_size_and_comes_from_process_terminal()
    {
        var spec = new Nacelle.ContainerCore.Spec.RuntimeSpec
        {
            Process = new Nacelle.ContainerCore.Spec.SpecProcess
            {
                Args = ["/bin/sh"], Terminal = true, ConsoleSize = new Nacelle.ContainerCore.Spec.SpecConsoleSize { Height = 24, Width = 80 },
            },
            Root = new Nacelle.ContainerCore.Spec.SpecRoot { Path = "/" },
            Linux = new Nacelle.ContainerCore.Spec.SpecLinux { Namespaces = [new() { Type = "mount" }] },
        };
        var host = new HostFacts(true, 40, 0, _ => ulong.MaxValue);
        var request = SpawnPlanner.PlanContainer(spec, "/", host, null).Request;
        Assert.Equal(new SpawnTerminal(24, 80), request.Terminal);

        var bytes = SpawnMessage.Encode(request);
        var offset = SpawnProtocol.HeaderSize;
        byte[]? terminal = null;
        while (offset < bytes.Length)
        {
            var type = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(offset));
            var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset + 4));
            if (type == SpawnProtocol.RecTerminal)
            {
                Assert.Null(terminal);
                terminal = bytes.AsSpan(offset + 8, length).ToArray();
            }

            offset += 8 + (length + 7) / 8 * 8;
        }

        Assert.NotNull(terminal);
        Assert.Equal(8, terminal.Length);
        Assert.Equal(24u, BinaryPrimitives.ReadUInt32LittleEndian(terminal));
        Assert.Equal(80u, BinaryPrimitives.ReadUInt32LittleEndian(terminal.AsSpan(4)));

        spec.Process.Terminal = false;
        spec.Process.ConsoleSize = null;
        Assert.Null(SpawnPlanner.PlanContainer(spec, "/", host, null).Request.Terminal);
        Assert.Equal("console", SpawnProtocol.StageName(SpawnProtocol.StageConsole));
    }
}
