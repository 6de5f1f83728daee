using System.Runtime.InteropServices;

namespace Nacelle.ContainerCore.Interop;

/// <summary>Return codes of zlib's deflate/inflate calls (zlib.h).</summary>
public enum ZlibStatus
{
    Ok = 0,
    StreamEnd = 1,
    NeedDictionary = 2,
    Errno = -1,
    StreamError = -2,
    DataError = -3,
    MemoryError = -4,
    BufferError = -5,
    VersionError = -6,
}

/// <summary>The flush argument of deflate/inflate (zlib.h).</summary>
public enum ZlibFlush
{
    None = 0,
    Sync = 2,
    Finish = 4,
}

/// <summary>
/// The system zlib (libz.so.1) for streams that need a preset dictionary, which .NET's compression wrappers cannot
/// set (SPDY/3 header blocks). A thin layer: one z_stream per object, no policy; not thread-safe.
/// </summary>
public static partial class Zlib
{
    private const string Library = "libz.so.1";

    // struct z_stream on 64-bit Linux: next_in 0, avail_in 8, total_in 16, next_out 24, avail_out 32, total_out 40,
    // msg 48, state 56, zalloc 64, zfree 72, opaque 80, data_type 88, adler 96, reserved 104; 112 bytes in all.
    internal const int StreamSize = 112;
    internal const int NextIn = 0;
    internal const int AvailIn = 8;
    internal const int NextOut = 24;
    internal const int AvailOut = 32;
    internal const int Message = 48;
    internal const int DataType = 88;
    internal const int Adler = 96;

    private const int Z_DEFLATED = 8;

    /// <summary>The loaded library's version string (zlibVersion()), passed to the init calls as zlib asks.</summary>
    public static string Version => Marshal.PtrToStringUTF8(zlibVersion()) ?? string.Empty;

    internal static unsafe ZStreamHandle NewDeflate(int level, int windowBits, int memLevel)
    {
        var handle = ZStreamHandle.Allocate(deflating: true);
        var version = VersionBytes();
        fixed (byte* v = version)
        {
            Check(deflateInit2_(handle.Pointer, level, Z_DEFLATED, windowBits, memLevel, 0, v, StreamSize), handle, "deflateInit2_", initialised: false);
        }

        handle.Initialised();
        return handle;
    }

    internal static unsafe ZStreamHandle NewInflate()
    {
        var handle = ZStreamHandle.Allocate(deflating: false);
        var version = VersionBytes();
        fixed (byte* v = version)
        {
            Check(inflateInit_(handle.Pointer, v, StreamSize), handle, "inflateInit_", initialised: false);
        }

        handle.Initialised();
        return handle;
    }

    private static byte[] VersionBytes() => [.. System.Text.Encoding.ASCII.GetBytes(Version), 0];

    private static void Check(int status, ZStreamHandle handle, string call, bool initialised)
    {
        if (status == (int)ZlibStatus.Ok)
        {
            return;
        }

        if (!initialised)
        {
            handle.Dispose();
        }

        throw new InvalidOperationException($"zlib {call}: {(ZlibStatus)status}");
    }

    /// <summary>One deflate() or inflate() call over <paramref name="input"/> into <paramref name="output"/>: the status,
    /// how much input was consumed and how much output written. No pointer into the spans outlives the call.</summary>
    internal static unsafe ZlibStatus Step(ZStreamHandle handle, bool deflating, ReadOnlySpan<byte> input, Span<byte> output, ZlibFlush flush,
        out int consumed, out int written)
    {
        fixed (byte* i = input)
        fixed (byte* o = output)
        {
            var z = handle.Pointer;
            *(byte**)(z + NextIn) = i;
            *(uint*)(z + AvailIn) = (uint)input.Length;
            *(byte**)(z + NextOut) = o;
            *(uint*)(z + AvailOut) = (uint)output.Length;
            var status = (ZlibStatus)(deflating ? deflate(z, (int)flush) : inflate(z, (int)flush));
            consumed = input.Length - (int)*(uint*)(z + AvailIn);
            written = output.Length - (int)*(uint*)(z + AvailOut);
            *(byte**)(z + NextIn) = null;
            *(byte**)(z + NextOut) = null;
            return status;
        }
    }

    /// <summary>zlib's message for the last error on this stream (z_stream.msg), or the status name.</summary>
    internal static unsafe string Describe(ZStreamHandle handle, ZlibStatus status)
    {
        var message = *(nint*)(handle.Pointer + Message);
        return message != 0 ? $"{status}: {Marshal.PtrToStringUTF8(message)}" : status.ToString();
    }

    [LibraryImport(Library)]
    private static partial nint zlibVersion();

    [LibraryImport(Library)]
    private static unsafe partial int deflateInit2_(byte* stream, int level, int method, int windowBits, int memLevel, int strategy,
        byte* version, int streamSize);

    [LibraryImport(Library)]
    internal static unsafe partial int deflateSetDictionary(byte* stream, byte* dictionary, uint length);

    [LibraryImport(Library)]
    private static unsafe partial int deflate(byte* stream, int flush);

    [LibraryImport(Library)]
    internal static unsafe partial int deflateEnd(byte* stream);

