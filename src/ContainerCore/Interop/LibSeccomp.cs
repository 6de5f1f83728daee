using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Nacelle.ContainerCore.Interop;

/// <summary>
/// The parts of libseccomp (Debian's libseccomp2, the library runc and crun build their filters with) that compile a
/// filter: a context, its architectures and attributes, rules, name resolution and the BPF export. A thin layer: the
/// profile's meaning is decided by <c>Security/Seccomp/SeccompCompiler</c>. The library is loaded on the first call
/// (Native AOT binds these imports lazily), so a process that never compiles a filter never maps it.
/// </summary>
public static unsafe partial class LibSeccomp
{
    private const string Library = "libseccomp.so.2";

    /// <summary>What seccomp_syscall_resolve_name* answers for a name it does not know.</summary>
    public const int UnknownSyscall = -1;

    /// <summary>Whether a negative (pseudo) number from the resolvers stands for a call an ABI also reaches through a
    /// multiplexer -- i386's socketcall(2) (-101..-120) and ipc(2) (-201..-224), which libseccomp filters by call number
    /// -- rather than for a call the ABI does not have (-10000 and below).</summary>
    public static bool IsMultiplexed(int nr) => nr is >= -299 and <= -100;

    /// <summary>enum scmp_filter_attr.</summary>
    public enum Attribute
    {
        DefaultAction = 1,
        BadArchAction = 2,
        NoNewPrivileges = 3,
        ThreadSync = 4,
        TraceSkip = 5,
        Log = 6,
        SpeculativeStoreBypass = 7,
        Optimize = 8,
        RawReturnCodes = 9,
    }

    /// <summary>enum scmp_compare.</summary>
    public enum Compare
    {
        NotEqual = 1,
        LessThan = 2,
        LessOrEqual = 3,
        Equal = 4,
        GreaterOrEqual = 5,
        GreaterThan = 6,
        MaskedEqual = 7,
    }

    /// <summary>struct scmp_arg_cmp: for <see cref="Compare.MaskedEqual"/>, <see cref="DatumA"/> is the mask.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct ArgCompare
    {
        public uint Argument;
        public Compare Op;
        public ulong DatumA;
        public ulong DatumB;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Version
    {
        public uint Major;
        public uint Minor;
        public uint Micro;
    }

    /// <summary>The library's version, "major.minor.micro".</summary>
    public static string LibraryVersion()
    {
        var v = seccomp_version();
        return v == null ? "unknown" : $"{v->Major}.{v->Minor}.{v->Micro}";
    }

    /// <summary>A new filter context whose unmatched system calls get <paramref name="defaultAction"/>; it holds the
    /// native architecture.</summary>
    public static FilterHandle Create(uint defaultAction)
    {
        var handle = seccomp_init(defaultAction);
        return handle.IsInvalid
            ? throw new InvalidOperationException($"seccomp_init(0x{defaultAction:x}) failed (libseccomp {LibraryVersion()})")
            : handle;
    }

    /// <summary>seccomp_attr_set; returns 0 or a negative errno.</summary>
    public static int SetAttribute(FilterHandle filter, Attribute attribute, uint value) => seccomp_attr_set(filter, attribute, value);

    /// <summary>seccomp_arch_add (an SCMP_ARCH_* token); returns 0, -EEXIST when already there, or a negative errno.</summary>
    public static int AddArchitecture(FilterHandle filter, uint token) => seccomp_arch_add(filter, token);

    /// <summary>The number libseccomp gives <paramref name="name"/> for rules of this context (the native number, or a
    /// negative pseudo number for calls the native architecture lacks); <see cref="UnknownSyscall"/> when unknown.</summary>
    public static int ResolveName(string name) => seccomp_syscall_resolve_name(name);

    /// <summary>The number of <paramref name="name"/> on the architecture <paramref name="token"/> (negative: a pseudo
    /// number, the call does not exist there as such); <see cref="UnknownSyscall"/> when unknown.</summary>
    public static int ResolveName(uint token, string name) => seccomp_syscall_resolve_name_arch(token, name);

    /// <summary>seccomp_rule_add_array; returns 0 or a negative errno.</summary>
    public static int AddRule(FilterHandle filter, uint action, int syscall, ReadOnlySpan<ArgCompare> args)
    {
        fixed (ArgCompare* p = args)
        {
            return seccomp_rule_add_array(filter, action, syscall, (uint)args.Length, args.Length == 0 ? null : p);
        }
    }

    /// <summary>The filter as struct sock_filter instructions in host byte order (seccomp_export_bpf into a memfd).</summary>
    public static byte[] ExportBpf(FilterHandle filter)
    {
        using var memory = SpawnCalls.CreateMemoryFile("nacelle-seccomp-bpf", allowSealing: false);
        var rc = seccomp_export_bpf(filter, (int)memory.DangerousGetHandle());
        if (rc < 0)
        {
            throw new InvalidOperationException($"seccomp_export_bpf: {Marshal.GetPInvokeErrorMessage(-rc)}");
        }

        var length = RandomAccess.GetLength(memory);
        var bytes = new byte[length];
        var read = 0;
        while (read < bytes.Length)
        {
            var n = RandomAccess.Read(memory, bytes.AsSpan(read), read);
            if (n == 0)
            {
                break;
            }

            read += n;
        }

        return read == bytes.Length ? bytes : bytes[..read];
    }

    /// <summary>A libseccomp filter context (scmp_filter_ctx), released with seccomp_release.</summary>
    public sealed class FilterHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        public FilterHandle()
            : base(ownsHandle: true)
        {
        }

        protected override bool ReleaseHandle()
        {
            seccomp_release(handle);
            return true;
        }
    }

    [LibraryImport(Library)]
    private static partial Version* seccomp_version();

    [LibraryImport(Library)]
    private static partial FilterHandle seccomp_init(uint defaultAction);

    [LibraryImport(Library)]
    private static partial void seccomp_release(nint ctx);

    [LibraryImport(Library)]
    private static partial int seccomp_attr_set(FilterHandle ctx, Attribute attribute, uint value);

    [LibraryImport(Library)]
    private static partial int seccomp_arch_add(FilterHandle ctx, uint token);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int seccomp_syscall_resolve_name(string name);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int seccomp_syscall_resolve_name_arch(uint token, string name);

    [LibraryImport(Library)]
    private static partial int seccomp_rule_add_array(FilterHandle ctx, uint action, int syscall, uint count, ArgCompare* args);

    [LibraryImport(Library)]
    private static partial int seccomp_export_bpf(FilterHandle ctx, int fd);
}
