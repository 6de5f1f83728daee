using System.Runtime.InteropServices;

namespace Nacelle.ContainerCore.Interop;

/// <summary>The C library's heap (malloc), which native code in the process uses: SQLite, the runtime's own tables.</summary>
public static partial class NativeHeap
{
    /// <summary>
    /// malloc_trim(3) with no padding: returns to the kernel every whole free page of every malloc arena (the main heap's
    /// top with brk, the rest with MADV_DONTNEED), not only the free space at the top of the main heap that free() gives
    /// back on its own. Memory in use is untouched. True if any was released.
    /// </summary>
    public static bool Trim() => malloc_trim(0) != 0;

    [LibraryImport("libc")]
    private static partial int malloc_trim(nuint pad);
}
