using System.Runtime.InteropServices;

namespace Nacelle.ContainerCore.Interop;

/// <summary>
/// A private anonymous mapping (mmap(2)) outside the GC heap, whose pages can be handed back to the kernel while the
/// mapping stays (madvise(MADV_DONTNEED): they read as zero again, and count in no one's resident set until touched).
/// For scratch buffers of a long-lived process that must return to its idle size after a burst of work.
/// </summary>
public sealed unsafe partial class AnonymousMemory : IDisposable
{
    private const int PROT_READ = 0x1;
    private const int PROT_WRITE = 0x2;
    private const int MAP_PRIVATE = 0x02;
    private const int MAP_ANONYMOUS = 0x20;
    private const int MADV_DONTNEED = 4;

    private byte* _address;

    /// <summary>Maps <paramref name="length"/> bytes (rounded up to whole pages by the kernel); nothing is resident yet.</summary>
    public AnonymousMemory(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        var address = mmap(null, (nuint)length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (address == (void*)-1)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"mmap({length}): {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }

        _address = (byte*)address;
        Length = length;
    }

    public int Length { get; }

    /// <summary>The memory. Valid until <see cref="Dispose"/>; after <see cref="Discard"/> it reads as zeros.</summary>
    public Span<byte> Span
    {
        get
        {
            ObjectDisposedException.ThrowIf(_address is null, this);
            return new Span<byte>(_address, Length);
        }
    }

    /// <summary>Gives the pages back (MADV_DONTNEED): the contents are gone, the mapping stays usable.</summary>
    public void Discard()
    {
        if (_address is not null && madvise(_address, (nuint)Length, MADV_DONTNEED) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"madvise(MADV_DONTNEED): {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }
    }

    public void Dispose()
    {
        if (_address is not null)
        {
            munmap(_address, (nuint)Length);
            _address = null;
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial void* mmap(void* address, nuint length, int protection, int flags, int fd, nint offset);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int munmap(void* address, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int madvise(void* address, nuint length, int advice);
}
