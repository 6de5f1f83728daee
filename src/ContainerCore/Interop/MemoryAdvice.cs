using System.Runtime.InteropServices;

namespace Nacelle.ContainerCore.Interop;

/// <summary>madvise(2) advice on this process's own mappings (PageOut never changes their contents; DontNeed may).</summary>
public static unsafe partial class MemoryAdvice
{
    private const int MADV_DONTNEED = 4;
    private const int MADV_PAGEOUT = 21;

    /// <summary>
    /// madvise(MADV_PAGEOUT): reclaims the range's pages now, as the kernel's reclaim would under memory pressure. Clean
    /// file pages are dropped (read from the file again when touched), dirty anonymous ones go to swap or stay; the
    /// contents never change. Pages other processes map too are left alone. Returns 0 or the errno (EINVAL before Linux
    /// 5.4, EPERM for a file the caller could not write).
    /// </summary>
    public static int PageOut(nuint address, nuint length) =>
        madvise((void*)address, length, MADV_PAGEOUT) == 0 ? 0 : Marshal.GetLastPInvokeError();

    /// <summary>
    /// madvise(MADV_DONTNEED): removes the range's pages from this process's page tables. Pages of a file that the
    /// process never wrote stay in the page cache and come back on the next touch as they were (a minor fault); private
    /// anonymous pages, and the private copies of file pages the process wrote, are LOST (they read as zero or as the
    /// file again): the caller must know the range holds none. Returns 0 or the errno (EINVAL for locked or huge-page
    /// mappings).
    /// </summary>
    public static int DontNeed(nuint address, nuint length) =>
        madvise((void*)address, length, MADV_DONTNEED) == 0 ? 0 : Marshal.GetLastPInvokeError();

    [LibraryImport("libc", SetLastError = true)]
    private static partial int madvise(void* address, nuint length, int advice);
}