    [LibraryImport(Library)]
    private static unsafe partial int inflateInit_(byte* stream, byte* version, int streamSize);

    [LibraryImport(Library)]
    internal static unsafe partial int inflateSetDictionary(byte* stream, byte* dictionary, uint length);

    [LibraryImport(Library)]
    private static unsafe partial int inflate(byte* stream, int flush);

    [LibraryImport(Library)]
    internal static unsafe partial int inflateEnd(byte* stream);
}

/// <summary>A z_stream in native memory; releasing it ends the stream (deflateEnd/inflateEnd) and frees it.</summary>
internal sealed unsafe class ZStreamHandle : SafeHandle
{
    private readonly bool _deflating;
    private bool _initialised;

    private ZStreamHandle(bool deflating)
        : base(IntPtr.Zero, ownsHandle: true)
    {
        _deflating = deflating;
    }

    public override bool IsInvalid => handle == IntPtr.Zero;

    public byte* Pointer => (byte*)handle;

    public static ZStreamHandle Allocate(bool deflating)
    {
        var result = new ZStreamHandle(deflating);
        result.SetHandle((nint)NativeMemory.AllocZeroed(Zlib.StreamSize));
        return result;
    }

    public void Initialised() => _initialised = true;

    protected override bool ReleaseHandle()
    {
        if (_initialised)
        {
            _ = _deflating ? Zlib.deflateEnd((byte*)handle) : Zlib.inflateEnd((byte*)handle);
        }

        NativeMemory.Free((void*)handle);
        return true;
    }
}

/// <summary>One deflate stream (zlib format). Each call compresses what it can of <c>input</c> into <c>output</c>.</summary>
public sealed unsafe class ZlibDeflater : IDisposable
{
    private readonly ZStreamHandle _stream;

    /// <param name="level">0-9 (9: best compression).</param>
    /// <param name="windowBits">8-15 for the zlib format.</param>
    /// <param name="memLevel">1-9.</param>
    public ZlibDeflater(int level, int windowBits = 15, int memLevel = 8)
    {
        _stream = Zlib.NewDeflate(level, windowBits, memLevel);
    }

    /// <summary>deflateSetDictionary: must come before the first <see cref="Deflate"/>.</summary>
    public void SetDictionary(ReadOnlySpan<byte> dictionary)
    {
        fixed (byte* d = dictionary)
        {
            var status = (ZlibStatus)Zlib.deflateSetDictionary(_stream.Pointer, d, (uint)dictionary.Length);
            if (status != ZlibStatus.Ok)
            {
                throw new InvalidOperationException($"zlib deflateSetDictionary: {Zlib.Describe(_stream, status)}");
            }
        }
    }

    /// <summary>deflate(): the status, how much of <paramref name="input"/> was consumed and how much of
    /// <paramref name="output"/> was written.</summary>
    public ZlibStatus Deflate(ReadOnlySpan<byte> input, Span<byte> output, ZlibFlush flush, out int consumed, out int written) =>
        Zlib.Step(_stream, deflating: true, input, output, flush, out consumed, out written);

    /// <summary>zlib's description of an error status on this stream.</summary>
    public string Describe(ZlibStatus status) => Zlib.Describe(_stream, status);

    public void Dispose() => _stream.Dispose();
}

/// <summary>One inflate stream (zlib format). A stream compressed with a preset dictionary answers
/// <see cref="ZlibStatus.NeedDictionary"/> until <see cref="SetDictionary"/> is given it.</summary>
public sealed unsafe class ZlibInflater : IDisposable
{
    private readonly ZStreamHandle _stream;

    public ZlibInflater()
    {
        _stream = Zlib.NewInflate();
    }

    /// <summary>After <see cref="ZlibStatus.NeedDictionary"/>: the Adler-32 of the dictionary the stream asks for.</summary>
    public uint DictionaryId => (uint)*(ulong*)(_stream.Pointer + Zlib.Adler);

    /// <summary>After <see cref="Inflate"/>: true when inflate stopped right after the end of a deflate block (data_type
    /// bit 128), as it does at the end of a sync-flushed unit; false when the input ended inside a block.</summary>
    public bool AtBlockBoundary => (*(int*)(_stream.Pointer + Zlib.DataType) & 128) != 0;

    /// <summary>inflateSetDictionary: the status (DataError when it is not the dictionary the stream names).</summary>
    public ZlibStatus SetDictionary(ReadOnlySpan<byte> dictionary)
    {
        fixed (byte* d = dictionary)
        {
            return (ZlibStatus)Zlib.inflateSetDictionary(_stream.Pointer, d, (uint)dictionary.Length);
        }
    }

    /// <summary>inflate(): the status, how much of <paramref name="input"/> was consumed and how much of
    /// <paramref name="output"/> was written.</summary>
    public ZlibStatus Inflate(ReadOnlySpan<byte> input, Span<byte> output, ZlibFlush flush, out int consumed, out int written) =>
        Zlib.Step(_stream, deflating: false, input, output, flush, out consumed, out written);

    /// <summary>zlib's description of an error status on this stream.</summary>
    public string Describe(ZlibStatus status) => Zlib.Describe(_stream, status);

    public void Dispose() => _stream.Dispose();
}
