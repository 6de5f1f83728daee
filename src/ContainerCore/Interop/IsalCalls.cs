using System.Runtime.InteropServices;

namespace Nacelle.ContainerCore.Interop;

/// <summary>
/// ISA-L's igzip inflater (libisal.so.2, Debian's libisal2), the fastest deflate decoder on x86-64 (AVX2/AVX-512
/// Huffman decoding): streaming inflate of gzip members with the CRC-32 and size of each checked by the library.
/// Callers allocate <c>struct inflate_state</c> themselves, so its layout is ABI: the field offsets below are those of
/// the versions listed in <see cref="KnownVersions"/> (checked with offsetof against their headers), and the library is
/// used only when the loaded file is one of them. Anything else: <see cref="Available"/> is false.
/// </summary>
public static unsafe partial class IsalCalls
{
    /// <summary>
    /// One gzip decoding state with its own input buffer (unmanaged, so the library may keep pointers into it between
    /// calls). Fill <see cref="InputBuffer"/>, announce it with <see cref="SetInput"/>, call <see cref="Inflate"/>.
    /// </summary>
    public sealed class GzipInflater : IDisposable
    {
        private readonly byte* _state;
        private readonly byte* _input;
        private readonly int _inputLength;
        private bool _disposed;

        public GzipInflater(int inputBytes)
        {
            if (!Available)
            {
                throw new InvalidOperationException("libisal.so.2 of a known version is not available");
            }

            _state = (byte*)NativeMemory.AlignedAlloc(StateBytes, 64);
            _input = (byte*)NativeMemory.Alloc((nuint)inputBytes);
            _inputLength = inputBytes;
            StartMember();
            SetInputPointer(_input, 0);
        }

        /// <summary>Where the next compressed bytes go before <see cref="SetInput"/> (only when no input is pending).</summary>
        public Span<byte> InputBuffer => new(_input, _inputLength);

        /// <summary>The input buffer as Memory, for asynchronous reads (it never moves).</summary>
        public Memory<byte> InputMemory => new UnmanagedMemory(_input, _inputLength).Memory;

        /// <summary>Compressed bytes given but not consumed yet.</summary>
        public int PendingInput => (int)*(uint*)(_state + AvailInOffset);

        /// <summary>The first pending input byte (call only when <see cref="PendingInput"/> is positive).</summary>
        public byte NextInputByte => **(byte**)(_state + NextInOffset);

        /// <summary>True once the current member is complete, its CRC-32 and size checked.</summary>
        public bool MemberFinished => *(uint*)(_state + BlockStateOffset) == BlockFinish;

        /// <summary>Announces <paramref name="length"/> bytes at the start of <see cref="InputBuffer"/>.</summary>
        public void SetInput(int length) => SetInputPointer(_input, (uint)length);

        /// <summary>Resets the state for the next gzip member, keeping the pending input.</summary>
        public void StartNextMember()
        {
            var next = *(byte**)(_state + NextInOffset);
            var left = *(uint*)(_state + AvailInOffset);
            StartMember();
            SetInputPointer(next, left);
        }

        /// <summary>Decodes pending input into <paramref name="output"/>; returns the bytes produced. Corrupt input throws.</summary>
        public int Inflate(Span<byte> output)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            fixed (byte* o = output)
            {
                *(byte**)(_state + NextOutOffset) = o;
                *(uint*)(_state + AvailOutOffset) = (uint)output.Length;
                var result = isal_inflate(_state);
                var produced = output.Length - (int)*(uint*)(_state + AvailOutOffset);
                *(byte**)(_state + NextOutOffset) = null;
                *(uint*)(_state + AvailOutOffset) = 0;
                return result >= 0 ? produced : throw new InvalidDataException($"the gzip stream is corrupt: {ErrorName(result)}");
            }
        }

        public void Dispose()
        {
            if (!_disposed)
            {
                _disposed = true;
                NativeMemory.AlignedFree(_state);
                NativeMemory.Free(_input);
            }
        }

        private void StartMember()
        {
            Init(_state);
            *(uint*)(_state + CrcFlagOffset) = GzipWrapper;
        }

        private void SetInputPointer(byte* input, uint length)
        {
            *(byte**)(_state + NextInOffset) = input;
            *(uint*)(_state + AvailInOffset) = length;
        }
    }

    private sealed class UnmanagedMemory(byte* pointer, int length) : System.Buffers.MemoryManager<byte>
    {
        public override Span<byte> GetSpan() => new(pointer, length);

        public override System.Buffers.MemoryHandle Pin(int elementIndex = 0) => new(pointer + elementIndex);

        public override void Unpin()
        {
        }

        protected override void Dispose(bool disposing)
        {
        }
    }

    private const string Library = "libisal.so.2";

    /// <summary>Bytes to allocate for <c>struct inflate_state</c> (87,368 in 2.30; room to spare).</summary>
    private const int StateBytes = 128 * 1024;

    // crc_flag ISAL_GZIP: parse the gzip header, check the trailer's CRC-32 and size.
    private const uint GzipWrapper = 1;

    // block_state ISAL_BLOCK_FINISH: the member is complete, its trailer checked.
    private const uint BlockFinish = 5;

    // struct inflate_state of libisal 2.30: next_out 0, avail_out 8, total_out 12, next_in 16, avail_in 32,
    // block_state 21160, crc_flag 21172.
    private const int NextOutOffset = 0;
    private const int AvailOutOffset = 8;
    private const int NextInOffset = 16;
    private const int AvailInOffset = 32;
    private const int BlockStateOffset = 21160;
    private const int CrcFlagOffset = 21172;

    private static readonly Lazy<string?> s_version = new(LoadedVersion);

    /// <summary>Versions (the shared object's file name suffix) whose state layout the offsets above describe.</summary>
    public static IReadOnlyList<string> KnownVersions { get; } = ["2.0.30"];

    /// <summary>True when libisal.so.2 loads and is a version whose layout is known.</summary>
    public static bool Available => s_version.Value is { } version && KnownVersions.Contains(version);

    /// <summary>The loaded library's version ("2.0.30"), or null when it is not installed.</summary>
    public static string? Version => s_version.Value;

    private static void Init(byte* state) => isal_inflate_init(state);

    /// <summary>Error names of isal_inflate's negative results.</summary>
    private static string ErrorName(int result) => result switch
    {
        -1 => "invalid deflate block",
        -2 => "invalid deflate symbol",
        -3 => "invalid lookback distance",
        -4 => "invalid gzip wrapper",
        -5 => "unsupported compression method",
        -6 => "incorrect checksum",
        _ => $"error {result}",
    };

    private static string? LoadedVersion()
    {
        if (!NativeLibrary.TryLoad(Library, out _))
        {
            return null;
        }

        // The soname is a symlink to libisal.so.2.0.NN; the mapped file shows which one was loaded.
        foreach (var line in File.ReadLines("/proc/self/maps"))
        {
            var at = line.IndexOf("/libisal.so.", StringComparison.Ordinal);
            if (at >= 0)
            {
                return line[(at + "/libisal.so.".Length)..].Trim();
            }
        }

        return null;
    }

    [LibraryImport(Library)]
    private static partial void isal_inflate_init(byte* state);

    [LibraryImport(Library)]
    private static partial int isal_inflate(byte* state);
}
